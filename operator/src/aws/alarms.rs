//! CloudWatch alarms: the ones `monitoring.alarms` declares, each on its metric with the
//! dimensions of the resource it watches (a tier's load balancer and target group, its Auto
//! Scaling group, the database, the cache's primary node), and told to the stack's topic when
//! `monitoring.notify` names anybody. Names live under the stack's own prefix
//! (`webstack/<namespace>/<name>/`), so one listing finds exactly the stack's alarms, and end
//! in a hash of the owner. `PutMetricAlarm` both creates and updates: every write is
//! idempotent.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag,
};
use serde_json::{json, Value};

use super::backend::{AUTO_SCALING_GROUP, LOAD_BALANCER, TARGET_GROUP};
use super::client::Effect;
use super::error::{AwsError, OrAbsent};
use super::global::Global;
use super::naming::{prefixed_name, stack_prefix};
use super::tags::{arn_of, id_of, owned_items, read_each, release_each, Tags};
use super::{created, pages, Scope, StackRef};
use crate::api::{AlarmMetric, AlarmSpec, Comparison, Runtime, WebStackSpec};
use crate::engine::{
    Engine, FieldChange, Handler, Kind, Node, NodeId, Observed, Observer, Prop, Resolved, Selector,
};

pub const ALARM: Kind = Kind("Alarm");
/// An alarm on CloudFront's metrics, which exist in [`super::GLOBAL_REGION`] only: for a stack
/// elsewhere, the alarm lives there.
pub const CDN_ALARM: Kind = Kind("CdnAlarm");

/// Every kind of this area, for the `MonitoringReady` condition.
pub const KINDS: &[Kind] = &[ALARM, CDN_ALARM];

const TIER: &str = "monitoring";
const SERVICE: &str = "cloudwatch";
/// Where every alarm of the operator lives.
const ROOT: &str = "webstack/";

/// Adds the alarm kind to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(AlarmObserver)
        .handler(AlarmHandler)
        .observer(Global::new(&[CDN_ALARM], AlarmObserver))
        .handler(Global::new(&[CDN_ALARM], AlarmHandler))
}

/// The alarm's name in CloudWatch.
pub fn name(stack: &StackRef, alarm: &str) -> String {
    prefixed_name(ROOT, stack, alarm, &format!("alarm-{alarm}"))
}

/// What the alarms of a stack watch, as nodes of its graph.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    /// The database instance.
    pub database: Option<NodeId>,
    /// The cache's replication group.
    pub cache: Option<NodeId>,
    /// The topic alarms are told to.
    pub topic: Option<NodeId>,
    /// The distribution.
    pub cdn: Option<NodeId>,
    /// Where the CDN's alarms live and whom they tell: `None` in the stack's own region (the
    /// global one), else the topic in the global region (if any is needed).
    pub cdn_elsewhere: Option<Option<NodeId>>,
}

/// A metric as CloudWatch names it, how it is aggregated, and its dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricOf {
    pub namespace: &'static str,
    pub metric: &'static str,
    pub statistic: &'static str,
    pub dimensions: BTreeMap<String, Prop>,
}

/// The metric an alarm watches, or `None` when what it watches is not built by this tier
/// (a function, the CDN, a tier that does not run on EC2): see [`unsupported`].
pub fn metric_of(spec: &WebStackSpec, alarm: &AlarmSpec, watched: &Watched) -> Option<MetricOf> {
    let attr = |id: NodeId, a: &str| Prop::Attr(id, a.to_owned());
    let tier = || {
        let t = alarm.target.as_deref()?;
        spec.backend
            .iter()
            .flat_map(|b| b.tiers.iter())
            .find(|x| x.name == t && x.runtime == Runtime::Ec2)
            .map(|x| x.name.clone())
    };
    let balancer = |t: &str| attr(NodeId::new(LOAD_BALANCER, t), "arnSuffix");
    let group = |t: &str| attr(NodeId::new(AUTO_SCALING_GROUP, t), "name");
    let dims = |entries: Vec<(&str, Prop)>| -> BTreeMap<String, Prop> {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    };
    let of = |namespace, metric, statistic, dimensions| MetricOf {
        namespace,
        metric,
        statistic,
        dimensions,
    };
    Some(match alarm.metric {
        AlarmMetric::LoadBalancer5xx => {
            let t = tier()?;
            of(
                "AWS/ApplicationELB",
                "HTTPCode_ELB_5XX_Count",
                "Sum",
                dims(vec![("LoadBalancer", balancer(&t))]),
            )
        }
        AlarmMetric::RequestCount => {
            let t = tier()?;
            of(
                "AWS/ApplicationELB",
                "RequestCount",
                "Sum",
                dims(vec![("LoadBalancer", balancer(&t))]),
            )
        }
        AlarmMetric::ResponseTime => {
            // The tier's own targets: the target group within its load balancer.
            let t = tier()?;
            of(
                "AWS/ApplicationELB",
                "TargetResponseTime",
                "Average",
                dims(vec![
                    ("LoadBalancer", balancer(&t)),
                    (
                        "TargetGroup",
                        attr(NodeId::new(TARGET_GROUP, t.as_str()), "arnSuffix"),
                    ),
                ]),
            )
        }
        AlarmMetric::Cpu => {
            let t = tier()?;
            of(
                "AWS/EC2",
                "CPUUtilization",
                "Average",
                dims(vec![("AutoScalingGroupName", group(&t))]),
            )
        }
        AlarmMetric::Memory => {
            // Published by the CloudWatch agent the tier's instances then run.
            let t = tier()?;
            of(
                "CWAgent",
                "mem_used_percent",
                "Average",
                dims(vec![("AutoScalingGroupName", group(&t))]),
            )
        }
        AlarmMetric::DatabaseCpu => of(
            "AWS/RDS",
            "CPUUtilization",
            "Average",
            dims(vec![(
                "DBInstanceIdentifier",
                attr(watched.database.clone()?, "identifier"),
            )]),
        ),
        AlarmMetric::DatabaseFreeStorage => of(
            "AWS/RDS",
            "FreeStorageSpace",
            "Minimum",
            dims(vec![(
                "DBInstanceIdentifier",
                attr(watched.database.clone()?, "identifier"),
            )]),
        ),
        AlarmMetric::CacheCpu => of(
            "AWS/ElastiCache",
            "CPUUtilization",
            "Average",
            dims(vec![(
                "CacheClusterId",
                attr(watched.cache.clone()?, "primaryCluster"),
            )]),
        ),
        AlarmMetric::Cdn5xxRate => of(
            "AWS/CloudFront",
            "5xxErrorRate",
            "Average",
            dims(vec![
                ("DistributionId", Prop::Ref(watched.cdn.clone()?)),
                ("Region", Prop::from("Global")),
            ]),
        ),
        AlarmMetric::FunctionErrors => return None,
    })
}

/// The tiers whose memory an alarm watches: their instances publish it.
pub fn memory_watched(spec: &WebStackSpec) -> Vec<String> {
    spec.monitoring
        .iter()
        .flat_map(|m| m.alarms.iter())
        .filter(|a| a.metric == AlarmMetric::Memory)
        .filter_map(|a| a.target.clone())
        .collect()
}

/// The alarms this area cannot build yet, with the tier that will (`Functions`, `Cdn`,
/// `Backend` for a tier that does not run on EC2) and the field.
pub fn unsupported(spec: &WebStackSpec) -> Vec<(&'static str, String)> {
    let watched = Watched {
        database: Some(NodeId::new(Kind("_"), "_")),
        cache: Some(NodeId::new(Kind("_"), "_")),
        cdn: Some(NodeId::new(Kind("_"), "_")),
        ..Default::default()
    };
    spec.monitoring
        .iter()
        .flat_map(|m| m.alarms.iter().enumerate())
        .filter(|(_, a)| metric_of(spec, a, &watched).is_none())
        .map(|(i, a)| {
            let tier = match a.metric {
                AlarmMetric::FunctionErrors => "Functions",
                AlarmMetric::Cdn5xxRate => "Cdn",
                _ => "Backend",
            };
            (tier, format!("spec.monitoring.alarms[{i}]"))
        })
        .collect()
}

/// The spec's alarms, each on its metric and dimensions.
pub fn desired(stack: &StackRef, spec: &WebStackSpec, watched: &Watched) -> Vec<Node> {
    let Some(m) = &spec.monitoring else {
        return Vec::new();
    };
    m.alarms
        .iter()
        .filter_map(|a| {
            let metric = metric_of(spec, a, watched)?;
            let name = name(stack, &a.name);
            let (comparison, missing) = match a.comparison {
                // No data means nothing happened: a count never breaches upwards then, and a
                // floor on requests does.
                Comparison::GreaterThan => ("GreaterThanThreshold", "notBreaching"),
                Comparison::LessThan => ("LessThanThreshold", "breaching"),
            };
            let (kind, topic) = match (&watched.cdn_elsewhere, a.metric) {
                (Some(topic), AlarmMetric::Cdn5xxRate) => (CDN_ALARM, topic.clone()),
                _ => (ALARM, watched.topic.clone()),
            };
            let topic = topic
                .map(|t| Prop::Attr(t, "arn".into()))
                .unwrap_or_else(|| Prop::from(""));
            Some(
                Node::new(kind, TIER, a.name.as_str(), name.clone())
                    .prop("name", name.as_str())
                    .prop("namespace", metric.namespace)
                    .prop("metric", metric.metric)
                    .prop("statistic", metric.statistic)
                    .prop("dimensions", Prop::Map(metric.dimensions))
                    .prop("comparison", comparison)
                    .prop("threshold", Value::from(a.threshold))
                    .prop("period", i64::from(a.period_seconds))
                    .prop("evaluationPeriods", i64::from(a.evaluation_periods))
                    .prop("missingData", missing)
                    .prop("topic", topic)
                    .prop("description", format!("{} of {}", a.name, stack.id())),
            )
        })
        .collect()
}

/// CloudWatch's tag reader: one `ListTagsForResource` per alarm never seen before, by name
/// (`arns` maps names to ARNs).
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
                    .cloudwatch
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
            })
            .await?;
        Ok(r.tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect())
    })
    .await
}

fn observed(a: &MetricAlarm, o: super::tags::Ownership) -> Observed {
    let name = a.alarm_name().unwrap_or_default();
    let dimensions: serde_json::Map<String, Value> = a
        .dimensions()
        .iter()
        .filter_map(|d| Some((d.name()?.to_owned(), json!(d.value()?))))
        .collect();
    Observed::new(ALARM, o.stack, o.role, name)
        .owner(o.owner)
        .prop("name", name)
        .prop("namespace", a.namespace().unwrap_or_default())
        .prop("metric", a.metric_name().unwrap_or_default())
        .prop(
            "statistic",
            a.statistic().map(|s| s.as_str()).unwrap_or_default(),
        )
        .prop("dimensions", Value::Object(dimensions))
        .prop(
            "comparison",
            a.comparison_operator()
                .map(|c| c.as_str())
                .unwrap_or_default(),
        )
        .prop("threshold", a.threshold().unwrap_or_default())
        .prop("period", i64::from(a.period().unwrap_or(0)))
        .prop(
            "evaluationPeriods",
            i64::from(a.evaluation_periods().unwrap_or(0)),
        )
        .prop("missingData", a.treat_missing_data().unwrap_or("missing"))
        .prop(
            "topic",
            a.alarm_actions().first().map(String::as_str).unwrap_or(""),
        )
        .prop("description", a.alarm_description().unwrap_or_default())
        .prop("arn", a.alarm_arn().unwrap_or_default())
}

pub struct AlarmObserver;

#[async_trait]
impl Observer<Scope> for AlarmObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[ALARM]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let prefix = match selector {
            Selector::Stack(stack) => stack_prefix(ROOT, stack),
            Selector::AllStacks => ROOT.to_owned(),
        };
        let alarms: Vec<MetricAlarm> = pages(
            scope,
            SERVICE,
            "DescribeAlarms",
            |token| {
                scope
                    .cloudwatch
                    .describe_alarms()
                    .alarm_name_prefix(&prefix)
                    .alarm_types(AlarmType::MetricAlarm)
                    .set_next_token(token)
                    .send()
            },
            DescribeAlarmsOutput::next_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.metric_alarms().iter().cloned())
        .collect();
        // Tags are cached by the alarm's name: it is known before the create is answered.
        let arns: HashMap<String, String> = alarms
            .iter()
            .filter_map(|a| Some((a.alarm_name()?.to_owned(), a.alarm_arn()?.to_owned())))
            .collect();
        let owned = owned_items(scope, selector, alarms, MetricAlarm::alarm_name, |names| {
            read_tags(scope, names, &arns)
        })
        .await?;
        Ok(owned.into_iter().map(|(a, o)| observed(&a, o)).collect())
    }
}

pub struct AlarmHandler;

impl AlarmHandler {
    /// Creates or updates the alarm: CloudWatch has one call for both (tags count only when
    /// it creates).
    async fn put(&self, scope: &Scope, node: &Resolved) -> Result<(), AwsError> {
        let dimensions: Vec<Dimension> = node
            .props
            .get("dimensions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                Dimension::builder()
                    .name(k)
                    .value(v.as_str().unwrap_or_default())
                    .build()
            })
            .collect();
        let tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let topic = node.req("topic");
        let actions = (!topic.is_empty()).then(|| vec![topic.to_owned()]);
        scope
            .api
            .call(SERVICE, "PutMetricAlarm", Effect::Idempotent, || {
                scope
                    .cloudwatch
                    .put_metric_alarm()
                    .alarm_name(node.req("name"))
                    .alarm_description(node.req("description"))
                    .namespace(node.req("namespace"))
                    .metric_name(node.req("metric"))
                    .statistic(Statistic::from(node.req("statistic")))
                    .set_dimensions(Some(dimensions.clone()))
                    .comparison_operator(ComparisonOperator::from(node.req("comparison")))
                    .threshold(
                        node.props
                            .get("threshold")
                            .and_then(Value::as_f64)
                            .unwrap_or_default(),
                    )
                    .period(node.i64("period").unwrap_or(300) as i32)
                    .evaluation_periods(node.i64("evaluationPeriods").unwrap_or(1) as i32)
                    .treat_missing_data(node.req("missingData"))
                    .set_alarm_actions(actions.clone())
                    .set_ok_actions(actions.clone())
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Handler<Scope> for AlarmHandler {
    fn kind(&self) -> Kind {
        ALARM
    }

    fn mutable(&self) -> &'static [&'static str] {
        &[
            "namespace",
            "metric",
            "statistic",
            "dimensions",
            "comparison",
            "threshold",
            "period",
            "evaluationPeriods",
            "missingData",
            "topic",
            "description",
        ]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        self.put(scope, node).await?;
        let name = node.req("name");
        // `PutMetricAlarm` ignores tags for an alarm that exists: one of this name (the
        // owner's hash is in it) released by this stack earlier is claimed again by tagging.
        let arn = scope
            .api
            .call(SERVICE, "DescribeAlarms", Effect::Read, || {
                scope.cloudwatch.describe_alarms().alarm_names(name).send()
            })
            .await?
            .metric_alarms()
            .first()
            .and_then(|a| a.alarm_arn())
            .unwrap_or_default()
            .to_owned();
        let tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        scope
            .api
            .call(SERVICE, "TagResource", Effect::Idempotent, || {
                scope
                    .cloudwatch
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        scope.api.tags.put(name, scope.tags(node));
        Ok(created(scope, node, name).prop("arn", arn.as_str()))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.put(scope, node).await.map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "DeleteAlarms", Effect::Idempotent, || {
                scope
                    .cloudwatch
                    .delete_alarms()
                    .alarm_names(&current.id)
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
                        .cloudwatch
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
mod tests;
