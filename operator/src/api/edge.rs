//! The edge: the CDN (CloudFront), DNS (Route 53) and TLS certificates (ACM).

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A CloudFront distribution in front of the stack.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.behaviors) || self.behaviors.all(b, self.behaviors.exists_one(c, c.pathPattern == b.pathPattern))").message("each path pattern may appear once").field_path(".behaviors"))]
pub struct CdnSpec {
    /// Where requests go that no behavior matches: an origin reference (see `behaviors`).
    /// Defaults to `frontend`.
    #[serde(default = "frontend")]
    #[x_kube(validation = Rule::new("self.matches('^(frontend|http-api|bucket/[a-z0-9-]+|tier/[a-z0-9-]+)$')").message("an origin is frontend, http-api, bucket/<name> or tier/<name>"))]
    #[schemars(length(max = 64))]
    pub default_origin: String,

    /// Path-based routing, such as `/api/*` to `tier/api` and `/assets/*` to
    /// `bucket/processed`. Origins: `frontend` (the static site or the frontend tier),
    /// `http-api` (the HTTP API), `bucket/<name>` (a bucket of `spec.buckets`, read through an
    /// origin access control), `tier/<name>` (a backend tier's load balancer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["pathPattern".into()]))]
    pub behaviors: Vec<CdnBehavior>,

    /// `PriceClass_100` (North America and Europe, the default), `PriceClass_200` or
    /// `PriceClass_All`.
    #[serde(default)]
    pub price_class: PriceClass,

    /// Custom error responses, such as 403 and 404 answered with `/index.html` and 200.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub error_responses: Vec<ErrorResponse>,

    /// Domain names the distribution answers to, such as `example.com` and
    /// `www.example.com`; they need a certificate that covers them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253), regex(pattern = super::patterns::DOMAIN)))]
    pub aliases: Vec<String>,

    /// The certificate (a name of `spec.certificates`) for the aliases; it is issued in
    /// us-east-1, where CloudFront reads certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub certificate: Option<String>,
}

fn frontend() -> String {
    "frontend".into()
}

/// A CDN path rule.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CdnBehavior {
    /// A CloudFront path pattern, such as `/api/*` or `*.jpg`.
    #[x_kube(validation = Rule::new("self.matches('^(/|\\\\*)[A-Za-z0-9_\\\\-./*?~]*$') && !self.contains('//')").message("a path pattern starts with '/' or '*' and holds letters, digits and _ - . / * ? ~ only"))]
    #[schemars(length(min = 1, max = 255))]
    pub path_pattern: String,

    /// The origin: `frontend`, `http-api`, `bucket/<name>` or `tier/<name>`.
    #[x_kube(validation = Rule::new("self.matches('^(frontend|http-api|bucket/[a-z0-9-]+|tier/[a-z0-9-]+)$')").message("an origin is frontend, http-api, bucket/<name> or tier/<name>"))]
    #[schemars(length(max = 64))]
    pub origin: String,

    /// `Optimized` (the default; static content) or `Disabled` (APIs: every request reaches
    /// the origin with its headers, cookies and query).
    #[serde(default)]
    pub caching: Caching,
}

/// Caching of a CDN behavior.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Caching {
    #[default]
    Optimized,
    Disabled,
}

/// CloudFront price classes.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PriceClass {
    #[default]
    #[serde(rename = "PriceClass_100")]
    PriceClass100,
    #[serde(rename = "PriceClass_200")]
    PriceClass200,
    #[serde(rename = "PriceClass_All")]
    PriceClassAll,
}

/// A custom error response of the CDN.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorResponse {
    /// The origin's error code, such as 404.
    #[schemars(range(min = 400, max = 599))]
    pub error_code: u16,
    /// The code returned instead, such as 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 200, max = 599))]
    pub response_code: Option<u16>,
    /// The page returned instead, such as `/index.html`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^/"))]
    pub response_page: Option<String>,
    /// Seconds CloudFront caches the error. Defaults to 10.
    #[serde(default = "ten")]
    #[schemars(range(min = 0, max = 31536000))]
    pub cache_seconds: u32,
}

fn ten() -> u32 {
    10
}

/// DNS for the stack in a Route 53 hosted zone.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsSpec {
    /// The zone's domain, such as `example.com`.
    #[x_kube(validation = Rule::new("self.matches('^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\\\.)+[a-z]{2,63}$')").message("a zone is a lower-case domain name such as example.com"))]
    #[schemars(length(max = 253))]
    pub zone: String,

    /// Create the zone (`true`), or use the existing public zone of that name (`false`, the
    /// default: registrars point at an existing zone's name servers).
    #[serde(default)]
    pub create_zone: bool,

    /// Records: alias records to the CDN, a tier's load balancer or the HTTP API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub records: Vec<DnsRecord>,
}

/// An alias record.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsRecord {
    /// The name within the zone: `@` for the apex, or a label such as `www` or `api`.
    #[x_kube(validation = Rule::new("self == '@' || self.matches('^[a-z0-9*]([a-z0-9-.]{0,61}[a-z0-9])?$')").message("a record name is @ or a lower-case label such as www"))]
    #[schemars(length(max = 63))]
    pub name: String,

    /// What it points at: `cdn`, `http-api` or `tier/<name>`.
    #[x_kube(validation = Rule::new("self.matches('^(cdn|http-api|tier/[a-z0-9-]+)$')").message("a record target is cdn, http-api or tier/<name>"))]
    #[schemars(length(max = 64))]
    pub target: String,
}

/// An ACM certificate, validated through DNS records in the stack's zone.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSpec {
    /// The certificate's name within the stack, as `cdn.certificate` and
    /// `loadBalancer.certificate` refer to it.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$')").message("certificate names are lower-case letters, digits and '-'"))]
    #[schemars(length(max = 32))]
    pub name: String,

    /// The main domain, such as `example.com` or `*.example.com`.
    #[x_kube(validation = Rule::new("self.matches('^(\\\\*\\\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\\\.)+[a-z]{2,63}$')").message("a domain name such as example.com or *.example.com"))]
    #[schemars(length(max = 253))]
    pub domain: String,

    /// More domains the certificate covers, such as `www.example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(max = 253), regex(pattern = super::patterns::DOMAIN)))]
    pub subject_alternative_names: Vec<String>,
}
