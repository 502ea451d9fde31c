//! Private container registries (ECR) of `spec.repositories`: scan on push, immutable tags,
//! encrypted, and a lifecycle policy that keeps the last N images. Names are unique per
//! account and region: each is derived from the stack, its owner and the repository's name.
//! A repository holds images: it goes only with the stack, never because the spec stopped
//! naming it.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository, Tag,
};
use serde_json::{json, Value};

use super::client::Effect;
use super::error::{AwsError, OrAbsent};
use super::naming::physical_name;
use super::tags::{arn_of, claim_taken, owned_listing, read_each, release_each, Tags, DIGEST_TAG};
use super::{created, pages, Scope, StackRef};
use crate::api::WebStackSpec;
use crate::engine::{
    digest, Engine, FieldChange, Handler, Kind, Node, NodeId, Observed, Observer, Resolved,
    Selector,
};

pub const REPOSITORY: Kind = Kind("Repository");

/// Every kind of this area, for the `RegistryReady` condition.
pub const KINDS: &[Kind] = &[REPOSITORY];

const TIER: &str = "registry";
const SERVICE: &str = "ecr";
/// ECR's limit on repository names.
const ECR_MAX: usize = 256;

/// Adds the registry kind to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(RepositoryObserver)
        .handler(RepositoryHandler)
}

/// The node of a repository by its spec name.
pub fn id(name: &str) -> NodeId {
    NodeId::new(REPOSITORY, name)
}

/// The lifecycle policy that expires all but the newest `keep` images.
pub fn lifecycle_policy(keep: u32) -> Value {
    json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("Keep the last {keep} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep,
            },
            "action": {"type": "expire"},
        }],
    })
}

/// The repositories of a spec.
pub fn desired(stack: &StackRef, spec: &WebStackSpec) -> Vec<Node> {
    spec.repositories
        .iter()
        .map(|r| {
            let name = physical_name(stack, &r.name, ECR_MAX);
            Node::new(REPOSITORY, TIER, r.name.as_str(), name.clone())
                .prop("name", name.as_str())
                .prop("scanOnPush", r.scan_on_push)
                .prop("immutableTags", r.immutable_tags)
                .prop(
                    "lifecycle",
                    r.keep_last_images
                        .map(lifecycle_policy)
                        .unwrap_or(Value::Null),
                )
        })
        .collect()
}

/// ECR's tag reader: one `ListTagsForResource` per repository never seen before.
async fn read_tags(scope: &Scope, arns: Vec<String>) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call(SERVICE, "ListTagsForResource", Effect::Read, || {
                scope.ecr.list_tags_for_resource().resource_arn(&arn).send()
            })
            .await?;
        let tags = r
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        Ok(tags)
    })
    .await
}

fn observed(scope: &Scope, r: &Repository, o: super::tags::Ownership) -> Observed {
    let arn = r.repository_arn().unwrap_or_default();
    let recorded = scope
        .api
        .tags
        .get(arn)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == DIGEST_TAG)
        .map(|(_, v)| v)
        .unwrap_or_default();
    Observed::new(
        REPOSITORY,
        o.stack,
        o.role,
        r.repository_name().unwrap_or_default(),
    )
    .owner(o.owner)
    .prop("name", r.repository_name().unwrap_or_default())
    .prop(
        "scanOnPush",
        r.image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
    )
    .prop(
        "immutableTags",
        r.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
    )
    .prop("lifecycle", recorded)
    .prop("arn", arn)
    .prop("uri", r.repository_uri().unwrap_or_default())
}

pub struct RepositoryObserver;

#[async_trait]
impl Observer<Scope> for RepositoryObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[REPOSITORY]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let repositories: Vec<Repository> = pages(
            scope,
            SERVICE,
            "DescribeRepositories",
            |token| {
                scope
                    .ecr
                    .describe_repositories()
                    .set_next_token(token)
                    .send()
            },
            DescribeRepositoriesOutput::next_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.repositories().iter().cloned())
        .collect();
        let owned = owned_listing(
            scope,
            selector,
            repositories,
            Repository::repository_name,
            Repository::repository_arn,
            |arns| read_tags(scope, arns),
        )
        .await?;
        Ok(owned
            .into_iter()
            .map(|(r, o)| observed(scope, &r, o))
            .collect())
    }
}

pub struct RepositoryHandler;

impl RepositoryHandler {
    /// Writes (or removes) the lifecycle policy and records its digest.
    async fn lifecycle(&self, scope: &Scope, node: &Resolved, arn: &str) -> Result<(), AwsError> {
        let policy = node.props.get("lifecycle").cloned().unwrap_or(Value::Null);
        let name = node.req("name");
        if policy.is_null() {
            scope
                .api
                .call(SERVICE, "DeleteLifecyclePolicy", Effect::Idempotent, || {
                    scope
                        .ecr
                        .delete_lifecycle_policy()
                        .repository_name(name)
                        .send()
                })
                .await
                .or_absent()?;
        } else {
            let text = policy.to_string();
            scope
                .api
                .call(SERVICE, "PutLifecyclePolicy", Effect::Idempotent, || {
                    scope
                        .ecr
                        .put_lifecycle_policy()
                        .repository_name(name)
                        .lifecycle_policy_text(&text)
                        .send()
                })
                .await?;
        }
        let recorded = digest(&policy);
        let tag = Tag::builder()
            .key(DIGEST_TAG)
            .value(&recorded)
            .build()
            .expect("key and value set");
        scope
            .api
            .call(SERVICE, "TagResource", Effect::Idempotent, || {
                scope
                    .ecr
                    .tag_resource()
                    .resource_arn(arn)
                    .tags(tag.clone())
                    .send()
            })
            .await?;
        let mut tags = scope.api.tags.get(arn).unwrap_or_default();
        tags.retain(|(k, _)| k != DIGEST_TAG);
        tags.push((DIGEST_TAG.to_owned(), recorded));
        scope.api.tags.put(arn, tags);
        Ok(())
    }
}

fn mutability(node: &Resolved) -> ImageTagMutability {
    if node.bool("immutableTags") {
        ImageTagMutability::Immutable
    } else {
        ImageTagMutability::Mutable
    }
}

#[async_trait]
impl Handler<Scope> for RepositoryHandler {
    fn kind(&self) -> Kind {
        REPOSITORY
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["scanOnPush", "immutableTags", "lifecycle"]
    }

    fn digested(&self) -> &'static [&'static str] {
        &["lifecycle"]
    }

    fn holds_data(&self) -> bool {
        true
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let name = node.req("name");
        let made = scope
            .api
            .call(SERVICE, "CreateRepository", Effect::Create, || {
                scope
                    .ecr
                    .create_repository()
                    .repository_name(name)
                    .image_scanning_configuration(
                        ImageScanningConfiguration::builder()
                            .scan_on_push(node.bool("scanOnPush"))
                            .build(),
                    )
                    .image_tag_mutability(mutability(node))
                    .encryption_configuration(
                        EncryptionConfiguration::builder()
                            .encryption_type(EncryptionType::Aes256)
                            .build()
                            .expect("type set"),
                    )
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        let repository = match made {
            Ok(out) => out.repository().cloned(),
            // The name carries the owner's hash: a create whose answer was lost, unless the
            // tags say otherwise.
            Err(e) if e.code == "RepositoryAlreadyExistsException" => {
                let found = scope
                    .api
                    .call(SERVICE, "DescribeRepositories", Effect::Read, || {
                        scope
                            .ecr
                            .describe_repositories()
                            .repository_names(name)
                            .send()
                    })
                    .await?;
                let r = found.repositories().first().cloned();
                let arn = r
                    .as_ref()
                    .and_then(|r| r.repository_arn())
                    .unwrap_or_default()
                    .to_owned();
                let tags = read_tags(scope, vec![arn.clone()]).await?;
                claim_taken(scope, tags.get(&arn), &e, &format!("the repository {name}"))?;
                r
            }
            Err(e) => return Err(e),
        };
        let arn = repository
            .as_ref()
            .and_then(|r| r.repository_arn())
            .unwrap_or_default()
            .to_owned();
        let uri = repository
            .as_ref()
            .and_then(|r| r.repository_uri())
            .unwrap_or_default()
            .to_owned();
        scope.api.tags.put(&arn, scope.tags(node));
        self.lifecycle(scope, node, &arn).await?;
        let mut o = created(scope, node, name).prop("arn", arn).prop("uri", uri);
        o.props.insert(
            "lifecycle".into(),
            json!(digest(node.props.get("lifecycle").unwrap_or(&Value::Null))),
        );
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
        for c in changes {
            match c.field.as_str() {
                "scanOnPush" => {
                    scope
                        .api
                        .call(
                            SERVICE,
                            "PutImageScanningConfiguration",
                            Effect::Idempotent,
                            || {
                                scope
                                    .ecr
                                    .put_image_scanning_configuration()
                                    .repository_name(name)
                                    .image_scanning_configuration(
                                        ImageScanningConfiguration::builder()
                                            .scan_on_push(node.bool("scanOnPush"))
                                            .build(),
                                    )
                                    .send()
                            },
                        )
                        .await?;
                }
                "immutableTags" => {
                    scope
                        .api
                        .call(SERVICE, "PutImageTagMutability", Effect::Idempotent, || {
                            scope
                                .ecr
                                .put_image_tag_mutability()
                                .repository_name(name)
                                .image_tag_mutability(mutability(node))
                                .send()
                        })
                        .await?;
                }
                "lifecycle" => {
                    self.lifecycle(scope, node, current.str("arn").unwrap_or_default())
                        .await?;
                }
                _ => {}
            }
        }
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        // Only with the stack (the images go with it).
        scope
            .api
            .call(SERVICE, "DeleteRepository", Effect::Idempotent, || {
                scope
                    .ecr
                    .delete_repository()
                    .repository_name(&current.id)
                    .force(true)
                    .send()
            })
            .await
            .or_absent()?;
        scope
            .api
            .tags
            .forget(current.str("arn").unwrap_or_default());
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_each(scope, resources, arn_of, |o, keys| async move {
            scope
                .api
                .call(SERVICE, "UntagResource", Effect::Idempotent, || {
                    scope
                        .ecr
                        .untag_resource()
                        .resource_arn(arn_of(&o))
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                })
                .await
                .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validate::parse_manifest;

    #[test]
    fn starttech_keeps_the_last_ten_images_of_an_immutable_scanned_repository() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/starttech.yaml"),
        )
        .unwrap();
        let ws = parse_manifest(&text).unwrap();
        let stack = StackRef::new("default", "starttech", Some("uid-1"));
        let nodes = desired(&stack, &ws.spec);
        assert_eq!(nodes.len(), 1);
        let r = &nodes[0];
        assert_eq!(r.id, id("backend"));
        let get = |k: &str| match &r.props[k] {
            crate::engine::Prop::Value(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(get("scanOnPush"), json!(true));
        assert_eq!(get("immutableTags"), json!(true));
        assert_eq!(
            get("lifecycle")["rules"][0]["selection"]["countNumber"],
            json!(10)
        );
        let name = get("name");
        assert!(name
            .as_str()
            .unwrap()
            .starts_with("default-starttech-backend-"));
    }
}
