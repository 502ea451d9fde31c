//! The stack's customer-managed KMS key (`encryption.customerManagedKey`): symmetric, rotated
//! yearly, named by an alias under the stack's prefix (`alias/webstack/<namespace>/<name>/`),
//! and used for the stack's data at rest (the database, the cache, secrets, log groups and the
//! instances' volumes). The key is tagged at creation, so a crash before its alias exists
//! finds it again by its tags. Deleting the key makes what it encrypted unreadable: it goes
//! only with the stack, scheduled for deletion after AWS's longest window (30 days), during
//! which `CancelKeyDeletion` brings it back (with the database's final snapshot).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::operation::list_aliases::ListAliasesOutput;
use aws_sdk_kms::operation::list_keys::ListKeysOutput;
use aws_sdk_kms::types::{AliasListEntry, KeyListEntry, KeyState, Tag};
use serde_json::{json, Value};

use super::client::Effect;
use super::error::{AwsError, OrAbsent};
use super::naming::{prefixed_name, stack_prefix};
use super::tags::{owned_items, read_each, release_each, Tags};
use super::{created, pages, Scope, StackRef};
use crate::api::WebStackSpec;
use crate::engine::{
    Engine, FieldChange, Handler, Kind, Node, NodeId, Observed, Observer, Resolved, Selector,
};

pub const KMS_KEY: Kind = Kind("KmsKey");

/// Every kind of this area, for the `EncryptionReady` condition.
pub const KINDS: &[Kind] = &[KMS_KEY];

const TIER: &str = "encryption";
const SERVICE: &str = "kms";
const ROLE: &str = "stack";
/// Where every alias of the operator lives.
const ROOT: &str = "alias/webstack/";
/// AWS's longest wait before a scheduled key is deleted.
const DELETION_WINDOW_DAYS: i32 = 30;

/// Adds the key kind to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine.observer(KeyObserver).handler(KeyHandler)
}

/// The key's node id.
pub fn key_id() -> NodeId {
    NodeId::new(KMS_KEY, ROLE)
}

/// The key, when the spec asks for one.
pub fn desired(stack: &StackRef, spec: &WebStackSpec) -> Vec<Node> {
    if !spec.encryption.customer_managed_key {
        return Vec::new();
    }
    let alias = prefixed_name(ROOT, stack, "key", "kms-key");
    vec![Node::new(KMS_KEY, TIER, ROLE, alias.clone())
        .prop("alias", alias.as_str())
        .prop("rotation", true)
        .prop(
            "description",
            format!("Data at rest of the WebStack {}", stack.id()),
        )]
}

/// The key policy: the account administers the key through IAM, as AWS's default policy
/// does; CloudWatch Logs may use it for the stack's log groups, and the account's principals
/// through Secrets Manager for the stack's secrets (an instance reads its secret with its own
/// role) and through EC2 for the instances' volumes (Auto Scaling launches them with its
/// service-linked role, which need not exist yet when the key is made).
pub fn policy(account: &str, region: &str, stack: &str) -> Value {
    let services = [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
    ];
    // AWS's own policy for the keys it manages for a service: anybody of the account, through
    // that service only.
    let through = |sid: &str, service: &str| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": services.iter().copied().chain(["kms:CreateGrant"]).collect::<Vec<_>>(),
            "Resource": "*",
            "Condition": {"StringEquals": {
                "kms:CallerAccount": account,
                "kms:ViaService": format!("{service}.{region}.amazonaws.com")
            }}
        })
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "StackLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": format!("logs.{region}.amazonaws.com")},
                "Action": services,
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                    format!("arn:aws:logs:{region}:{account}:log-group:/webstack/{stack}/*")}}
            },
            through("SecretsThroughSecretsManager", "secretsmanager"),
            through("InstanceVolumesThroughEc2", "ec2")
        ]
    })
}

/// KMS's tag reader: one `ListResourceTags` per key never seen before.
async fn read_tags(scope: &Scope, arns: Vec<String>) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let read = scope
            .api
            .call(SERVICE, "ListResourceTags", Effect::Read, || {
                scope.kms.list_resource_tags().key_id(&arn).send()
            })
            .await;
        match read {
            Ok(r) => Ok(r
                .tags()
                .iter()
                .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
                .collect()),
            // A key whose policy keeps this account out is somebody else's: never the
            // stack's (the stack's own keys leave the account in charge).
            Err(e) if e.code == "AccessDeniedException" => Ok(Tags::new()),
            Err(e) => Err(e),
        }
    })
    .await
}

pub struct KeyObserver;

#[async_trait]
impl Observer<Scope> for KeyObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[KMS_KEY]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let aliases: Vec<AliasListEntry> = pages(
            scope,
            SERVICE,
            "ListAliases",
            |marker| scope.kms.list_aliases().set_marker(marker).send(),
            ListAliasesOutput::next_marker,
        )
        .await?
        .iter()
        .flat_map(|p| p.aliases().iter().cloned())
        .collect();
        // Keys AWS manages for its services are never the stack's: their tags are not read.
        let managed: Vec<&str> = aliases
            .iter()
            .filter(|a| a.alias_name().is_some_and(|n| n.starts_with("alias/aws/")))
            .filter_map(AliasListEntry::target_key_id)
            .collect();
        let prefix = match selector {
            Selector::Stack(stack) => stack_prefix(ROOT, stack),
            Selector::AllStacks => ROOT.to_owned(),
        };
        let keys: Vec<KeyListEntry> = pages(
            scope,
            SERVICE,
            "ListKeys",
            |marker| scope.kms.list_keys().set_marker(marker).send(),
            ListKeysOutput::next_marker,
        )
        .await?
        .iter()
        .flat_map(|p| p.keys().iter().cloned())
        .filter(|k| !managed.contains(&k.key_id().unwrap_or_default()))
        .collect();
        let owned = owned_items(scope, selector, keys, KeyListEntry::key_arn, |arns| {
            read_tags(scope, arns)
        })
        .await?;
        let mut out = Vec::new();
        for (k, o) in owned {
            let id = k.key_id().unwrap_or_default();
            let described = scope
                .api
                .call(SERVICE, "DescribeKey", Effect::Read, || {
                    scope.kms.describe_key().key_id(id).send()
                })
                .await;
            let meta = match described {
                Ok(d) => d.key_metadata().cloned(),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let Some(meta) = meta else { continue };
            // A key scheduled for deletion is on its way out.
            if matches!(
                meta.key_state(),
                Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
            ) {
                continue;
            }
            let rotation = scope
                .api
                .call(SERVICE, "GetKeyRotationStatus", Effect::Read, || {
                    scope.kms.get_key_rotation_status().key_id(id).send()
                })
                .await?
                .key_rotation_enabled();
            let alias = aliases
                .iter()
                .filter(|a| a.target_key_id() == Some(id))
                .filter_map(AliasListEntry::alias_name)
                .find(|n| n.starts_with(&prefix))
                .unwrap_or_default();
            // Known by its ARN: the name its users (the database, the cache) report it by, so
            // that it is deleted after them.
            out.push(
                Observed::new(KMS_KEY, o.stack, o.role, meta.arn().unwrap_or(id))
                    .owner(o.owner)
                    .prop("alias", alias)
                    .prop("rotation", rotation)
                    .prop("description", meta.description().unwrap_or_default())
                    .prop("arn", meta.arn().unwrap_or_default()),
            );
        }
        Ok(out)
    }
}

pub struct KeyHandler;

/// The key id of an observed key (known by its ARN, `...:key/<id>`).
fn key_of(current: &Observed) -> &str {
    current.id.rsplit('/').next().unwrap_or(&current.id)
}

impl KeyHandler {
    /// The account the stack's credentials act in, for the key policy.
    async fn account(&self, scope: &Scope) -> Result<String, AwsError> {
        let me = scope
            .api
            .call("sts", "GetCallerIdentity", Effect::Read, || {
                scope.sts.get_caller_identity().send()
            })
            .await?;
        Ok(me.account().unwrap_or_default().to_owned())
    }

    /// Points the alias at the key: created, or moved from a key the stack had before.
    async fn alias(&self, scope: &Scope, node: &Resolved, key: &str) -> Result<(), AwsError> {
        let alias = node.req("alias");
        let made = scope
            .api
            .call(SERVICE, "CreateAlias", Effect::Idempotent, || {
                scope
                    .kms
                    .create_alias()
                    .alias_name(alias)
                    .target_key_id(key)
                    .send()
            })
            .await;
        match made {
            Err(e) if e.code == "AlreadyExistsException" => scope
                .api
                .call(SERVICE, "UpdateAlias", Effect::Idempotent, || {
                    scope
                        .kms
                        .update_alias()
                        .alias_name(alias)
                        .target_key_id(key)
                        .send()
                })
                .await
                .map(|_| ()),
            other => other.map(|_| ()),
        }
    }

    async fn rotation(&self, scope: &Scope, node: &Resolved, key: &str) -> Result<(), AwsError> {
        if node.bool("rotation") {
            scope
                .api
                .call(SERVICE, "EnableKeyRotation", Effect::Idempotent, || {
                    scope.kms.enable_key_rotation().key_id(key).send()
                })
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Handler<Scope> for KeyHandler {
    fn kind(&self) -> Kind {
        KMS_KEY
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["alias", "rotation", "description"]
    }

    fn holds_data(&self) -> bool {
        true
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let account = self.account(scope).await?;
        let policy = policy(&account, &scope.region, &scope.stack.id()).to_string();
        let tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .filter_map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().ok())
            .collect();
        // KMS has no idempotency token: a create whose answer is lost leaves a tagged key,
        // which the next observation finds and gives its alias.
        let made = scope
            .api
            .call(SERVICE, "CreateKey", Effect::Create, || {
                scope
                    .kms
                    .create_key()
                    .description(node.req("description"))
                    .policy(&policy)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let meta = made.key_metadata();
        let id = meta.map(|m| m.key_id()).unwrap_or_default().to_owned();
        let arn = meta.and_then(|m| m.arn()).unwrap_or_default().to_owned();
        scope.api.tags.put(&arn, scope.tags(node));
        self.rotation(scope, node, &id).await?;
        self.alias(scope, node, &id).await?;
        Ok(created(scope, node, &arn).prop("arn", arn.as_str()))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        for c in changes {
            match c.field.as_str() {
                "alias" => self.alias(scope, node, key_of(current)).await?,
                "rotation" if node.bool("rotation") => {
                    self.rotation(scope, node, key_of(current)).await?
                }
                "rotation" => {
                    scope
                        .api
                        .call(SERVICE, "DisableKeyRotation", Effect::Idempotent, || {
                            scope
                                .kms
                                .disable_key_rotation()
                                .key_id(key_of(current))
                                .send()
                        })
                        .await?;
                }
                "description" => {
                    scope
                        .api
                        .call(SERVICE, "UpdateKeyDescription", Effect::Idempotent, || {
                            scope
                                .kms
                                .update_key_description()
                                .key_id(key_of(current))
                                .description(node.req("description"))
                                .send()
                        })
                        .await?;
                }
                _ => {}
            }
        }
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        // The alias first: a stack made again under the same name takes it for its new key.
        if let Some(alias) = current.str("alias").filter(|a| !a.is_empty()) {
            scope
                .api
                .call(SERVICE, "DeleteAlias", Effect::Idempotent, || {
                    scope.kms.delete_alias().alias_name(alias).send()
                })
                .await
                .or_absent()?;
        }
        scope
            .api
            .call(SERVICE, "ScheduleKeyDeletion", Effect::Idempotent, || {
                scope
                    .kms
                    .schedule_key_deletion()
                    .key_id(key_of(current))
                    .pending_window_in_days(DELETION_WINDOW_DAYS)
                    .send()
            })
            .await
            .or_absent()?;
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_each(
            scope,
            resources,
            super::tags::arn_of,
            |o, keys| async move {
                scope
                    .api
                    .call(SERVICE, "UntagResource", Effect::Idempotent, || {
                        scope
                            .kms
                            .untag_resource()
                            .key_id(key_of(&o))
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                    .await
                    .map(|_| ())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_only_when_asked_for_named_under_the_stack_prefix() {
        let mut stack: crate::api::WebStack =
            serde_yaml::from_str(include_str!("../../../examples/stockholm-two-tier.yaml"))
                .unwrap();
        let me = StackRef::new("shop", "web", Some("uid-1"));
        assert!(desired(&me, &stack.spec).is_empty());
        stack.spec.encryption.customer_managed_key = true;
        let nodes = desired(&me, &stack.spec);
        assert_eq!(nodes.len(), 1);
        let alias = &nodes[0].name;
        assert!(alias.starts_with("alias/webstack/shop/web/key-"), "{alias}");
        assert_ne!(
            alias,
            &desired(&StackRef::new("shop", "web", Some("uid-2")), &stack.spec)[0].name
        );
    }

    #[test]
    fn the_policy_keeps_the_account_in_charge_and_scopes_the_services() {
        let p = policy("123456789012", "eu-north-1", "shop/web");
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(
            statements[0]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:root"
        );
        let logs = &statements[1];
        assert_eq!(
            logs["Principal"]["Service"],
            "logs.eu-north-1.amazonaws.com"
        );
        assert_eq!(
            logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"],
            "arn:aws:logs:eu-north-1:123456789012:log-group:/webstack/shop/web/*"
        );
        assert!(statements
            .iter()
            .all(|s| s["Action"] != "kms:*" || s["Sid"] == "AccountAdministersThroughIam"));
        let ec2 = statements
            .iter()
            .find(|s| s["Sid"] == "InstanceVolumesThroughEc2")
            .unwrap();
        assert_eq!(
            ec2["Condition"]["StringEquals"]["kms:ViaService"],
            "ec2.eu-north-1.amazonaws.com"
        );
        assert_eq!(
            ec2["Condition"]["StringEquals"]["kms:CallerAccount"],
            "123456789012"
        );
    }
}
