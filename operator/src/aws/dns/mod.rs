//! DNS in Route 53: the stack's hosted zone (created, or an existing public zone named by the
//! spec), alias records to the CDN and the load balancers, and the records that validate the
//! stack's certificates. Route 53 is global: its client reaches
//! [`crate::aws::GLOBAL_REGION`].
//!
//! Records carry no tags. Each record the stack writes has an ownership record beside it (a
//! TXT record under `_webstack-<type>.` of its name, stating the stack, the component and the
//! owner, as external-dns does), written in the same atomic change batch: after a crash both
//! exist or neither does, and records in a zone the stack shares are told apart from
//! everybody else's.

mod records;
mod zone;

use serde_json::json;

use super::{backend, certificates, Scope, StackRef};
use crate::api::WebStackSpec;
use crate::engine::{Engine, Kind, Node, NodeId, Prop};

pub use records::RecordHandler;
pub use zone::{existing_zone, DnsObserver, ZoneHandler};

pub const HOSTED_ZONE: Kind = Kind("HostedZone");
pub const RECORD: Kind = Kind("DnsRecord");

/// Every kind of this area, for the `DnsReady` condition.
pub const KINDS: &[Kind] = &[HOSTED_ZONE, RECORD];

const TIER: &str = "dns";
const SERVICE: &str = "route53";
/// The hosted zone every CloudFront distribution's alias records name.
pub const CLOUDFRONT_ZONE: &str = "Z2FDTNDATAQYW2";
/// How long resolvers keep a validation record.
const VALIDATION_TTL: i64 = 300;

/// Adds the DNS kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(DnsObserver)
        .handler(ZoneHandler)
        .handler(RecordHandler)
}

/// The node id of the stack's own zone.
pub fn zone_id() -> NodeId {
    NodeId::new(HOSTED_ZONE, "zone")
}

/// What records point at, by the spec's target names.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    /// The distribution, for `cdn`.
    pub cdn: Option<NodeId>,
    /// The certificates whose names lie in the zone, each with the names it covers: the
    /// regional ones first (a name two certificates cover is validated by one record, ACM's
    /// record for a name being the same in every region).
    pub certificates: Vec<(NodeId, Vec<String>)>,
}

/// `www` in `example.com` -> `www.example.com.`; `@` -> `example.com.`.
pub fn fqdn(label: &str, zone: &str) -> String {
    match label {
        "@" => format!("{zone}."),
        l => format!("{l}.{zone}."),
    }
}

fn record(role: String, zone: &Prop, name: Prop, type_: &str) -> Node {
    Node::new(RECORD, TIER, role, "")
        .prop("zone", zone.clone())
        .prop("name", name)
        .prop("type", type_)
}

/// The zone's node (when the stack creates it) and the records of the spec, in `existing` (the
/// id of the zone the spec names, when it is not the stack's).
pub fn desired(
    stack: &StackRef,
    spec: &WebStackSpec,
    existing: Option<&str>,
    targets: &Targets,
) -> Vec<Node> {
    let Some(dns) = &spec.dns else {
        return Vec::new();
    };
    let mut nodes = Vec::new();
    let zone = match existing.filter(|_| !dns.create_zone) {
        Some(id) => Prop::from(id),
        None if dns.create_zone => {
            nodes.push(
                Node::new(HOSTED_ZONE, TIER, "zone", format!("{}-zone", stack.name))
                    .prop("name", dns.zone.as_str()),
            );
            Prop::Ref(zone_id())
        }
        // The zone is not there (yet): preparing the stack says so.
        None => return Vec::new(),
    };
    for r in &dns.records {
        let label = if r.name == "@" {
            "apex"
        } else {
            r.name.as_str()
        };
        let name = fqdn(&r.name, &dns.zone);
        let (target, zone_of_target, types): (NodeId, Prop, &[&str]) = if r.target == "cdn" {
            let Some(cdn) = &targets.cdn else { continue };
            // CloudFront answers over IPv6 too.
            (cdn.clone(), Prop::from(CLOUDFRONT_ZONE), &["A", "AAAA"])
        } else if let Some(tier) = r.target.strip_prefix("tier/") {
            let lb = NodeId::new(backend::LOAD_BALANCER, tier);
            (lb.clone(), Prop::Attr(lb, "zoneId".into()), &["A"])
        } else {
            // `http-api` comes with the HTTP API.
            continue;
        };
        let attribute = if target.kind == backend::LOAD_BALANCER {
            "dnsName"
        } else {
            "domainName"
        };
        for t in types {
            nodes.push(
                record(
                    format!("{label}-{}", t.to_ascii_lowercase()),
                    &zone,
                    Prop::from(name.clone()),
                    t,
                )
                .prop(
                    "alias",
                    Prop::from([
                        ("dnsName", Prop::Attr(target.clone(), attribute.into())),
                        ("zoneId", zone_of_target.clone()),
                    ]),
                ),
            );
        }
    }
    let mut validated: Vec<String> = Vec::new();
    for (cert, names) in &targets.certificates {
        for n in names {
            let domain = n.trim_start_matches("*.").to_owned();
            if validated.contains(&domain) {
                continue;
            }
            validated.push(domain.clone());
            let attr = |part: &str| {
                Prop::Attr(
                    cert.clone(),
                    certificates::validation_attribute(&domain, part),
                )
            };
            nodes.push(
                record(format!("validation-{domain}"), &zone, attr("name"), "CNAME")
                    .prop("values", Prop::List(vec![attr("value")]))
                    .prop("ttl", VALIDATION_TTL)
                    // Written while the certificate waits for it.
                    .early(cert.clone()),
            );
        }
    }
    nodes
}

/// The alias target of a record as the handler and observer state it.
pub(crate) fn alias(dns_name: &str, zone: &str) -> serde_json::Value {
    json!({
        "dnsName": dns_name.trim_end_matches('.').to_ascii_lowercase(),
        "zoneId": zone,
    })
}

#[cfg(test)]
mod tests;
