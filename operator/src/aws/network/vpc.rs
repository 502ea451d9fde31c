//! The VPC and its DNS hostnames attribute.

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use futures::StreamExt;

use super::{created, owner, owner_filter, release_ec2, tag_spec, VPC, VPC_DNS};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{FieldChange, Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct VpcObserver;

#[async_trait]
impl Observer<Scope> for VpcObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[VPC, VPC_DNS]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeVpcs",
            |token| {
                scope
                    .ec2
                    .describe_vpcs()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeVpcsOutput::next_token,
        )
        .await?;
        for page in found {
            for v in page.vpcs() {
                let Some((stack, role, uid)) = owner(v.tags()) else {
                    continue;
                };
                let id = v.vpc_id().unwrap_or_default();
                out.push(
                    Observed::new(VPC, stack, role, id)
                        .owner(uid.clone())
                        .prop("cidr", v.cidr_block().unwrap_or_default()),
                );
            }
        }
        // DNS hostnames is not part of DescribeVpcs: one attribute read per VPC, several at
        // once (an observation of every stack reads one per stack).
        let vpcs: Vec<Observed> = out.clone();
        let reads = vpcs.into_iter().map(|v| async move {
            let attr = scope
                .api
                .call("ec2", "DescribeVpcAttribute", Effect::Read, || {
                    scope
                        .ec2
                        .describe_vpc_attribute()
                        .vpc_id(&v.id)
                        .attribute(VpcAttributeName::EnableDnsHostnames)
                        .send()
                })
                .await;
            let enabled = match attr {
                Ok(a) => a
                    .enable_dns_hostnames()
                    .and_then(|b| b.value())
                    .unwrap_or(false),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            Ok(Some(
                Observed::new(
                    VPC_DNS,
                    v.stack.clone(),
                    v.role.clone(),
                    format!("{}/dns-hostnames", v.id),
                )
                .owner(v.owner.clone())
                .prop("vpc", v.id.as_str())
                .prop("enabled", enabled)
                .refs([v.id.clone()]),
            ))
        });
        let found: Vec<Result<Option<Observed>, AwsError>> = futures::stream::iter(reads)
            .buffer_unordered(crate::aws::READS_AT_ONCE)
            .collect()
            .await;
        for f in found {
            out.extend(f?);
        }
        Ok(out)
    }
}

pub struct VpcHandler;

#[async_trait]
impl Handler<Scope> for VpcHandler {
    fn kind(&self) -> Kind {
        VPC
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let out = scope
            .api
            .call("ec2", "CreateVpc", Effect::Create, || {
                scope
                    .ec2
                    .create_vpc()
                    .cidr_block(node.req("cidr"))
                    .tag_specifications(tag_spec(scope, ResourceType::Vpc, node))
                    .send()
            })
            .await?;
        let id = out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default();
        Ok(created(scope, node, id))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteVpc", Effect::Idempotent, || {
                scope.ec2.delete_vpc().vpc_id(&current.id).send()
            })
            .await
            .map(|_| ())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}

/// `enableDnsHostnames`, which interface endpoints with private DNS and public instance names
/// need. It cannot be set by CreateVpc, hence its own node.
pub struct DnsHandler;

impl DnsHandler {
    async fn set(scope: &Scope, vpc: &str, enabled: bool) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "ModifyVpcAttribute", Effect::Idempotent, || {
                scope
                    .ec2
                    .modify_vpc_attribute()
                    .vpc_id(vpc)
                    .enable_dns_hostnames(AttributeBooleanValue::builder().value(enabled).build())
                    .send()
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Handler<Scope> for DnsHandler {
    fn kind(&self) -> Kind {
        VPC_DNS
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["enabled"]
    }

    fn identity(&self) -> &'static [&'static str] {
        &["vpc"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let vpc = node.req("vpc");
        Self::set(scope, vpc, node.bool("enabled")).await?;
        Ok(created(scope, node, &format!("{vpc}/dns-hostnames")))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        Self::set(scope, node.req("vpc"), node.bool("enabled"))
            .await
            .map(|()| None)
    }

    /// An attribute goes with its VPC.
    async fn delete(&self, _scope: &Scope, _current: &Observed) -> Result<(), AwsError> {
        Ok(())
    }
}
