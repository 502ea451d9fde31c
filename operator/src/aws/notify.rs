//! The stack's alarm topic (SNS): the people `monitoring.notify` names are subscribed to it by
//! e-mail, and every alarm tells it when it fires and when it clears. The topic's name is
//! derived from the stack and its owner (`CreateTopic` answers with the existing topic for a
//! name it knows), so a create after a crash finds it. An address AWS still waits to have
//! confirmed cannot be unsubscribed: it lapses by itself after three days.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput;
use aws_sdk_sns::operation::list_topics::ListTopicsOutput;
use aws_sdk_sns::types::{Tag, Topic};
use serde_json::json;

use super::client::Effect;
use super::error::{AwsError, ErrorClass, OrAbsent};
use super::global::Global;
use super::naming::physical_name;
use super::tags::{id_of, owned_listing, read_each, release_each, Tags};
use super::{created, pages, Scope, StackRef};
use crate::api::WebStackSpec;
use crate::engine::{
    Engine, FieldChange, Handler, Kind, Node, NodeId, Observed, Observer, Resolved, Selector,
};

pub const ALARM_TOPIC: Kind = Kind("AlarmTopic");
/// The topic of the CDN's alarms for a stack outside [`super::GLOBAL_REGION`], where those
/// alarms live: an alarm tells topics of its own region only.
pub const CDN_ALARM_TOPIC: Kind = Kind("CdnAlarmTopic");

/// Every kind of this area, for the `MonitoringReady` condition.
pub const KINDS: &[Kind] = &[ALARM_TOPIC, CDN_ALARM_TOPIC];

const TIER: &str = "monitoring";
const SERVICE: &str = "sns";
const ROLE: &str = "alarms";
/// SNS's limit on a topic name.
const SNS_MAX: usize = 256;
/// How SNS names a subscription that waits for its confirmation.
const PENDING: &str = "PendingConfirmation";

/// Adds the topic kind to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(TopicObserver)
        .handler(TopicHandler)
        .observer(Global::new(&[CDN_ALARM_TOPIC], TopicObserver))
        .handler(Global::new(&[CDN_ALARM_TOPIC], TopicHandler))
}

/// The topic's node id.
pub fn topic_id() -> NodeId {
    NodeId::new(ALARM_TOPIC, ROLE)
}

/// The topic, when `monitoring.notify` names anybody.
pub fn desired(stack: &StackRef, spec: &WebStackSpec) -> Vec<Node> {
    topics(stack, spec, ALARM_TOPIC)
}

/// The topic of the CDN's alarms in the global region, when it is not the stack's and
/// `monitoring.notify` names anybody.
pub fn desired_global(stack: &StackRef, spec: &WebStackSpec) -> Vec<Node> {
    topics(stack, spec, CDN_ALARM_TOPIC)
}

fn topics(stack: &StackRef, spec: &WebStackSpec, kind: Kind) -> Vec<Node> {
    let emails: BTreeSet<String> = spec
        .monitoring
        .iter()
        .flat_map(|m| m.notify.iter())
        .map(|e| e.to_ascii_lowercase())
        .collect();
    if emails.is_empty() {
        return Vec::new();
    }
    let name = physical_name(stack, ROLE, SNS_MAX);
    vec![Node::new(kind, TIER, ROLE, name.clone())
        .prop("name", name.as_str())
        .prop("emails", json!(emails))]
}

fn topic_name(t: &Topic) -> Option<&str> {
    t.topic_arn().and_then(|a| a.rsplit(':').next())
}

/// SNS's tag reader: one `ListTagsForResource` per topic never seen before.
async fn read_tags(scope: &Scope, arns: Vec<String>) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call(SERVICE, "ListTagsForResource", Effect::Read, || {
                scope.sns.list_tags_for_resource().resource_arn(&arn).send()
            })
            .await?;
        Ok(r.tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    })
    .await
}

/// The e-mail subscriptions of a topic: address and subscription ARN.
async fn subscriptions(scope: &Scope, arn: &str) -> Result<Vec<(String, String)>, AwsError> {
    let pages = pages(
        scope,
        SERVICE,
        "ListSubscriptionsByTopic",
        |token| {
            scope
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(arn)
                .set_next_token(token)
                .send()
        },
        ListSubscriptionsByTopicOutput::next_token,
    )
    .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.subscriptions())
        .filter(|s| s.protocol() == Some("email"))
        .filter_map(|s| {
            Some((
                s.endpoint()?.to_ascii_lowercase(),
                s.subscription_arn().unwrap_or(PENDING).to_owned(),
            ))
        })
        .collect())
}

pub struct TopicObserver;

#[async_trait]
impl Observer<Scope> for TopicObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[ALARM_TOPIC]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let topics: Vec<Topic> = pages(
            scope,
            SERVICE,
            "ListTopics",
            |token| scope.sns.list_topics().set_next_token(token).send(),
            ListTopicsOutput::next_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.topics().iter().cloned())
        .collect();
        let owned = owned_listing(
            scope,
            selector,
            topics,
            topic_name,
            Topic::topic_arn,
            |arns| read_tags(scope, arns),
        )
        .await?;
        let mut out = Vec::new();
        for (t, o) in owned {
            let arn = t.topic_arn().unwrap_or_default();
            let emails: BTreeSet<String> = match subscriptions(scope, arn).await {
                Ok(s) => s.into_iter().map(|(e, _)| e).collect(),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            out.push(
                Observed::new(ALARM_TOPIC, o.stack, o.role, arn)
                    .owner(o.owner)
                    .prop("name", topic_name(&t).unwrap_or_default())
                    .prop("emails", json!(emails))
                    .prop("arn", arn),
            );
        }
        Ok(out)
    }
}

pub struct TopicHandler;

impl TopicHandler {
    /// Subscribes every address of the node the topic does not have yet (SNS answers a
    /// repeated subscription with the existing one) and unsubscribes the confirmed ones it
    /// no longer names.
    async fn subscribe(&self, scope: &Scope, node: &Resolved, arn: &str) -> Result<(), AwsError> {
        let wanted: BTreeSet<String> = node.strs("emails").into_iter().collect();
        let have = subscriptions(scope, arn).await?;
        for email in &wanted {
            if have.iter().any(|(e, _)| e == email) {
                continue;
            }
            scope
                .api
                .call(SERVICE, "Subscribe", Effect::Idempotent, || {
                    scope
                        .sns
                        .subscribe()
                        .topic_arn(arn)
                        .protocol("email")
                        .endpoint(email)
                        .send()
                })
                .await?;
        }
        for (email, subscription) in &have {
            if wanted.contains(email) || !subscription.starts_with("arn:") {
                continue;
            }
            scope
                .api
                .call(SERVICE, "Unsubscribe", Effect::Idempotent, || {
                    scope
                        .sns
                        .unsubscribe()
                        .subscription_arn(subscription)
                        .send()
                })
                .await
                .or_absent()?;
        }
        Ok(())
    }
}

#[async_trait]
impl Handler<Scope> for TopicHandler {
    fn kind(&self) -> Kind {
        ALARM_TOPIC
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["emails"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let create = |tags: Option<Vec<Tag>>| {
            scope
                .api
                .call(SERVICE, "CreateTopic", Effect::Idempotent, move || {
                    scope
                        .sns
                        .create_topic()
                        .name(node.req("name"))
                        .set_tags(tags.clone())
                        .send()
                })
        };
        let arn = match create(Some(tags.clone())).await {
            Ok(made) => made.topic_arn().unwrap_or_default().to_owned(),
            // A topic of this name (the owner's hash is in it) with other tags: one this stack
            // released earlier. SNS answers with it when no tags are asked for; it is claimed
            // again by tagging it.
            Err(e) if e.code == "InvalidParameter" && e.message.to_lowercase().contains("tags") => {
                let made = create(None).await?;
                let arn = made.topic_arn().unwrap_or_default().to_owned();
                scope
                    .api
                    .call(SERVICE, "TagResource", Effect::Idempotent, || {
                        scope
                            .sns
                            .tag_resource()
                            .resource_arn(&arn)
                            .set_tags(Some(tags.clone()))
                            .send()
                    })
                    .await?;
                arn
            }
            Err(e) => return Err(e),
        };
        if arn.is_empty() {
            return Err(AwsError::new(
                SERVICE,
                "CreateTopic",
                "NoTopicArn",
                "CreateTopic answered without the topic's ARN",
                ErrorClass::Ambiguous,
            ));
        }
        scope.api.tags.put(&arn, scope.tags(node));
        self.subscribe(scope, node, &arn).await?;
        Ok(created(scope, node, &arn).prop("arn", arn.as_str()))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.subscribe(scope, node, &current.id).await.map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        // Deleting a topic ends its subscriptions.
        scope
            .api
            .call(SERVICE, "DeleteTopic", Effect::Idempotent, || {
                scope.sns.delete_topic().topic_arn(&current.id).send()
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
                        .sns
                        .untag_resource()
                        .resource_arn(&o.id)
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
    use crate::api::WebStack;

    #[test]
    fn a_topic_only_when_somebody_is_told_with_each_address_once() {
        let mut stack: WebStack =
            serde_yaml::from_str(include_str!("../../../examples/stockholm-two-tier.yaml"))
                .unwrap();
        let me = StackRef::new("shop", "web", Some("uid-1"));
        assert!(desired(&me, &stack.spec).is_empty());
        stack.spec.monitoring.as_mut().unwrap().notify = vec![
            "Ops@example.com".into(),
            "ops@example.com".into(),
            "dev@example.com".into(),
        ];
        let nodes = desired(&me, &stack.spec);
        assert_eq!(nodes.len(), 1);
        assert_eq!(
            nodes[0].props["emails"],
            crate::engine::Prop::Value(json!(["dev@example.com", "ops@example.com"]))
        );
        assert!(crate::aws::tags::derived_name(&nodes[0].name));
    }
}
