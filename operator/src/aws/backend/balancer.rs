//! A tier's Application Load Balancer and its target group. ELBv2 listings carry no tags:
//! only resources with the operator's names are considered, their tags read twenty at a time
//! (`DescribeTags`) the first time they are seen, then served from the cache.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::operation::describe_load_balancers::DescribeLoadBalancersOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancer, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, Tag, TargetGroup,
    TargetGroupAttribute, TargetTypeEnum,
};
use serde_json::{json, Value};

use super::{DELAY_TAG, LISTENER, LOAD_BALANCER, TARGET_GROUP};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass, OrAbsent};
use crate::aws::tags::{claim_taken, owned_listing, Tags};
use crate::aws::{created, pages, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{
    FieldChange, Handler, Kind, Observed, Observer, Readiness, Resolved, Selector,
};

pub(super) const SERVICE: &str = "elasticloadbalancing";

/// ELBv2's tag reader for [`owned_listing`]: `DescribeTags` for twenty resources a call.
pub(super) async fn read_tags(
    scope: &Scope,
    arns: Vec<String>,
) -> Result<HashMap<String, Tags>, AwsError> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(20) {
        let read = scope
            .api
            .call(SERVICE, "DescribeTags", Effect::Read, || {
                scope
                    .elb
                    .describe_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .send()
            })
            .await;
        let read = match read {
            Ok(r) => r,
            // One of them is gone since the listing: read them one by one.
            Err(e) if e.is_not_found() && chunk.len() > 1 => {
                for arn in chunk {
                    out.extend(Box::pin(read_tags(scope, vec![arn.clone()])).await?);
                }
                continue;
            }
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        for d in read.tag_descriptions() {
            let tags = d
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_owned(), tags);
        }
    }
    Ok(out)
}

pub(super) fn elb_tags(scope: &Scope, node: &Resolved, extra: &[(&str, String)]) -> Vec<Tag> {
    scope
        .tags(node)
        .into_iter()
        .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn lb_readiness(lb: &LoadBalancer) -> Readiness {
    let state = lb
        .state()
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    match state.as_str() {
        "active" | "" => Readiness::Ready,
        "failed" => Readiness::Gone(state),
        _ => Readiness::Pending(state),
    }
}

fn observed_lb(lb: &LoadBalancer, o: crate::aws::tags::Ownership) -> Observed {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let groups = lb.security_groups();
    let subnets: Vec<&str> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .collect();
    Observed::new(LOAD_BALANCER, o.stack, o.role, arn)
        .owner(o.owner)
        .prop("name", lb.load_balancer_name().unwrap_or_default())
        .prop(
            "scheme",
            lb.scheme().map(|s| s.as_str()).unwrap_or_default(),
        )
        .prop("subnets", json!(subnets))
        .prop("securityGroups", json!(groups))
        .prop("dnsName", lb.dns_name().unwrap_or_default())
        .prop("zoneId", lb.canonical_hosted_zone_id().unwrap_or_default())
        .prop("arnSuffix", arn_suffix(arn, "loadbalancer/"))
        .refs(
            subnets
                .iter()
                .map(|s| (*s).to_owned())
                .chain(groups.iter().cloned()),
        )
        .readiness(lb_readiness(lb))
}

/// The part of an ARN CloudWatch names a load balancer or target group by
/// (`app/<name>/<id>`, `targetgroup/<name>/<id>`).
pub fn arn_suffix(arn: &str, after: &str) -> String {
    match arn.split_once(after) {
        Some((_, rest)) if after == "loadbalancer/" => rest.to_owned(),
        Some((_, rest)) => format!("{after}{rest}"),
        None => String::new(),
    }
}

fn observed_tg(tg: &TargetGroup, o: crate::aws::tags::Ownership, delay: Option<&str>) -> Observed {
    let arn = tg.target_group_arn().unwrap_or_default();
    Observed::new(TARGET_GROUP, o.stack, o.role, arn)
        .owner(o.owner)
        .prop("name", tg.target_group_name().unwrap_or_default())
        .prop("port", tg.port().unwrap_or(0))
        .prop(
            "protocol",
            tg.protocol().map(|p| p.as_str()).unwrap_or_default(),
        )
        .prop(
            "targetType",
            tg.target_type().map(|t| t.as_str()).unwrap_or_default(),
        )
        .prop("vpc", tg.vpc_id().unwrap_or_default())
        .prop(
            "healthCheck",
            json!({
                "path": tg.health_check_path().unwrap_or_default(),
                "intervalSeconds": tg.health_check_interval_seconds().unwrap_or(0),
                "healthyThreshold": tg.healthy_threshold_count().unwrap_or(0),
                "unhealthyThreshold": tg.unhealthy_threshold_count().unwrap_or(0),
            }),
        )
        .prop(
            "deregistrationDelay",
            delay
                .and_then(|d| d.parse::<i64>().ok())
                .map(Value::from)
                .unwrap_or(Value::Null),
        )
        .prop("arnSuffix", arn_suffix(arn, "targetgroup/"))
        .refs([tg.vpc_id().unwrap_or_default().to_owned()])
}

pub struct BalancerObserver;

#[async_trait]
impl Observer<Scope> for BalancerObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[LOAD_BALANCER, TARGET_GROUP, LISTENER]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let lbs: Vec<LoadBalancer> = pages(
            scope,
            SERVICE,
            "DescribeLoadBalancers",
            |marker| {
                scope
                    .elb
                    .describe_load_balancers()
                    .set_marker(marker)
                    .send()
            },
            DescribeLoadBalancersOutput::next_marker,
        )
        .await?
        .iter()
        .flat_map(|p| p.load_balancers().iter().cloned())
        .collect();
        let tgs: Vec<TargetGroup> = pages(
            scope,
            SERVICE,
            "DescribeTargetGroups",
            |marker| scope.elb.describe_target_groups().set_marker(marker).send(),
            DescribeTargetGroupsOutput::next_marker,
        )
        .await?
        .iter()
        .flat_map(|p| p.target_groups().iter().cloned())
        .collect();
        let lbs = owned_listing(
            scope,
            selector,
            lbs,
            LoadBalancer::load_balancer_name,
            LoadBalancer::load_balancer_arn,
            |arns| read_tags(scope, arns),
        )
        .await?;
        let tgs = owned_listing(
            scope,
            selector,
            tgs,
            TargetGroup::target_group_name,
            TargetGroup::target_group_arn,
            |arns| read_tags(scope, arns),
        )
        .await?;
        let mut out: Vec<Observed> = lbs.into_iter().map(|(lb, o)| observed_lb(&lb, o)).collect();
        out.extend(super::listener::observe(scope, &out).await?);
        for (tg, o) in tgs {
            let tags = scope
                .api
                .tags
                .get(tg.target_group_arn().unwrap_or_default())
                .unwrap_or_default();
            let delay = tags
                .iter()
                .find(|(k, _)| k == DELAY_TAG)
                .map(|(_, v)| v.as_str());
            out.push(observed_tg(&tg, o, delay));
        }
        Ok(out)
    }
}

/// A create answered `Duplicate...Name`: the resource of that name is the stack's own if its
/// tags say so (a create whose answer was lost), somebody else's otherwise.
async fn adopt(
    scope: &Scope,
    operation: &'static str,
    arn: Option<String>,
    code: &str,
) -> Result<String, AwsError> {
    let theirs = || {
        AwsError::new(
            SERVICE,
            operation,
            code,
            "a load balancer or target group of this name belongs to another owner".to_owned(),
            ErrorClass::Permanent,
        )
    };
    let arn = arn.ok_or_else(theirs)?;
    let tags = read_tags(scope, vec![arn.clone()]).await?;
    claim_taken(
        scope,
        tags.get(&arn),
        &theirs(),
        "a load balancer or target group of this name",
    )?;
    scope.api.tags.put(&arn, tags[&arn].clone());
    Ok(arn)
}

pub struct BalancerHandler;

#[async_trait]
impl Handler<Scope> for BalancerHandler {
    fn kind(&self) -> Kind {
        LOAD_BALANCER
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["subnets", "securityGroups"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags = elb_tags(scope, node, &[]);
        let name = node.req("name");
        let scheme = if node.req("scheme") == "internal" {
            LoadBalancerSchemeEnum::Internal
        } else {
            LoadBalancerSchemeEnum::InternetFacing
        };
        let made = scope
            .api
            .call(SERVICE, "CreateLoadBalancer", Effect::Create, || {
                scope
                    .elb
                    .create_load_balancer()
                    .name(name)
                    .r#type(LoadBalancerTypeEnum::Application)
                    .scheme(scheme.clone())
                    .set_subnets(Some(node.strs("subnets")))
                    .set_security_groups(Some(node.strs("securityGroups")))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        let lb = match made {
            Ok(out) => out.load_balancers().first().cloned(),
            Err(e) if e.code.starts_with("Duplicate") => {
                let found = scope
                    .api
                    .call(SERVICE, "DescribeLoadBalancers", Effect::Read, || {
                        scope.elb.describe_load_balancers().names(name).send()
                    })
                    .await?;
                let lb = found.load_balancers().first().cloned();
                let arn = lb
                    .as_ref()
                    .and_then(|l| l.load_balancer_arn().map(str::to_owned));
                adopt(scope, "CreateLoadBalancer", arn, &e.code).await?;
                lb
            }
            Err(e) => return Err(e),
        };
        let lb = lb.unwrap_or_else(|| LoadBalancer::builder().build());
        let arn = lb.load_balancer_arn().unwrap_or_default();
        scope.api.tags.put(arn, scope.tags(node));
        let mut o = created(scope, node, arn)
            .prop("dnsName", lb.dns_name().unwrap_or_default())
            .prop("zoneId", lb.canonical_hosted_zone_id().unwrap_or_default())
            .prop("arnSuffix", arn_suffix(arn, "loadbalancer/"))
            .refs(
                node.strs("subnets")
                    .into_iter()
                    .chain(node.strs("securityGroups")),
            )
            .readiness(lb_readiness(&lb));
        o.owner = Some(scope.stack.uid.clone());
        Ok(o)
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
                "subnets" => {
                    scope
                        .api
                        .call(SERVICE, "SetSubnets", Effect::Idempotent, || {
                            scope
                                .elb
                                .set_subnets()
                                .load_balancer_arn(&current.id)
                                .set_subnets(Some(node.strs("subnets")))
                                .send()
                        })
                        .await?;
                }
                "securityGroups" => {
                    scope
                        .api
                        .call(SERVICE, "SetSecurityGroups", Effect::Idempotent, || {
                            scope
                                .elb
                                .set_security_groups()
                                .load_balancer_arn(&current.id)
                                .set_security_groups(Some(node.strs("securityGroups")))
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
        scope
            .api
            .call(SERVICE, "DeleteLoadBalancer", Effect::Idempotent, || {
                scope
                    .elb
                    .delete_load_balancer()
                    .load_balancer_arn(&current.id)
                    .send()
            })
            .await
            .or_absent()?;
        scope.api.tags.forget(&current.id);
        Ok(())
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
            .call(SERVICE, "DescribeLoadBalancers", Effect::Read, || {
                scope
                    .elb
                    .describe_load_balancers()
                    .load_balancer_arns(&current.id)
                    .send()
            })
            .await;
        let found = match found {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        let owner = crate::aws::tags::Ownership {
            stack: current.stack.clone(),
            role: current.role.clone(),
            owner: current.owner.clone(),
        };
        Ok(found
            .load_balancers()
            .first()
            .map(|lb| observed_lb(lb, owner)))
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release(scope, resources).await
    }
}

/// Removes the ownership tags from ELBv2 resources.
pub(super) async fn release(scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
    let arns: Vec<String> = resources.iter().map(|o| o.id.clone()).collect();
    for chunk in arns.chunks(20) {
        scope
            .api
            .call(SERVICE, "RemoveTags", Effect::Idempotent, || {
                scope
                    .elb
                    .remove_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .tag_keys(STACK_TAG)
                    .tag_keys(COMPONENT_TAG)
                    .tag_keys(OWNER_TAG)
                    .send()
            })
            .await?;
        for arn in chunk {
            scope.api.tags.forget(arn);
        }
    }
    Ok(())
}

pub struct TargetGroupHandler;

impl TargetGroupHandler {
    async fn set_delay(&self, scope: &Scope, arn: &str, node: &Resolved) -> Result<(), AwsError> {
        let delay = node.i64("deregistrationDelay").unwrap_or(300).to_string();
        scope
            .api
            .call(
                SERVICE,
                "ModifyTargetGroupAttributes",
                Effect::Idempotent,
                || {
                    scope
                        .elb
                        .modify_target_group_attributes()
                        .target_group_arn(arn)
                        .attributes(
                            TargetGroupAttribute::builder()
                                .key("deregistration_delay.timeout_seconds")
                                .value(&delay)
                                .build(),
                        )
                        .send()
                },
            )
            .await?;
        scope
            .api
            .call(SERVICE, "AddTags", Effect::Idempotent, || {
                scope
                    .elb
                    .add_tags()
                    .resource_arns(arn)
                    .tags(Tag::builder().key(DELAY_TAG).value(&delay).build())
                    .send()
            })
            .await?;
        let mut tags = scope.api.tags.get(arn).unwrap_or_default();
        tags.retain(|(k, _)| k != DELAY_TAG);
        tags.push((DELAY_TAG.to_owned(), delay));
        scope.api.tags.put(arn, tags);
        Ok(())
    }
}

fn health(node: &Resolved) -> (String, i32, i32, i32) {
    let h = &node.props["healthCheck"];
    (
        h["path"].as_str().unwrap_or("/").to_owned(),
        h["intervalSeconds"].as_i64().unwrap_or(30) as i32,
        h["healthyThreshold"].as_i64().unwrap_or(3) as i32,
        h["unhealthyThreshold"].as_i64().unwrap_or(3) as i32,
    )
}

#[async_trait]
impl Handler<Scope> for TargetGroupHandler {
    fn kind(&self) -> Kind {
        TARGET_GROUP
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["healthCheck", "deregistrationDelay"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        // The delay is recorded when it is set, after the create.
        let tags = elb_tags(scope, node, &[]);
        let name = node.req("name");
        let (path, interval, healthy, unhealthy) = health(node);
        let made = scope
            .api
            .call(SERVICE, "CreateTargetGroup", Effect::Create, || {
                scope
                    .elb
                    .create_target_group()
                    .name(name)
                    .protocol(ProtocolEnum::from(node.req("protocol")))
                    .port(node.i64("port").unwrap_or(80) as i32)
                    .vpc_id(node.req("vpc"))
                    .target_type(TargetTypeEnum::from(node.req("targetType")))
                    .health_check_path(&path)
                    .health_check_interval_seconds(interval)
                    .healthy_threshold_count(healthy)
                    .unhealthy_threshold_count(unhealthy)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        let arn = match made {
            Ok(out) => out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .unwrap_or_default()
                .to_owned(),
            Err(e) if e.code.starts_with("Duplicate") => {
                let found = scope
                    .api
                    .call(SERVICE, "DescribeTargetGroups", Effect::Read, || {
                        scope.elb.describe_target_groups().names(name).send()
                    })
                    .await?;
                let arn = found
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn().map(str::to_owned));
                adopt(scope, "CreateTargetGroup", arn, &e.code).await?
            }
            Err(e) => return Err(e),
        };
        scope.api.tags.put(&arn, scope.tags(node));
        self.set_delay(scope, &arn, node).await?;
        Ok(created(scope, node, &arn)
            .prop("arnSuffix", arn_suffix(&arn, "targetgroup/"))
            .refs([node.req("vpc").to_owned()]))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        if changes.iter().any(|c| c.field == "healthCheck") {
            let (path, interval, healthy, unhealthy) = health(node);
            scope
                .api
                .call(SERVICE, "ModifyTargetGroup", Effect::Idempotent, || {
                    scope
                        .elb
                        .modify_target_group()
                        .target_group_arn(&current.id)
                        .health_check_path(&path)
                        .health_check_interval_seconds(interval)
                        .healthy_threshold_count(healthy)
                        .unhealthy_threshold_count(unhealthy)
                        .send()
                })
                .await?;
        }
        if changes.iter().any(|c| c.field == "deregistrationDelay") {
            self.set_delay(scope, &current.id, node).await?;
        }
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "DeleteTargetGroup", Effect::Idempotent, || {
                scope
                    .elb
                    .delete_target_group()
                    .target_group_arn(&current.id)
                    .send()
            })
            .await
            .or_absent()?;
        scope.api.tags.forget(&current.id);
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release(scope, resources).await
    }
}
