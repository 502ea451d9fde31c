//! The CDN: one CloudFront distribution per stack with an origin per thing it serves (the
//! frontend's bucket, data buckets, the backend tiers' load balancers), ordered path
//! behaviours, HTTPS only, the stack's aliases and their certificate (issued in us-east-1),
//! and the single-page-app fallback. S3 origins are reached through the stack's origin access
//! control; the buckets' policies admit that distribution alone.
//!
//! CloudFront is global: its clients reach [`crate::aws::GLOBAL_REGION`]. The caller reference
//! of the distribution is derived from the stack's owner, so a create repeated after a crash
//! finds the distribution it made. Deletion disables the distribution and deletes it once the
//! disabled configuration is deployed, across passes, without holding one.

mod access;
pub mod config;
mod distribution;

use serde_json::{json, Value};

use super::{backend, storage, Scope, StackRef};
use crate::api::{Caching, FrontendKind, PriceClass, WebStackSpec};
use crate::engine::{Engine, Kind, Node, NodeId, Prop};

pub use access::{AccessControlHandler, AccessControlObserver};
pub use distribution::{DistributionHandler, DistributionObserver};

pub const DISTRIBUTION: Kind = Kind("Distribution");
pub const ORIGIN_ACCESS_CONTROL: Kind = Kind("OriginAccessControl");

/// Every kind of this area, for the `CdnReady` condition.
pub const KINDS: &[Kind] = &[DISTRIBUTION, ORIGIN_ACCESS_CONTROL];

const TIER: &str = "cdn";
const SERVICE: &str = "cloudfront";
/// The role of the stack's distribution and of its origin access control.
pub const CDN: &str = "cdn";

/// Adds the CDN kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(DistributionObserver)
        .observer(AccessControlObserver)
        .handler(DistributionHandler)
        .handler(AccessControlHandler)
}

/// The distribution's node id.
pub fn id() -> NodeId {
    NodeId::new(DISTRIBUTION, CDN)
}

fn access_id() -> NodeId {
    NodeId::new(ORIGIN_ACCESS_CONTROL, CDN)
}

/// What the distribution serves, resolved from an origin reference of the spec.
enum Target {
    Bucket(String),
    Tier(String),
}

/// An origin reference of the spec (`frontend`, `bucket/<name>`, `tier/<name>`) as the
/// bucket role or tier it names; `http-api` waits for the HTTP API.
fn target(spec: &WebStackSpec, origin: &str) -> Option<Target> {
    if origin == "frontend" {
        let f = spec.frontend.as_ref()?;
        return match f.kind {
            FrontendKind::S3 => Some(Target::Bucket(storage::FRONTEND.to_owned())),
            FrontendKind::Tier => f.tier.clone().map(Target::Tier),
            _ => None,
        };
    }
    if let Some(b) = origin.strip_prefix("bucket/") {
        return Some(Target::Bucket(storage::data_role(b)));
    }
    origin
        .strip_prefix("tier/")
        .map(|t| Target::Tier(t.to_owned()))
}

fn origin_id(t: &Target) -> String {
    match t {
        Target::Bucket(role) => format!("bucket-{role}"),
        Target::Tier(tier) => format!("tier-{tier}"),
    }
}

/// The bucket roles the distribution serves.
pub fn served_buckets(spec: &WebStackSpec) -> Vec<String> {
    let Some(cdn) = &spec.cdn else {
        return Vec::new();
    };
    let mut out: Vec<String> = std::iter::once(cdn.default_origin.as_str())
        .chain(cdn.behaviors.iter().map(|b| b.origin.as_str()))
        .filter_map(|o| match target(spec, o) {
            Some(Target::Bucket(role)) => Some(role),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The policies of a behaviour: S3 and cached content as optimised; uncached requests reach
/// the origin with every header, cookie and query string (the `Host` too when the origin
/// speaks HTTPS with a certificate for the site's names).
fn policies(caching: Caching, https_origin: bool) -> (&'static str, &'static str, &'static str) {
    match caching {
        // CloudFront checks an HTTPS origin's certificate against the Host it sends: the
        // site's own name, which the load balancer's certificate covers.
        Caching::Optimized if https_origin => {
            (config::CACHING_OPTIMIZED, config::ALL_VIEWER, "read")
        }
        Caching::Optimized => (config::CACHING_OPTIMIZED, "", "read"),
        Caching::Disabled if https_origin => (config::CACHING_DISABLED, config::ALL_VIEWER, "all"),
        Caching::Disabled => (
            config::CACHING_DISABLED,
            config::ALL_VIEWER_EXCEPT_HOST,
            "all",
        ),
    }
}

fn price_class(p: PriceClass) -> &'static str {
    match p {
        PriceClass::PriceClass100 => "PriceClass_100",
        PriceClass::PriceClass200 => "PriceClass_200",
        PriceClass::PriceClassAll => "PriceClass_All",
    }
}

/// The distribution's comment: CloudFront keeps 128 characters.
fn comment(stack: &StackRef) -> String {
    let mut c = format!("webstack {}", stack.id());
    c.truncate(128);
    c
}

/// The CDN's nodes: the origin access control (when a bucket is served) and the
/// distribution. `certificate` is the node of the certificate the aliases need.
pub fn desired(stack: &StackRef, spec: &WebStackSpec, certificate: Option<&NodeId>) -> Vec<Node> {
    let Some(cdn) = &spec.cdn else {
        return Vec::new();
    };
    let https_tier = |tier: &str| {
        backend::ec2_tiers(spec).any(|t| t.name == tier && t.load_balancer.certificate.is_some())
    };
    let mut nodes = Vec::new();
    let mut origins: Vec<Prop> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut add_origin = |t: &Target| {
        let id = origin_id(t);
        if seen.contains(&id) {
            return;
        }
        seen.push(id.clone());
        origins.push(match t {
            Target::Bucket(role) => Prop::from([
                ("id", Prop::from(id)),
                ("domain", Prop::Attr(storage::id(role), "domain".into())),
                ("type", Prop::from("s3")),
                ("protocol", Prop::from("")),
                ("accessControl", Prop::Ref(access_id())),
            ]),
            Target::Tier(tier) => Prop::from([
                ("id", Prop::from(id)),
                (
                    "domain",
                    Prop::Attr(
                        NodeId::new(backend::LOAD_BALANCER, tier.as_str()),
                        "dnsName".into(),
                    ),
                ),
                ("type", Prop::from("custom")),
                (
                    "protocol",
                    Prop::from(if https_tier(tier) {
                        "https-only"
                    } else {
                        "http-only"
                    }),
                ),
                ("accessControl", Prop::from("")),
            ]),
        });
    };
    let behavior = |t: &Target, caching: Caching| {
        let https = matches!(t, Target::Tier(tier) if https_tier(tier));
        let (cache, request, methods) = policies(caching, https);
        json!({
            "origin": origin_id(t),
            "cachePolicy": cache,
            "originRequestPolicy": request,
            "methods": methods,
        })
    };
    let Some(default) = target(spec, &cdn.default_origin) else {
        return Vec::new();
    };
    add_origin(&default);
    let default_behavior = behavior(&default, Caching::Optimized);
    let mut behaviors = Vec::new();
    for b in &cdn.behaviors {
        let Some(t) = target(spec, &b.origin) else {
            continue;
        };
        add_origin(&t);
        let mut v = behavior(&t, b.caching);
        // The position among the behaviours built, as CloudFront reports it back.
        v["order"] = json!(behaviors.len());
        v["path"] = json!(b.path_pattern);
        behaviors.push(v);
    }
    let site = spec
        .frontend
        .as_ref()
        .filter(|f| f.kind == FrontendKind::S3)
        .and_then(|f| f.s3.as_ref());
    let root = site.map(|s| s.index_document.clone()).unwrap_or_default();
    let mut errors: Vec<Value> = cdn
        .error_responses
        .iter()
        .map(|e| {
            json!({
                "code": e.error_code,
                "responseCode": e.response_code,
                "page": e.response_page,
                "cacheSeconds": e.cache_seconds,
            })
        })
        .collect();
    // A single-page app answers paths it routes itself with its index page; S3 says 403 for
    // a missing object when the distribution may not list the bucket, 404 when it may.
    if let Some(s) = site.filter(|s| s.spa_fallback) {
        for code in [403, 404] {
            if !cdn.error_responses.iter().any(|e| e.error_code == code) {
                errors.push(json!({
                    "code": code,
                    "responseCode": 200,
                    "page": format!("/{}", s.index_document),
                    "cacheSeconds": 10,
                }));
            }
        }
    }
    errors.sort_by_key(|e| e["code"].as_i64());
    let served = served_buckets(spec);
    if !served.is_empty() {
        nodes.push(Node::new(ORIGIN_ACCESS_CONTROL, TIER, CDN, "").prop(
            "name",
            super::naming::physical_name(stack, "oac", 64).as_str(),
        ));
    }
    let mut d = Node::new(DISTRIBUTION, TIER, CDN, format!("{}-cdn", stack.name))
        .prop("origins", Prop::List(origins))
        .prop("defaultBehavior", default_behavior)
        .prop("behaviors", Value::Array(behaviors))
        .prop("aliases", json!(cdn.aliases))
        .prop("priceClass", price_class(cdn.price_class))
        .prop("defaultRootObject", root.as_str())
        .prop("errorResponses", Value::Array(errors))
        .prop("comment", comment(stack));
    d = match certificate {
        Some(c) => d.prop("certificate", c.clone()),
        None => d.prop("certificate", ""),
    };
    nodes.push(d);
    nodes
}

#[cfg(test)]
mod tests;
