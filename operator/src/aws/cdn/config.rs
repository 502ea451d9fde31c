//! A distribution's configuration both ways: from the node's resolved properties to what
//! CloudFront takes, and from what CloudFront reports back to the same properties, so that
//! the engine compares like with like. Pure; tested without AWS.

use aws_sdk_cloudfront::error::BuildError;
use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomErrorResponse,
    CustomErrorResponses, CustomOriginConfig, DefaultCacheBehavior, DistributionConfig,
    HttpVersion, Method, MinimumProtocolVersion, Origin, OriginProtocolPolicy, OriginSslProtocols,
    Origins, PriceClass, S3OriginConfig, SslProtocol, SslSupportMethod, ViewerCertificate,
    ViewerProtocolPolicy,
};
use serde_json::{json, Value};

/// The managed cache policies and origin request policies CloudFront offers in every account.
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
/// Every header (the `Host` too, so that an HTTPS origin's certificate for the site's names
/// matches), cookie and query string.
pub const ALL_VIEWER: &str = "216adef6-5c7f-47e4-b989-5492eafa07d3";
/// Every header but `Host`, every cookie and query string: for origins reached by their own
/// name over HTTP.
pub const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

const ALL_METHODS: &[Method] = &[
    Method::Get,
    Method::Head,
    Method::Options,
    Method::Put,
    Method::Post,
    Method::Patch,
    Method::Delete,
];
const READ_METHODS: &[Method] = &[Method::Get, Method::Head];

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

fn origin(v: &Value) -> Result<Origin, BuildError> {
    let mut o = Origin::builder().id(s(v, "id")).domain_name(s(v, "domain"));
    if s(v, "type") == "s3" {
        // An origin access control signs the requests; no origin access identity.
        o = o
            .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
            .origin_access_control_id(s(v, "accessControl"));
    } else {
        o = o.custom_origin_config(
            CustomOriginConfig::builder()
                .http_port(80)
                .https_port(443)
                .origin_protocol_policy(OriginProtocolPolicy::from(s(v, "protocol").as_str()))
                .origin_ssl_protocols(
                    OriginSslProtocols::builder()
                        .quantity(1)
                        .items(SslProtocol::TlSv12)
                        .build()?,
                )
                .build()?,
        );
    }
    o.build()
}

fn methods(v: &Value) -> Result<AllowedMethods, BuildError> {
    let all = s(v, "methods") == "all";
    let items = if all { ALL_METHODS } else { READ_METHODS };
    AllowedMethods::builder()
        .quantity(items.len() as i32)
        .set_items(Some(items.to_vec()))
        .cached_methods(
            CachedMethods::builder()
                .quantity(2)
                .set_items(Some(READ_METHODS.to_vec()))
                .build()?,
        )
        .build()
}

fn default_behavior(v: &Value) -> Result<DefaultCacheBehavior, BuildError> {
    DefaultCacheBehavior::builder()
        .target_origin_id(s(v, "origin"))
        .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
        .cache_policy_id(s(v, "cachePolicy"))
        .set_origin_request_policy_id(Some(s(v, "originRequestPolicy")).filter(|p| !p.is_empty()))
        .allowed_methods(methods(v)?)
        .compress(true)
        .build()
}

fn behavior(v: &Value) -> Result<CacheBehavior, BuildError> {
    CacheBehavior::builder()
        .path_pattern(s(v, "path"))
        .target_origin_id(s(v, "origin"))
        .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
        .cache_policy_id(s(v, "cachePolicy"))
        .set_origin_request_policy_id(Some(s(v, "originRequestPolicy")).filter(|p| !p.is_empty()))
        .allowed_methods(methods(v)?)
        .compress(true)
        .build()
}

fn list(props: &Value, k: &str) -> Vec<Value> {
    props[k].as_array().cloned().unwrap_or_default()
}

/// The configuration CloudFront takes for `props` (a node's resolved properties), with the
/// caller reference the distribution was created with and whether it is enabled.
pub fn distribution_config(
    props: &Value,
    caller_reference: &str,
    enabled: bool,
) -> Result<DistributionConfig, BuildError> {
    let origins: Vec<Origin> = list(props, "origins")
        .iter()
        .map(origin)
        .collect::<Result<_, _>>()?;
    let mut behaviors = list(props, "behaviors");
    behaviors.sort_by_key(|b| b["order"].as_i64().unwrap_or_default());
    let behaviors: Vec<CacheBehavior> = behaviors.iter().map(behavior).collect::<Result<_, _>>()?;
    let aliases: Vec<String> = list(props, "aliases")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let errors: Vec<CustomErrorResponse> = list(props, "errorResponses")
        .iter()
        .map(|e| {
            CustomErrorResponse::builder()
                .error_code(e["code"].as_i64().unwrap_or_default() as i32)
                .set_response_code(e["responseCode"].as_i64().map(|c| c.to_string()))
                .set_response_page_path(e["page"].as_str().map(str::to_owned))
                .error_caching_min_ttl(e["cacheSeconds"].as_i64().unwrap_or(10))
                .build()
        })
        .collect::<Result<_, _>>()?;
    let certificate = s(props, "certificate");
    let viewer = if certificate.is_empty() {
        ViewerCertificate::builder()
            .cloud_front_default_certificate(true)
            .build()
    } else {
        ViewerCertificate::builder()
            .acm_certificate_arn(certificate)
            .ssl_support_method(SslSupportMethod::SniOnly)
            .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
            .build()
    };
    DistributionConfig::builder()
        .caller_reference(caller_reference)
        .comment(s(props, "comment"))
        .enabled(enabled)
        .origins(
            Origins::builder()
                .quantity(origins.len() as i32)
                .set_items(Some(origins))
                .build()?,
        )
        .default_cache_behavior(default_behavior(&props["defaultBehavior"])?)
        .cache_behaviors(
            CacheBehaviors::builder()
                .quantity(behaviors.len() as i32)
                .set_items((!behaviors.is_empty()).then_some(behaviors))
                .build()?,
        )
        .aliases(
            Aliases::builder()
                .quantity(aliases.len() as i32)
                .set_items((!aliases.is_empty()).then_some(aliases))
                .build()?,
        )
        .custom_error_responses(
            CustomErrorResponses::builder()
                .quantity(errors.len() as i32)
                .set_items((!errors.is_empty()).then_some(errors))
                .build()?,
        )
        .viewer_certificate(viewer)
        .price_class(PriceClass::from(s(props, "priceClass").as_str()))
        .default_root_object(s(props, "defaultRootObject"))
        .http_version(HttpVersion::Http2and3)
        .is_ipv6_enabled(true)
        .build()
}

fn methods_of(m: Option<&AllowedMethods>) -> &'static str {
    match m.is_some_and(|m| m.items().contains(&Method::Post)) {
        true => "all",
        false => "read",
    }
}

/// The properties a configuration amounts to, in the shape [`distribution_config`] reads.
/// `access_control` stands in for the origin access control of S3 origins where CloudFront
/// does not report it back.
pub fn props_of(c: &DistributionConfig, access_control: Option<&str>) -> Value {
    let origins: Vec<Value> = c
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            // Every origin is one or the other; an S3 origin reached through an origin access
            // control may come back without its (empty) S3 settings.
            let s3 = o.custom_origin_config().is_none();
            let reported = o.origin_access_control_id().filter(|id| !id.is_empty());
            json!({
                "id": o.id(),
                "domain": o.domain_name(),
                "type": if s3 { "s3" } else { "custom" },
                "protocol": o
                    .custom_origin_config()
                    .map(|c| c.origin_protocol_policy().as_str())
                    .unwrap_or_default(),
                "accessControl": match s3 {
                    true => reported.or(access_control).unwrap_or_default(),
                    false => "",
                },
            })
        })
        .collect();
    let d = c.default_cache_behavior();
    let behaviors: Vec<Value> = c
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "order": i,
                "path": b.path_pattern(),
                "origin": b.target_origin_id(),
                "cachePolicy": b.cache_policy_id().unwrap_or_default(),
                "originRequestPolicy": b.origin_request_policy_id().unwrap_or_default(),
                "methods": methods_of(b.allowed_methods()),
            })
        })
        .collect();
    let errors: Vec<Value> = c
        .custom_error_responses()
        .map(|e| e.items())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            json!({
                "code": e.error_code(),
                "responseCode": e.response_code().and_then(|c| c.parse::<i64>().ok()),
                // CloudFront reports an unset page as empty.
                "page": e.response_page_path().filter(|p| !p.is_empty()),
                "cacheSeconds": e.error_caching_min_ttl().unwrap_or(10),
            })
        })
        .collect();
    json!({
        "origins": origins,
        "defaultBehavior": {
            "origin": d.map(|d| d.target_origin_id()).unwrap_or_default(),
            "cachePolicy": d.and_then(|d| d.cache_policy_id()).unwrap_or_default(),
            "originRequestPolicy": d.and_then(|d| d.origin_request_policy_id()).unwrap_or_default(),
            "methods": methods_of(d.and_then(|d| d.allowed_methods())),
        },
        "behaviors": behaviors,
        "aliases": c.aliases().map(|a| a.items()).unwrap_or_default(),
        "certificate": c
            .viewer_certificate()
            .and_then(|v| v.acm_certificate_arn())
            .unwrap_or_default(),
        "priceClass": c.price_class().map(|p| p.as_str()).unwrap_or_default(),
        "defaultRootObject": c.default_root_object().unwrap_or_default(),
        "errorResponses": errors,
        "comment": c.comment(),
    })
}
