//! A bucket's policy, a node of its own: it names the CDN's distribution, which names the
//! bucket as its origin, so bucket, distribution and policy are created in that order. It is
//! observed with its bucket and carries the bucket's ownership.

use async_trait::async_trait;
use serde_json::Value;

use super::{BUCKET_POLICY, SERVICE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, OrAbsent};
use crate::aws::{created, Scope};
use crate::engine::{FieldChange, Handler, Kind, Observed, Resolved};

/// A policy's id: its bucket's name (which holds no `/`) and `/policy`, apart from the
/// bucket's own.
pub(super) fn id(bucket: &str) -> String {
    format!("{bucket}/policy")
}

pub struct BucketPolicyHandler;

impl BucketPolicyHandler {
    async fn put(&self, scope: &Scope, node: &Resolved) -> Result<(), AwsError> {
        let bucket = node.req("bucket");
        let document = node
            .props
            .get("document")
            .cloned()
            .unwrap_or(Value::Null)
            .to_string();
        scope
            .api
            .call(SERVICE, "PutBucketPolicy", Effect::Idempotent, || {
                scope
                    .s3
                    .put_bucket_policy()
                    .bucket(bucket)
                    .policy(&document)
                    .send()
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Handler<Scope> for BucketPolicyHandler {
    fn kind(&self) -> Kind {
        BUCKET_POLICY
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["document"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        self.put(scope, node).await?;
        let bucket = node.req("bucket");
        Ok(created(scope, node, &id(bucket)).refs([bucket.to_owned()]))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.put(scope, node).await?;
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "DeleteBucketPolicy", Effect::Idempotent, || {
                scope
                    .s3
                    .delete_bucket_policy()
                    .bucket(current.str("bucket").unwrap_or_default())
                    .send()
            })
            .await
            .or_absent()
    }
}
