//! A tier's Auto Scaling group and its target-tracking policies. The group launches the
//! template version the engine resolved; when that version changes, the group is pointed at
//! it and an instance refresh replaces the running instances. The version the instances were
//! last refreshed to is recorded in a tag, so that a crash between the update and the refresh
//! still ends in a refresh. The capacity the spec asked for is recorded too: the group's own
//! capacity follows its scaling policies and is not drift.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::describe_policies::DescribePoliciesOutput;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, CustomizedMetricSpecification, Filter, InstancesDistribution, LaunchTemplate,
    LaunchTemplateSpecification, MetricDimension, MetricStatistic, MetricType,
    MixedInstancesPolicy, PredefinedMetricSpecification, RefreshPreferences, ScalingPolicy, Tag,
    TargetTrackingConfiguration,
};
use serde_json::{json, Value};

use super::{AUTO_SCALING_GROUP, DESIRED_TAG, REFRESHED_TAG, SCALING_POLICY};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, OrAbsent};
use crate::aws::tags::{claim_taken, ownership, Tags};
use crate::aws::{created, pages, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{
    FieldChange, Handler, Kind, Observed, Observer, Readiness, Resolved, Selector,
};

const SERVICE: &str = "autoscaling";

fn filter(selector: &Selector) -> Filter {
    match selector {
        Selector::Stack(stack) => Filter::builder()
            .name(format!("tag:{STACK_TAG}"))
            .values(stack)
            .build(),
        Selector::AllStacks => Filter::builder().name("tag-key").values(STACK_TAG).build(),
    }
}

fn tag_of<'a>(g: &'a AutoScalingGroup, key: &str) -> Option<&'a str> {
    g.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn number(v: Option<&str>) -> Value {
    v.and_then(|s| s.parse::<i64>().ok())
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// The launch template a group uses, directly or through its mixed-instances policy.
fn template_of(g: &AutoScalingGroup) -> Option<&LaunchTemplateSpecification> {
    g.launch_template().or_else(|| {
        g.mixed_instances_policy()
            .and_then(|m| m.launch_template())
            .and_then(|t| t.launch_template_specification())
    })
}

fn observed_group(g: &AutoScalingGroup) -> Option<Observed> {
    let o = ownership(
        g.tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
    )?;
    let name = g.auto_scaling_group_name().unwrap_or_default();
    let template = template_of(g);
    let subnets: Vec<&str> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    let spot = g
        .mixed_instances_policy()
        .and_then(|m| m.instances_distribution())
        .map(|d| {
            json!({
                "onDemandBase": d.on_demand_base_capacity().unwrap_or(0),
                "spotPercent": 100 - d.on_demand_percentage_above_base_capacity().unwrap_or(100),
            })
        })
        .unwrap_or(Value::Null);
    let instance = g
        .instances()
        .iter()
        .find(|i| {
            i.lifecycle_state()
                .is_some_and(|s| s.as_str() == "InService")
        })
        .map(|i| i.instance_id().unwrap_or_default());
    let readiness = match g.status() {
        Some(s) if s.contains("Delete") => Readiness::Deleting(s.to_owned()),
        _ => Readiness::Ready,
    };
    let template_id = template
        .and_then(|t| t.launch_template_id())
        .unwrap_or_default();
    Some(
        Observed::new(AUTO_SCALING_GROUP, o.stack, o.role, name)
            .owner(o.owner)
            .prop("name", name)
            .prop("template", template_id)
            .prop(
                "templateVersion",
                number(template.and_then(|t| t.version())),
            )
            .prop("refreshedVersion", number(tag_of(g, REFRESHED_TAG)))
            .prop("min", g.min_size().unwrap_or(0))
            .prop("max", g.max_size().unwrap_or(0))
            .prop("desired", number(tag_of(g, DESIRED_TAG)))
            .prop("subnets", json!(subnets))
            .prop("targetGroups", json!(g.target_group_arns()))
            .prop("healthCheckType", g.health_check_type().unwrap_or_default())
            .prop(
                "gracePeriodSeconds",
                g.health_check_grace_period().unwrap_or(0),
            )
            .prop("spot", spot)
            .prop("instance", instance.map(Value::from).unwrap_or(Value::Null))
            .refs(
                std::iter::once(template_id.to_owned())
                    .chain(subnets.iter().map(|s| (*s).to_owned()))
                    .chain(g.target_group_arns().iter().cloned()),
            )
            .readiness(readiness),
    )
}

/// What a target-tracking policy tracks: `cpu`, or `memory` (the CloudWatch agent's metric).
fn metric_of(p: &ScalingPolicy) -> &'static str {
    match p
        .target_tracking_configuration()
        .and_then(|c| c.customized_metric_specification())
    {
        Some(_) => "memory",
        None => "cpu",
    }
}

pub struct GroupObserver;

#[async_trait]
impl Observer<Scope> for GroupObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[AUTO_SCALING_GROUP, SCALING_POLICY]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let groups: Vec<Observed> = pages(
            scope,
            SERVICE,
            "DescribeAutoScalingGroups",
            |token| {
                scope
                    .autoscaling
                    .describe_auto_scaling_groups()
                    .filters(filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeAutoScalingGroupsOutput::next_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.auto_scaling_groups())
        .filter_map(observed_group)
        .filter(|o| selector.admits(&o.stack))
        .collect();
        if groups.is_empty() {
            return Ok(groups);
        }
        // Policies carry no tags: they are the stack's when their group is. One listing for
        // the region serves every group.
        let by_name: HashMap<&str, &Observed> = groups.iter().map(|g| (g.id.as_str(), g)).collect();
        let policies = pages(
            scope,
            SERVICE,
            "DescribePolicies",
            |token| {
                scope
                    .autoscaling
                    .describe_policies()
                    .policy_types("TargetTrackingScaling")
                    .set_next_token(token)
                    .send()
            },
            DescribePoliciesOutput::next_token,
        )
        .await?;
        let mut out: Vec<Observed> = Vec::new();
        for p in policies.iter().flat_map(|p| p.scaling_policies()) {
            let group = p.auto_scaling_group_name().unwrap_or_default();
            let Some(g) = by_name.get(group) else {
                continue;
            };
            let name = p.policy_name().unwrap_or_default();
            let target = p
                .target_tracking_configuration()
                .and_then(|c| c.target_value())
                .unwrap_or_default();
            out.push(
                Observed::new(
                    SCALING_POLICY,
                    g.stack.clone(),
                    name,
                    format!("{group}|{name}"),
                )
                .owner(g.owner.clone())
                .prop("group", group)
                .prop("name", name)
                .prop("metric", metric_of(p))
                .prop("target", target.round() as i64)
                .refs([group.to_owned()]),
            );
        }
        out.extend(groups);
        Ok(out)
    }
}

pub struct GroupHandler;

impl GroupHandler {
    fn template(node: &Resolved, version: &str) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .launch_template_id(node.req("template"))
            .version(version)
            .build()
    }

    /// The group's template, as AWS takes it: alone, or inside a mixed-instances policy
    /// when part of the group runs on Spot.
    fn launch(
        node: &Resolved,
    ) -> (
        Option<LaunchTemplateSpecification>,
        Option<MixedInstancesPolicy>,
    ) {
        let version = node.i64("templateVersion").unwrap_or(1).to_string();
        let template = Self::template(node, &version);
        match node.props.get("spot").filter(|s| !s.is_null()) {
            None => (Some(template), None),
            Some(spot) => {
                let spot_percent = spot["spotPercent"].as_i64().unwrap_or(100) as i32;
                let policy = MixedInstancesPolicy::builder()
                    .launch_template(
                        LaunchTemplate::builder()
                            .launch_template_specification(template)
                            .build(),
                    )
                    .instances_distribution(
                        InstancesDistribution::builder()
                            .on_demand_base_capacity(
                                spot["onDemandBase"].as_i64().unwrap_or(0) as i32
                            )
                            .on_demand_percentage_above_base_capacity(100 - spot_percent)
                            .spot_allocation_strategy("price-capacity-optimized")
                            .build(),
                    )
                    .build();
                (None, Some(policy))
            }
        }
    }

    fn tag(name: &str, key: &str, value: String, propagate: bool) -> Tag {
        Tag::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(propagate)
            .build()
    }

    /// Records what the spec asked for in the group's tags.
    async fn record(&self, scope: &Scope, tags: Vec<Tag>) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "CreateOrUpdateTags", Effect::Idempotent, || {
                scope
                    .autoscaling
                    .create_or_update_tags()
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await
            .map(|_| ())
    }
}

/// The instance refresh that replaces a group's instances with its template's current
/// version, keeping 90% of the capacity healthy and skipping instances already on it.
pub fn refresh_request(
    client: &aws_sdk_autoscaling::Client,
    group: &str,
    warmup_seconds: i32,
) -> aws_sdk_autoscaling::operation::start_instance_refresh::builders::StartInstanceRefreshFluentBuilder
{
    client
        .start_instance_refresh()
        .auto_scaling_group_name(group)
        .strategy(aws_sdk_autoscaling::types::RefreshStrategy::Rolling)
        .preferences(
            RefreshPreferences::builder()
                .min_healthy_percentage(90)
                .instance_warmup(warmup_seconds)
                .skip_matching(true)
                .build(),
        )
}

#[async_trait]
impl Handler<Scope> for GroupHandler {
    fn kind(&self) -> Kind {
        AUTO_SCALING_GROUP
    }

    fn mutable(&self) -> &'static [&'static str] {
        &[
            "template",
            "templateVersion",
            "refreshedVersion",
            "min",
            "max",
            "desired",
            "subnets",
            "targetGroups",
            "healthCheckType",
            "gracePeriodSeconds",
            "spot",
        ]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let name = node.req("name");
        let version = node.i64("templateVersion").unwrap_or(1);
        let mut tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .map(|(k, v)| Self::tag(name, &k, v, true))
            .collect();
        let desired = node.i64("desired").unwrap_or(0);
        tags.push(Self::tag(name, DESIRED_TAG, desired.to_string(), false));
        tags.push(Self::tag(name, REFRESHED_TAG, version.to_string(), false));
        let (template, mixed) = Self::launch(node);
        let made = scope
            .api
            .call(SERVICE, "CreateAutoScalingGroup", Effect::Create, || {
                scope
                    .autoscaling
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(name)
                    .set_launch_template(template.clone())
                    .set_mixed_instances_policy(mixed.clone())
                    .min_size(node.i64("min").unwrap_or(0) as i32)
                    .max_size(node.i64("max").unwrap_or(1) as i32)
                    .desired_capacity(desired as i32)
                    .vpc_zone_identifier(node.strs("subnets").join(","))
                    .set_target_group_arns(Some(node.strs("targetGroups")))
                    .health_check_type(node.req("healthCheckType"))
                    .health_check_grace_period(node.i64("gracePeriodSeconds").unwrap_or(300) as i32)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        match made {
            Ok(_) => {}
            // The name is the stack's: a create whose answer was lost, if the owner matches.
            Err(e) if e.code == "AlreadyExists" => {
                let found = scope
                    .api
                    .call(SERVICE, "DescribeAutoScalingGroups", Effect::Read, || {
                        scope
                            .autoscaling
                            .describe_auto_scaling_groups()
                            .auto_scaling_group_names(name)
                            .send()
                    })
                    .await?;
                let tags: Option<Tags> = found.auto_scaling_groups().first().map(|g| {
                    g.tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                        .collect()
                });
                claim_taken(
                    scope,
                    tags.as_ref(),
                    &e,
                    &format!("the Auto Scaling group {name}"),
                )?;
            }
            Err(e) => return Err(e),
        }
        let mut o = created(scope, node, name).refs(
            std::iter::once(node.req("template").to_owned())
                .chain(node.strs("subnets"))
                .chain(node.strs("targetGroups")),
        );
        o.props.insert("instance".into(), Value::Null);
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
        let only_refresh = changes.iter().all(|c| c.field == "refreshedVersion");
        if !only_refresh {
            let (template, mixed) = Self::launch(node);
            let desired = node.i64("desired").unwrap_or(0) as i32;
            let desired_changed = changes.iter().any(|c| c.field == "desired");
            scope
                .api
                .call(
                    SERVICE,
                    "UpdateAutoScalingGroup",
                    Effect::Idempotent,
                    || {
                        scope
                            .autoscaling
                            .update_auto_scaling_group()
                            .auto_scaling_group_name(name)
                            .set_launch_template(template.clone())
                            .set_mixed_instances_policy(mixed.clone())
                            .min_size(node.i64("min").unwrap_or(0) as i32)
                            .max_size(node.i64("max").unwrap_or(1) as i32)
                            // The running capacity is the scaling policies' business unless the
                            // spec's own number changed.
                            .set_desired_capacity(desired_changed.then_some(desired))
                            .vpc_zone_identifier(node.strs("subnets").join(","))
                            .health_check_type(node.req("healthCheckType"))
                            .health_check_grace_period(
                                node.i64("gracePeriodSeconds").unwrap_or(300) as i32,
                            )
                            .send()
                    },
                )
                .await?;
            if changes.iter().any(|c| c.field == "targetGroups") {
                let old: Vec<String> = current.props["targetGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .filter(|a| !node.strs("targetGroups").contains(a))
                    .collect();
                scope
                    .api
                    .call(
                        SERVICE,
                        "AttachLoadBalancerTargetGroups",
                        Effect::Idempotent,
                        || {
                            scope
                                .autoscaling
                                .attach_load_balancer_target_groups()
                                .auto_scaling_group_name(name)
                                .set_target_group_arns(Some(node.strs("targetGroups")))
                                .send()
                        },
                    )
                    .await?;
                if !old.is_empty() {
                    scope
                        .api
                        .call(
                            SERVICE,
                            "DetachLoadBalancerTargetGroups",
                            Effect::Idempotent,
                            || {
                                scope
                                    .autoscaling
                                    .detach_load_balancer_target_groups()
                                    .auto_scaling_group_name(name)
                                    .set_target_group_arns(Some(old.clone()))
                                    .send()
                            },
                        )
                        .await?;
                }
            }
            if desired_changed {
                let tag = Self::tag(name, DESIRED_TAG, desired.to_string(), false);
                self.record(scope, vec![tag]).await?;
            }
        }
        let version = node.i64("refreshedVersion").unwrap_or(1);
        if current.props.get("refreshedVersion") != Some(&Value::from(version)) {
            let warmup = node.i64("gracePeriodSeconds").unwrap_or(300) as i32;
            scope
                .api
                .call(SERVICE, "StartInstanceRefresh", Effect::Idempotent, || {
                    refresh_request(&scope.autoscaling, name, warmup).send()
                })
                .await?;
            let tag = Self::tag(name, REFRESHED_TAG, version.to_string(), false);
            self.record(scope, vec![tag]).await?;
        }
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(
                SERVICE,
                "DeleteAutoScalingGroup",
                Effect::Idempotent,
                || {
                    scope
                        .autoscaling
                        .delete_auto_scaling_group()
                        .auto_scaling_group_name(&current.id)
                        .force_delete(true)
                        .send()
                },
            )
            .await
            .or_absent()
    }

    fn settles(&self) -> bool {
        true
    }

    async fn refresh(
        &self,
        scope: &Scope,
        current: &Observed,
    ) -> Result<Option<Observed>, AwsError> {
        let found = scope
            .api
            .call(SERVICE, "DescribeAutoScalingGroups", Effect::Read, || {
                scope
                    .autoscaling
                    .describe_auto_scaling_groups()
                    .auto_scaling_group_names(&current.id)
                    .send()
            })
            .await?;
        Ok(found.auto_scaling_groups().first().and_then(observed_group))
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        for o in resources {
            let tags: Vec<Tag> = [STACK_TAG, COMPONENT_TAG, OWNER_TAG]
                .into_iter()
                .map(|k| {
                    Tag::builder()
                        .resource_id(&o.id)
                        .resource_type("auto-scaling-group")
                        .key(k)
                        .build()
                })
                .collect();
            scope
                .api
                .call(SERVICE, "DeleteTags", Effect::Idempotent, || {
                    scope
                        .autoscaling
                        .delete_tags()
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await?;
        }
        Ok(())
    }
}

pub struct PolicyHandler;

/// The target-tracking configuration of a policy node.
pub fn tracking(node: &Resolved) -> TargetTrackingConfiguration {
    let target = node.i64("target").unwrap_or(70) as f64;
    let builder = TargetTrackingConfiguration::builder().target_value(target);
    let builder = match node.req("metric") {
        "memory" => builder.customized_metric_specification(
            CustomizedMetricSpecification::builder()
                .namespace("CWAgent")
                .metric_name("mem_used_percent")
                .dimensions(
                    MetricDimension::builder()
                        .name("AutoScalingGroupName")
                        .value(node.req("group"))
                        .build(),
                )
                .statistic(MetricStatistic::Average)
                .build(),
        ),
        _ => builder.predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                .build(),
        ),
    };
    builder.build()
}

impl PolicyHandler {
    async fn put(&self, scope: &Scope, node: &Resolved) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "PutScalingPolicy", Effect::Idempotent, || {
                scope
                    .autoscaling
                    .put_scaling_policy()
                    .auto_scaling_group_name(node.req("group"))
                    .policy_name(node.req("name"))
                    .policy_type("TargetTrackingScaling")
                    .target_tracking_configuration(tracking(node))
                    .send()
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Handler<Scope> for PolicyHandler {
    fn kind(&self) -> Kind {
        SCALING_POLICY
    }

    fn identity(&self) -> &'static [&'static str] {
        &["group", "name"]
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["metric", "target"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        self.put(scope, node).await?;
        let id = format!("{}|{}", node.req("group"), node.req("name"));
        Ok(created(scope, node, &id).refs([node.req("group").to_owned()]))
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
            .call(SERVICE, "DeletePolicy", Effect::Idempotent, || {
                scope
                    .autoscaling
                    .delete_policy()
                    .auto_scaling_group_name(current.str("group").unwrap_or_default())
                    .policy_name(current.str("name").unwrap_or_default())
                    .send()
            })
            .await
            .or_absent()
    }
}
