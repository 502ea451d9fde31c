//! Public and private subnets, one per availability zone.

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
use aws_sdk_ec2::types::ResourceType;

use super::{created, owner, owner_filter, release_ec2, tag_spec, SUBNET};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct SubnetObserver;

#[async_trait]
impl Observer<Scope> for SubnetObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[SUBNET]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeSubnets",
            |token| {
                scope
                    .ec2
                    .describe_subnets()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeSubnetsOutput::next_token,
        )
        .await?;
        for page in found {
            for s in page.subnets() {
                let Some((stack, role, uid)) = owner(s.tags()) else {
                    continue;
                };
                let vpc = s.vpc_id().unwrap_or_default();
                out.push(
                    Observed::new(
                        SUBNET,
                        stack,
                        role.clone(),
                        s.subnet_id().unwrap_or_default(),
                    )
                    .owner(uid.clone())
                    .prop("vpc", vpc)
                    .prop("cidr", s.cidr_block().unwrap_or_default())
                    .prop("zone", s.availability_zone().unwrap_or_default())
                    .refs([vpc.to_owned()]),
                );
            }
        }
        Ok(out)
    }
}

pub struct SubnetHandler;

#[async_trait]
impl Handler<Scope> for SubnetHandler {
    fn kind(&self) -> Kind {
        SUBNET
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let out = scope
            .api
            .call("ec2", "CreateSubnet", Effect::Create, || {
                scope
                    .ec2
                    .create_subnet()
                    .vpc_id(node.req("vpc"))
                    .cidr_block(node.req("cidr"))
                    .availability_zone(node.req("zone"))
                    .tag_specifications(tag_spec(scope, ResourceType::Subnet, node))
                    .send()
            })
            .await?;
        let id = out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default();
        Ok(created(scope, node, id).refs([node.req("vpc").to_owned()]))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteSubnet", Effect::Idempotent, || {
                scope.ec2.delete_subnet().subnet_id(&current.id).send()
            })
            .await
            .map(|_| ())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}
