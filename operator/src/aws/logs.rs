//! CloudWatch log groups: one per EC2 tier, where its instances send the container's output,
//! kept for `monitoring.logRetentionDays`. Names live under the stack's own prefix
//! (`/webstack/<namespace>/<name>/`), so one listing finds exactly the stack's groups, and end
//! in a hash of the owner, so that two owners never share one. Logs are data: a group goes
//! only with the stack.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;
use aws_sdk_cloudwatchlogs::types::LogGroup;

use super::client::Effect;
use super::error::{AwsError, OrAbsent};
use super::naming::{prefixed_name, stack_prefix};
use super::tags::{self, id_of, owned_items, read_each, release_each, Tags};
use super::{created, pages, Scope, StackRef};
use crate::api::WebStackSpec;
use crate::engine::{
    Engine, FieldChange, Handler, Kind, Node, NodeId, Observed, Observer, Resolved, Selector,
};

pub const LOG_GROUP: Kind = Kind("LogGroup");

/// Every kind of this area, for the `MonitoringReady` condition.
pub const KINDS: &[Kind] = &[LOG_GROUP];

const TIER: &str = "monitoring";
const SERVICE: &str = "logs";

/// Adds the log group kind to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine.observer(LogGroupObserver).handler(LogGroupHandler)
}

/// Where every log group of the operator lives.
const ROOT: &str = "/webstack/";

/// The log group of a tier.
pub fn name(stack: &StackRef, tier: &str) -> String {
    prefixed_name(ROOT, stack, tier, &format!("logs-{tier}"))
}

/// The node of a tier's log group.
pub fn id(tier: &str) -> NodeId {
    NodeId::new(LOG_GROUP, tier)
}

/// A log group for each of `tiers`, with the spec's retention (30 days by default).
pub fn desired(stack: &StackRef, spec: &WebStackSpec, tiers: &[String]) -> Vec<Node> {
    let retention = spec
        .monitoring
        .as_ref()
        .map(|m| m.log_retention_days)
        .unwrap_or(30);
    tiers
        .iter()
        .map(|t| {
            let name = name(stack, t);
            Node::new(LOG_GROUP, TIER, t.as_str(), "")
                .prop("name", name.as_str())
                .prop("retentionDays", i64::from(retention))
        })
        .collect()
}

/// The ARN tags are read by: the group's, without the `:*` of its streams.
fn arn_of(g: &LogGroup) -> Option<&str> {
    g.log_group_arn()
        .or_else(|| g.arn().map(|a| a.trim_end_matches(":*")))
}

/// CloudWatch Logs' tag reader: one `ListTagsForResource` per group never seen before, by
/// name (`arns` maps names to ARNs).
async fn read_tags(
    scope: &Scope,
    names: Vec<String>,
    arns: &HashMap<String, String>,
) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(names, |name| async move {
        let arn = arns.get(&name).cloned().unwrap_or_default();
        let r = scope
            .api
            .call(SERVICE, "ListTagsForResource", Effect::Read, || {
                scope
                    .logs
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
            })
            .await?;
        let tags = r
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(tags)
    })
    .await
}

pub struct LogGroupObserver;

#[async_trait]
impl Observer<Scope> for LogGroupObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[LOG_GROUP]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let prefix = match selector {
            Selector::Stack(stack) => stack_prefix(ROOT, stack),
            Selector::AllStacks => ROOT.to_owned(),
        };
        let groups: Vec<LogGroup> = pages(
            scope,
            SERVICE,
            "DescribeLogGroups",
            |token| {
                scope
                    .logs
                    .describe_log_groups()
                    .log_group_name_prefix(&prefix)
                    .set_next_token(token)
                    .send()
            },
            DescribeLogGroupsOutput::next_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.log_groups().iter().cloned())
        .collect();
        // Tags are cached by the group's name: a create is answered without the ARN.
        let arns: HashMap<String, String> = groups
            .iter()
            .filter_map(|g| Some((g.log_group_name()?.to_owned(), arn_of(g)?.to_owned())))
            .collect();
        let owned = owned_items(scope, selector, groups, LogGroup::log_group_name, |names| {
            read_tags(scope, names, &arns)
        })
        .await?;
        Ok(owned
            .into_iter()
            .map(|(g, o)| {
                let name = g.log_group_name().unwrap_or_default();
                Observed::new(LOG_GROUP, o.stack, o.role, name)
                    .owner(o.owner)
                    .prop("name", name)
                    .prop(
                        "retentionDays",
                        i64::from(g.retention_in_days().unwrap_or(0)),
                    )
                    .prop("arn", arn_of(&g).unwrap_or_default())
                    .prop("kmsKey", g.kms_key_id().unwrap_or_default())
            })
            .collect())
    }
}

pub struct LogGroupHandler;

impl LogGroupHandler {
    async fn retention(&self, scope: &Scope, node: &Resolved) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "PutRetentionPolicy", Effect::Idempotent, || {
                scope
                    .logs
                    .put_retention_policy()
                    .log_group_name(node.req("name"))
                    .retention_in_days(node.i64("retentionDays").unwrap_or(30) as i32)
                    .send()
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Handler<Scope> for LogGroupHandler {
    fn kind(&self) -> Kind {
        LOG_GROUP
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["retentionDays", "kmsKey"]
    }

    fn holds_data(&self) -> bool {
        true
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let name = node.req("name");
        let tags: HashMap<String, String> = scope.tags(node).into_iter().collect();
        let made = scope
            .api
            .call(SERVICE, "CreateLogGroup", Effect::Create, || {
                scope
                    .logs
                    .create_log_group()
                    .log_group_name(name)
                    .set_kms_key_id(node.str("kmsKey").map(str::to_owned))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        match made {
            // The name carries the owner's hash: a create whose answer was lost, or a group
            // this stack released earlier, claimed again by tagging it (a create's tags do not
            // reach a group that exists).
            Err(e) if e.code == "ResourceAlreadyExistsException" => {
                let found = scope
                    .api
                    .call(SERVICE, "DescribeLogGroups", Effect::Read, || {
                        scope
                            .logs
                            .describe_log_groups()
                            .log_group_name_prefix(name)
                            .send()
                    })
                    .await?;
                let arn = found
                    .log_groups()
                    .iter()
                    .find(|g| g.log_group_name() == Some(name))
                    .and_then(arn_of)
                    .unwrap_or_default()
                    .to_owned();
                scope
                    .api
                    .call(SERVICE, "TagResource", Effect::Idempotent, || {
                        scope
                            .logs
                            .tag_resource()
                            .resource_arn(&arn)
                            .set_tags(Some(tags.clone()))
                            .send()
                    })
                    .await?;
            }
            other => {
                other?;
            }
        }
        self.retention(scope, node).await?;
        scope.api.tags.put(name, scope.tags(node));
        Ok(created(scope, node, name))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.retention(scope, node).await?;
        if let Some(key) = node.str("kmsKey") {
            // New events are encrypted with the stack's key from now on.
            scope
                .api
                .call(SERVICE, "AssociateKmsKey", Effect::Idempotent, || {
                    scope
                        .logs
                        .associate_kms_key()
                        .log_group_name(node.req("name"))
                        .kms_key_id(key)
                        .send()
                })
                .await?;
        }
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "DeleteLogGroup", Effect::Idempotent, || {
                scope
                    .logs
                    .delete_log_group()
                    .log_group_name(&current.id)
                    .send()
            })
            .await
            .or_absent()?;
        scope.api.tags.forget(&current.id);
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_each(scope, resources, id_of, |o, keys| async move {
            scope
                .api
                .call(SERVICE, "UntagResource", Effect::Idempotent, || {
                    scope
                        .logs
                        .untag_resource()
                        .resource_arn(tags::arn_of(&o))
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

    #[test]
    fn names_sit_under_the_stack_prefix_and_differ_per_owner() {
        let a = StackRef::new("shop", "web", Some("uid-1"));
        let b = StackRef::new("shop", "web", Some("uid-2"));
        let name_a = name(&a, "api");
        assert!(name_a.starts_with("/webstack/shop/web/api-"), "{name_a}");
        assert_ne!(name_a, name(&b, "api"));
        assert_eq!(name_a, name(&a, "api"));
    }
}
