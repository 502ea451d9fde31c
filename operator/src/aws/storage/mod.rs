//! S3 buckets: the frontend's static site and the data buckets of `spec.buckets`. Every bucket
//! is private (all public access blocked, ACLs off through owner-enforced object ownership),
//! encrypted at rest, reachable over TLS only, and named from the stack, its owner and its
//! role, so that a create after a crash finds the bucket it made. A bucket served by the CDN is
//! readable by that distribution alone, through a bucket policy naming its ARN (the origin
//! access control signs the requests). A bucket that still holds objects goes with the stack
//! only when the spec says `deleteObjects`; otherwise destroy stops and names it.

mod bucket;
mod policy;

use serde_json::{json, Value};

use super::naming::{physical_name, RDS_MAX};
use super::{Scope, StackRef};
use crate::api::{BucketEncryption, FrontendKind, Lifecycle, WebStackSpec};
use crate::engine::{Engine, Kind, Node, NodeId, Prop};

pub use bucket::{BucketHandler, BucketObserver};
pub use policy::BucketPolicyHandler;

pub const BUCKET: Kind = Kind("Bucket");
pub const BUCKET_POLICY: Kind = Kind("BucketPolicy");

/// Every kind of this area, for the `StorageReady` condition.
pub const KINDS: &[Kind] = &[BUCKET, BUCKET_POLICY];

const SERVICE: &str = "s3";
/// The role of the frontend's bucket.
pub const FRONTEND: &str = "frontend";
/// S3's CORS rules let browsers read and upload (presigned URLs) from these methods.
const CORS_METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST"];

/// Adds the storage kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(BucketObserver)
        .handler(BucketHandler)
        .handler(BucketPolicyHandler)
}

/// The role of a data bucket of `spec.buckets`.
pub fn data_role(name: &str) -> String {
    format!("data-{name}")
}

/// The node id of a bucket by its role ([`FRONTEND`] or [`data_role`]).
pub fn id(role: &str) -> NodeId {
    NodeId::new(BUCKET, role)
}

/// The node id of a bucket's policy.
pub fn policy_id(role: &str) -> NodeId {
    NodeId::new(BUCKET_POLICY, role)
}

/// A bucket name S3 accepts and nobody else holds: the stack's physical name (lower case,
/// letters, digits and `-`, at most 63 characters, the owner's hash at the end), never in the
/// forms S3 reserves (`xn--`, `sthree-` and `amzn-s3-demo-` prefixes; the IP form cannot occur
/// without dots).
pub fn bucket_name(stack: &StackRef, role: &str) -> String {
    let name = physical_name(stack, role, RDS_MAX);
    let reserved = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p));
    match name.rsplit_once('-') {
        Some((readable, hash)) if reserved => {
            let mut readable = format!("w{readable}");
            readable.truncate(RDS_MAX - hash.len() - 1);
            format!("{}-{hash}", readable.trim_end_matches('-'))
        }
        _ => name,
    }
}

/// The lifecycle rules of a bucket as the handler writes them; `None` when there are none.
pub fn lifecycle_rules(lifecycle: Option<&Lifecycle>, versioned: bool, site: bool) -> Value {
    let defaults = Lifecycle {
        abort_incomplete_uploads_days: 7,
        // A site's old versions are kept for rollbacks for a month, then expire.
        noncurrent_version_expiration_days: (site && versioned).then_some(30),
        ..Default::default()
    };
    let l = lifecycle.unwrap_or(&defaults);
    json!({
        "expirationDays": l.expiration_days,
        "noncurrentVersionExpirationDays": l.noncurrent_version_expiration_days,
        "transitionToInfrequentAccessDays": l.transition_to_infrequent_access_days,
        "abortIncompleteUploadsDays": l.abort_incomplete_uploads_days,
    })
}

/// The CORS rule of a data bucket: the origins the spec lists, or else the stack's own
/// (`https://` and each CDN alias); `null` when there are none.
pub fn cors_rules(explicit: &[String], spec: &WebStackSpec) -> Value {
    let mut origins: Vec<String> = if explicit.is_empty() {
        spec.cdn
            .iter()
            .flat_map(|c| c.aliases.iter())
            .map(|a| format!("https://{a}"))
            .collect()
    } else {
        explicit.to_vec()
    };
    origins.sort();
    origins.dedup();
    if origins.is_empty() {
        return Value::Null;
    }
    json!({
        "allowedOrigins": origins,
        "allowedMethods": CORS_METHODS,
        "allowedHeaders": ["*"],
        "exposeHeaders": ["ETag"],
        "maxAgeSeconds": 3000,
    })
}

fn encryption(e: BucketEncryption) -> &'static str {
    match e {
        BucketEncryption::S3Managed => "AES256",
        BucketEncryption::Kms => "aws:kms",
    }
}

#[allow(clippy::too_many_arguments)]
fn bucket_node(
    stack: &StackRef,
    tier: &str,
    role: &str,
    versioning: bool,
    enc: BucketEncryption,
    lifecycle: Value,
    cors: Value,
    delete_objects: bool,
) -> Node {
    let name = bucket_name(stack, role);
    Node::new(BUCKET, tier, role, name.clone())
        .prop("name", name.as_str())
        .prop("versioning", versioning)
        .prop("encryption", encryption(enc))
        .prop("publicAccessBlocked", true)
        .prop("objectOwnership", "BucketOwnerEnforced")
        .prop("lifecycle", lifecycle)
        .prop("cors", cors)
        .prop("deleteObjects", delete_objects)
}

/// The buckets of a spec: the frontend's site (kind `S3`) and each data bucket.
pub fn desired(stack: &StackRef, spec: &WebStackSpec) -> Vec<Node> {
    let mut nodes = Vec::new();
    if let Some(site) = spec
        .frontend
        .as_ref()
        .filter(|f| f.kind == FrontendKind::S3)
        .and_then(|f| f.s3.as_ref())
    {
        nodes.push(bucket_node(
            stack,
            "frontend",
            FRONTEND,
            site.versioning,
            site.encryption,
            lifecycle_rules(site.lifecycle.as_ref(), site.versioning, true),
            Value::Null,
            site.delete_objects,
        ));
    }
    for b in &spec.buckets {
        nodes.push(bucket_node(
            stack,
            "storage",
            &data_role(&b.name),
            b.versioning,
            b.encryption,
            lifecycle_rules(b.lifecycle.as_ref(), b.versioning, false),
            cors_rules(&b.cors_origins, spec),
            b.delete_objects,
        ));
    }
    nodes
}

/// The policy of every bucket: requests over plain HTTP are refused, and a bucket the CDN
/// serves (its role in `served`) is readable by that distribution (`distribution`, the node
/// whose `arn` the policy names) and nobody else.
pub fn policies(buckets: &[Node], served: &[String], distribution: Option<&NodeId>) -> Vec<Node> {
    buckets
        .iter()
        .map(|b| {
            let role = b.id.role.as_str();
            let arn = || Prop::Attr(b.id.clone(), "arn".into());
            let objects = || Prop::Attr(b.id.clone(), "objects".into());
            let mut statements = vec![Prop::from([
                ("Sid", Prop::from("DenyInsecureTransport")),
                ("Effect", Prop::from("Deny")),
                ("Principal", Prop::from("*")),
                ("Action", Prop::from("s3:*")),
                ("Resource", Prop::List(vec![arn(), objects()])),
                (
                    "Condition",
                    Prop::Value(json!({"Bool": {"aws:SecureTransport": "false"}})),
                ),
            ])];
            if let Some(d) = distribution.filter(|_| served.iter().any(|s| s == role)) {
                let source = Prop::from([("AWS:SourceArn", Prop::Attr(d.clone(), "arn".into()))]);
                statements.push(Prop::from([
                    ("Sid", Prop::from("AllowStackDistribution")),
                    ("Effect", Prop::from("Allow")),
                    (
                        "Principal",
                        Prop::Value(json!({"Service": "cloudfront.amazonaws.com"})),
                    ),
                    ("Action", Prop::from("s3:GetObject")),
                    ("Resource", objects()),
                    ("Condition", Prop::from([("StringEquals", source)])),
                ]));
            }
            let document = Prop::from([
                ("Version", Prop::from("2012-10-17")),
                ("Statement", Prop::List(statements)),
            ]);
            let tier = b.component.split('/').next().unwrap_or("storage");
            Node::new(BUCKET_POLICY, tier, role, "")
                .prop("bucket", b.id.clone())
                .prop("document", document)
        })
        .collect()
}

#[cfg(test)]
mod tests;
