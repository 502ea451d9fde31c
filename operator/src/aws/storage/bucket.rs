//! The bucket kind: created with owner-enforced object ownership, then tagged, its public
//! access blocked, encryption, versioning, lifecycle and CORS written, one idempotent call
//! each. The observer reads what a user could change out of band and what guards the data
//! (versioning, encryption, the public access block, object ownership, the policy) on every
//! observation; lifecycle and CORS rules are compared by the digest recorded in a tag.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_s3::operation::list_buckets::ListBucketsOutput;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, Bucket, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CorsConfiguration, CorsRule, CreateBucketConfiguration, Delete,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectIdentifier, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, Transition, TransitionStorageClass, VersioningConfiguration,
};
use serde_json::{json, Value};

use super::{BUCKET, BUCKET_POLICY, FRONTEND, SERVICE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass, OrAbsent};
use crate::aws::tags::{
    claim_taken, derived_name, owned_items, read_each, Ownership, Tags, DIGEST_TAG, OWNERSHIP_TAGS,
};
use crate::aws::{created, pages, Scope, GLOBAL_REGION};
use crate::engine::{digest, FieldChange, Handler, Kind, Observed, Observer, Resolved, Selector};

/// The ARN a bucket's tags are cached under.
pub(super) fn arn(name: &str) -> String {
    format!("arn:aws:s3:::{name}")
}

/// What the digest tag of a bucket records: the digests of its lifecycle and CORS rules as
/// written, and whether its objects go with it.
fn recorded(node: &Resolved) -> String {
    let d = |k: &str| digest(node.props.get(k).unwrap_or(&Value::Null));
    format!(
        "lifecycle={} cors={} deleteObjects={}",
        d("lifecycle"),
        d("cors"),
        node.bool("deleteObjects")
    )
}

/// The digest tag's entries, by property.
fn parse_recorded(value: &str) -> HashMap<&str, &str> {
    value
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// The attributes others refer to: the ARN, the objects' ARN pattern and the regional domain
/// the CDN reaches the bucket at.
fn attributes(o: Observed, name: &str, region: &str) -> Observed {
    o.prop("arn", arn(name))
        .prop("objects", format!("{}/*", arn(name)))
        .prop("domain", format!("{name}.s3.{region}.amazonaws.com"))
}

/// The name of a bucket from its ARN.
fn name_of(arn: &str) -> &str {
    arn.trim_start_matches("arn:aws:s3:::")
}

/// S3's tag reader: one `GetBucketTagging` per bucket never seen before, by ARN.
async fn read_tags(scope: &Scope, arns: Vec<String>) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call(SERVICE, "GetBucketTagging", Effect::Read, || {
                scope.s3.get_bucket_tagging().bucket(name_of(&arn)).send()
            })
            .await;
        match r {
            Ok(r) => Ok(r
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()),
            // NoSuchTagSet: a bucket without tags is nobody's here.
            Err(e) if e.code == "NoSuchTagSet" => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// A bucket's settings as AWS reports them; `None` when it is gone.
async fn settings(scope: &Scope, name: &str) -> Result<Option<Observed>, AwsError> {
    let s3 = &scope.s3;
    let versioning = scope
        .api
        .call(SERVICE, "GetBucketVersioning", Effect::Read, || {
            s3.get_bucket_versioning().bucket(name).send()
        });
    let encryption = scope
        .api
        .call(SERVICE, "GetBucketEncryption", Effect::Read, || {
            s3.get_bucket_encryption().bucket(name).send()
        });
    let block = scope
        .api
        .call(SERVICE, "GetPublicAccessBlock", Effect::Read, || {
            s3.get_public_access_block().bucket(name).send()
        });
    let ownership = scope
        .api
        .call(SERVICE, "GetBucketOwnershipControls", Effect::Read, || {
            s3.get_bucket_ownership_controls().bucket(name).send()
        });
    let (versioning, encryption, block, ownership) =
        futures::join!(versioning, encryption, block, ownership);
    let versioning = match versioning {
        Err(e) if e.code == "NoSuchBucket" => return Ok(None),
        other => other?,
    };
    let mut o = Observed::new(BUCKET, "", "", name).prop("name", name).prop(
        "versioning",
        versioning.status() == Some(&BucketVersioningStatus::Enabled),
    );
    let absent = |e: &AwsError| e.is_not_found() || e.code.ends_with("NotFoundError");
    let default = match encryption {
        Ok(r) => r
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .cloned(),
        Err(e) if absent(&e) => None,
        Err(e) => return Err(e),
    };
    o = o.prop(
        "encryption",
        default
            .as_ref()
            .map(|d| d.sse_algorithm().as_str().to_owned())
            .unwrap_or_default(),
    );
    if let Some(key) = default.as_ref().and_then(|d| d.kms_master_key_id()) {
        o = o.prop("kmsKey", key);
    }
    let blocked = match block {
        Ok(r) => r.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if absent(&e) => false,
        Err(e) => return Err(e),
    };
    let owner_enforced = match ownership {
        Ok(r) => r
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_owned())
            .unwrap_or_default(),
        Err(e) if absent(&e) => String::new(),
        Err(e) => return Err(e),
    };
    Ok(Some(
        o.prop("publicAccessBlocked", blocked)
            .prop("objectOwnership", owner_enforced),
    ))
}

/// The bucket's policy, as a parsed document; `None` when it has none.
async fn policy(scope: &Scope, name: &str) -> Result<Option<Value>, AwsError> {
    let r = scope
        .api
        .call(SERVICE, "GetBucketPolicy", Effect::Read, || {
            scope.s3.get_bucket_policy().bucket(name).send()
        })
        .await;
    match r {
        Ok(r) => Ok(r
            .policy()
            .map(|p| serde_json::from_str(p).unwrap_or(Value::String(p.to_owned())))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A bucket and its policy, as the stack's.
async fn observe_bucket(
    scope: &Scope,
    name: &str,
    o: Ownership,
) -> Result<Vec<Observed>, AwsError> {
    let Some(mut bucket) = settings(scope, name).await? else {
        return Ok(Vec::new());
    };
    let tags = scope.api.tags.get(&arn(name)).unwrap_or_default();
    let digests = tags
        .iter()
        .find(|(k, _)| k == DIGEST_TAG)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let entries = parse_recorded(&digests);
    for key in ["lifecycle", "cors"] {
        bucket = bucket.prop(key, entries.get(key).copied().unwrap_or_default());
    }
    bucket = bucket.prop(
        "deleteObjects",
        entries.get("deleteObjects") == Some(&"true"),
    );
    bucket.stack = o.stack.clone();
    bucket.role = o.role.clone();
    bucket.owner = o.owner.clone();
    let mut out = vec![attributes(bucket, name, &scope.region)];
    if let Some(document) = policy(scope, name).await? {
        out.push(
            Observed::new(BUCKET_POLICY, o.stack, o.role, super::policy::id(name))
                .owner(o.owner)
                .prop("bucket", name)
                .prop("document", document)
                .refs([name.to_owned()]),
        );
    }
    Ok(out)
}

pub struct BucketObserver;

#[async_trait]
impl Observer<Scope> for BucketObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[BUCKET, BUCKET_POLICY]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let arns: Vec<String> = pages(
            scope,
            SERVICE,
            "ListBuckets",
            |token| {
                scope
                    .s3
                    .list_buckets()
                    .bucket_region(&scope.region)
                    // Paginated: an account allowed more than 10,000 buckets needs it.
                    .max_buckets(1000)
                    .set_continuation_token(token)
                    .send()
            },
            ListBucketsOutput::continuation_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.buckets().iter().filter_map(Bucket::name))
        .filter(|n| derived_name(n))
        .map(arn)
        .collect();
        let owned = owned_items(
            scope,
            selector,
            arns,
            |a| Some(a.as_str()),
            |arns| read_tags(scope, arns),
        )
        .await?;
        let reads = owned
            .into_iter()
            .map(|(a, o)| async move { observe_bucket(scope, name_of(&a), o).await });
        let mut out = Vec::new();
        for r in futures::future::join_all(reads).await {
            out.extend(r?);
        }
        Ok(out)
    }
}

/// The field that lets a bucket's objects go with the stack.
fn delete_objects_field(role: &str) -> String {
    match role.strip_prefix("data-") {
        Some(name) => format!("spec.buckets[name={name}].deleteObjects"),
        None if role == FRONTEND => "spec.frontend.s3.deleteObjects".to_owned(),
        None => "deleteObjects".to_owned(),
    }
}

fn s3_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

pub struct BucketHandler;

impl BucketHandler {
    /// Writes the bucket's whole tag set (S3 replaces it), with the digest tag of `node`.
    async fn write_tags(&self, scope: &Scope, node: &Resolved, name: &str) -> Result<(), AwsError> {
        let mut tags = scope.tags(node);
        tags.push((DIGEST_TAG.to_owned(), recorded(node)));
        self.put_tags(scope, name, &tags).await
    }

    async fn put_tags(&self, scope: &Scope, name: &str, tags: &Tags) -> Result<(), AwsError> {
        let set = s3_tags(tags);
        if set.is_empty() {
            scope
                .api
                .call(SERVICE, "DeleteBucketTagging", Effect::Idempotent, || {
                    scope.s3.delete_bucket_tagging().bucket(name).send()
                })
                .await?;
        } else {
            let tagging = Tagging::builder()
                .set_tag_set(Some(set))
                .build()
                .map_err(|e| AwsError::invalid(SERVICE, "PutBucketTagging", e))?;
            scope
                .api
                .call(SERVICE, "PutBucketTagging", Effect::Idempotent, || {
                    scope
                        .s3
                        .put_bucket_tagging()
                        .bucket(name)
                        .tagging(tagging.clone())
                        .send()
                })
                .await?;
        }
        scope.api.tags.put(&arn(name), tags.clone());
        Ok(())
    }

    async fn block_public_access(&self, scope: &Scope, name: &str) -> Result<(), AwsError> {
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        scope
            .api
            .call(SERVICE, "PutPublicAccessBlock", Effect::Idempotent, || {
                scope
                    .s3
                    .put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(block.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn enforce_ownership(&self, scope: &Scope, name: &str) -> Result<(), AwsError> {
        let invalid = |e| AwsError::invalid(SERVICE, "PutBucketOwnershipControls", e);
        let controls = OwnershipControls::builder()
            .rules(
                OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?;
        scope
            .api
            .call(
                SERVICE,
                "PutBucketOwnershipControls",
                Effect::Idempotent,
                || {
                    scope
                        .s3
                        .put_bucket_ownership_controls()
                        .bucket(name)
                        .ownership_controls(controls.clone())
                        .send()
                },
            )
            .await
            .map(|_| ())
    }

    async fn encrypt(&self, scope: &Scope, node: &Resolved, name: &str) -> Result<(), AwsError> {
        let invalid = |e| AwsError::invalid(SERVICE, "PutBucketEncryption", e);
        let algorithm = ServerSideEncryption::from(node.req("encryption"));
        let kms = algorithm == ServerSideEncryption::AwsKms;
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(algorithm)
            .set_kms_master_key_id(node.str("kmsKey").filter(|_| kms).map(str::to_owned))
            .build()
            .map_err(invalid)?;
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    // One KMS request per bucket key instead of per object.
                    .bucket_key_enabled(kms)
                    .build(),
            )
            .build()
            .map_err(invalid)?;
        scope
            .api
            .call(SERVICE, "PutBucketEncryption", Effect::Idempotent, || {
                scope
                    .s3
                    .put_bucket_encryption()
                    .bucket(name)
                    .server_side_encryption_configuration(config.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn version(&self, scope: &Scope, node: &Resolved, name: &str) -> Result<(), AwsError> {
        // A bucket once versioned can only be suspended, never unversioned again.
        let status = if node.bool("versioning") {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        let config = VersioningConfiguration::builder().status(status).build();
        scope
            .api
            .call(SERVICE, "PutBucketVersioning", Effect::Idempotent, || {
                scope
                    .s3
                    .put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(config.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn lifecycle(&self, scope: &Scope, node: &Resolved, name: &str) -> Result<(), AwsError> {
        let rules = node.props.get("lifecycle").cloned().unwrap_or(Value::Null);
        let Some(rule) = lifecycle_rule(&rules)
            .map_err(|e| AwsError::invalid(SERVICE, "PutBucketLifecycleConfiguration", e))?
        else {
            return scope
                .api
                .call(SERVICE, "DeleteBucketLifecycle", Effect::Idempotent, || {
                    scope.s3.delete_bucket_lifecycle().bucket(name).send()
                })
                .await
                .or_absent();
        };
        let config = BucketLifecycleConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| AwsError::invalid(SERVICE, "PutBucketLifecycleConfiguration", e))?;
        scope
            .api
            .call(
                SERVICE,
                "PutBucketLifecycleConfiguration",
                Effect::Idempotent,
                || {
                    scope
                        .s3
                        .put_bucket_lifecycle_configuration()
                        .bucket(name)
                        .lifecycle_configuration(config.clone())
                        .send()
                },
            )
            .await
            .map(|_| ())
    }

    async fn cors(&self, scope: &Scope, node: &Resolved, name: &str) -> Result<(), AwsError> {
        let rules = node.props.get("cors").cloned().unwrap_or(Value::Null);
        if rules.is_null() {
            return scope
                .api
                .call(SERVICE, "DeleteBucketCors", Effect::Idempotent, || {
                    scope.s3.delete_bucket_cors().bucket(name).send()
                })
                .await
                .or_absent();
        }
        let invalid = |e| AwsError::invalid(SERVICE, "PutBucketCors", e);
        let list = |k: &str| -> Vec<String> {
            rules[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(list("allowedOrigins")))
            .set_allowed_methods(Some(list("allowedMethods")))
            .set_allowed_headers(Some(list("allowedHeaders")))
            .set_expose_headers(Some(list("exposeHeaders")))
            .max_age_seconds(rules["maxAgeSeconds"].as_i64().unwrap_or(3000) as i32)
            .build()
            .map_err(invalid)?;
        let config = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .map_err(invalid)?;
        scope
            .api
            .call(SERVICE, "PutBucketCors", Effect::Idempotent, || {
                scope
                    .s3
                    .put_bucket_cors()
                    .bucket(name)
                    .cors_configuration(config.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// Deletes every object version and delete marker, a thousand at a time.
    async fn empty(&self, scope: &Scope, name: &str) -> Result<(), AwsError> {
        loop {
            let listed = scope
                .api
                .call(SERVICE, "ListObjectVersions", Effect::Read, || {
                    scope.s3.list_object_versions().bucket(name).send()
                })
                .await?;
            let mut objects: Vec<ObjectIdentifier> = Vec::new();
            let versions = listed.versions().iter().map(|v| (v.key(), v.version_id()));
            let markers = listed
                .delete_markers()
                .iter()
                .map(|m| (m.key(), m.version_id()));
            for (key, version) in versions.chain(markers) {
                if let Some(key) = key {
                    objects.push(
                        ObjectIdentifier::builder()
                            .key(key)
                            .set_version_id(version.map(str::to_owned))
                            .build()
                            .map_err(|e| AwsError::invalid(SERVICE, "DeleteObjects", e))?,
                    );
                }
            }
            if objects.is_empty() {
                return Ok(());
            }
            for chunk in objects.chunks(1000) {
                let batch = Delete::builder()
                    .set_objects(Some(chunk.to_vec()))
                    .quiet(true)
                    .build()
                    .map_err(|e| AwsError::invalid(SERVICE, "DeleteObjects", e))?;
                scope
                    .api
                    .call(SERVICE, "DeleteObjects", Effect::Idempotent, || {
                        scope
                            .s3
                            .delete_objects()
                            .bucket(name)
                            .delete(batch.clone())
                            .send()
                    })
                    .await?;
            }
        }
    }
}

/// The lifecycle rule of a bucket from its desired rules; `None` when nothing is to expire.
fn lifecycle_rule(rules: &Value) -> Result<Option<LifecycleRule>, aws_sdk_s3::error::BuildError> {
    let days = |k: &str| rules[k].as_i64().map(|d| d as i32);
    if rules.is_null() {
        return Ok(None);
    }
    let mut rule = LifecycleRule::builder()
        .id("webstack")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build());
    if let Some(d) = days("expirationDays") {
        rule = rule.expiration(LifecycleExpiration::builder().days(d).build());
    }
    if let Some(d) = days("noncurrentVersionExpirationDays") {
        rule = rule.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(d)
                .build(),
        );
    }
    if let Some(d) = days("transitionToInfrequentAccessDays") {
        rule = rule.transitions(
            Transition::builder()
                .days(d)
                .storage_class(TransitionStorageClass::StandardIa)
                .build(),
        );
    }
    if let Some(d) = days("abortIncompleteUploadsDays") {
        rule = rule.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(d)
                .build(),
        );
    }
    rule.build().map(Some)
}

#[async_trait]
impl Handler<Scope> for BucketHandler {
    fn kind(&self) -> Kind {
        BUCKET
    }

    fn mutable(&self) -> &'static [&'static str] {
        &[
            "versioning",
            "encryption",
            "kmsKey",
            "publicAccessBlocked",
            "objectOwnership",
            "lifecycle",
            "cors",
            "deleteObjects",
        ]
    }

    fn digested(&self) -> &'static [&'static str] {
        &["lifecycle", "cors"]
    }

    fn holds_data(&self) -> bool {
        true
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let name = node.req("name");
        // us-east-1 is S3's default location and takes no constraint.
        let location = (scope.region != GLOBAL_REGION).then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(scope.region.as_str()))
                .build()
        });
        let made = scope
            .api
            .call(SERVICE, "CreateBucket", Effect::Idempotent, || {
                scope
                    .s3
                    .create_bucket()
                    .bucket(name)
                    .set_create_bucket_configuration(location.clone())
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .send()
            })
            .await;
        match made {
            Ok(_) => {}
            // The name carries the owner's hash: this account made it, in a create whose
            // answer was lost or before the tags were written, unless its tags name another
            // owner.
            Err(e) if e.code == "BucketAlreadyOwnedByYou" => {
                let tags = read_tags(scope, vec![arn(name)]).await?;
                let tags = tags.get(&arn(name));
                if tags.is_some_and(|t| t.iter().any(|(k, _)| k == crate::aws::OWNER_TAG)) {
                    claim_taken(scope, tags, &e, &format!("the bucket {name}"))?;
                }
            }
            Err(e) if e.code == "BucketAlreadyExists" => {
                return Err(AwsError::new(
                    SERVICE,
                    "CreateBucket",
                    e.code.clone(),
                    format!("the bucket name {name} is taken by another AWS account"),
                    ErrorClass::Permanent,
                ))
            }
            Err(e) => return Err(e),
        }
        // Ownership first, so that the bucket is found by its tags after a crash; what the
        // digest tag records, once it is written.
        self.put_tags(scope, name, &scope.tags(node)).await?;
        self.block_public_access(scope, name).await?;
        self.encrypt(scope, node, name).await?;
        if node.bool("versioning") {
            self.version(scope, node, name).await?;
        }
        self.lifecycle(scope, node, name).await?;
        if !node.props.get("cors").unwrap_or(&Value::Null).is_null() {
            self.cors(scope, node, name).await?;
        }
        self.write_tags(scope, node, name).await?;
        let mut o = attributes(created(scope, node, name), name, &scope.region);
        for key in ["lifecycle", "cors"] {
            o.props.insert(
                key.into(),
                json!(digest(node.props.get(key).unwrap_or(&Value::Null))),
            );
        }
        Ok(o)
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let name = current.id.as_str();
        let mut retag = false;
        let mut encrypted = false;
        for c in changes {
            match c.field.as_str() {
                "versioning" => self.version(scope, node, name).await?,
                "encryption" | "kmsKey" if !encrypted => {
                    self.encrypt(scope, node, name).await?;
                    encrypted = true;
                }
                "publicAccessBlocked" => self.block_public_access(scope, name).await?,
                "objectOwnership" => self.enforce_ownership(scope, name).await?,
                "lifecycle" => {
                    self.lifecycle(scope, node, name).await?;
                    retag = true;
                }
                "cors" => {
                    self.cors(scope, node, name).await?;
                    retag = true;
                }
                "deleteObjects" => retag = true,
                _ => {}
            }
        }
        if retag {
            self.write_tags(scope, node, name).await?;
        }
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let name = current.id.as_str();
        if current.props.get("deleteObjects") == Some(&Value::Bool(true)) {
            match self.empty(scope, name).await {
                Err(e) if e.code == "NoSuchBucket" => return Ok(()),
                other => other?,
            }
        }
        let deleted = scope
            .api
            .call(SERVICE, "DeleteBucket", Effect::Idempotent, || {
                scope.s3.delete_bucket().bucket(name).send()
            })
            .await;
        match deleted {
            Err(e) if e.code == "BucketNotEmpty" => Err(AwsError::new(
                SERVICE,
                "DeleteBucket",
                e.code.clone(),
                format!(
                    "the bucket {name} still holds objects: empty it, or set {} to delete them with the stack",
                    delete_objects_field(&current.role)
                ),
                ErrorClass::Permanent,
            )),
            other => {
                other.or_absent()?;
                scope.api.tags.forget(&arn(name));
                Ok(())
            }
        }
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        for o in resources {
            let key = arn(&o.id);
            let tags = match scope.api.tags.get(&key) {
                Some(t) => t,
                None => read_tags(scope, vec![key.clone()])
                    .await?
                    .remove(&key)
                    .unwrap_or_default(),
            };
            let kept: Tags = tags
                .into_iter()
                .filter(|(k, _)| !OWNERSHIP_TAGS.contains(&k.as_str()))
                .collect();
            self.put_tags(scope, &o.id, &kept).await?;
            scope.api.tags.forget(&key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tag_reads_back_what_it_records() {
        let value = "lifecycle=abc cors=def deleteObjects=true";
        let parsed = parse_recorded(value);
        assert_eq!(parsed["lifecycle"], "abc");
        assert_eq!(parsed["cors"], "def");
        assert_eq!(parsed["deleteObjects"], "true");
    }

    #[test]
    fn the_field_that_lets_objects_go_names_the_bucket() {
        assert_eq!(
            delete_objects_field("data-uploads"),
            "spec.buckets[name=uploads].deleteObjects"
        );
        assert_eq!(
            delete_objects_field("frontend"),
            "spec.frontend.s3.deleteObjects"
        );
    }

    #[test]
    fn a_lifecycle_without_rules_writes_none() {
        assert!(lifecycle_rule(&Value::Null).unwrap().is_none());
        let rule = lifecycle_rule(&json!({
            "noncurrentVersionExpirationDays": 30,
            "abortIncompleteUploadsDays": 7,
            "expirationDays": null,
            "transitionToInfrequentAccessDays": null,
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            rule.noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days()),
            Some(30)
        );
        assert!(rule.expiration().is_none());
    }
}
