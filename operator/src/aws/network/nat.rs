//! NAT gateways. They settle asynchronously (`pending` -> `available`, `deleting` ->
//! `deleted`), so their handler can refresh one gateway while the engine waits.

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput;
use aws_sdk_ec2::types::{NatGateway, NatGatewayState, ResourceType};

use super::{created, owner, owner_filter, release_ec2, tag_spec, NAT_GATEWAY};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Readiness, Resolved, Selector};

fn readiness(state: Option<&NatGatewayState>) -> Readiness {
    match state {
        Some(NatGatewayState::Available) => Readiness::Ready,
        Some(NatGatewayState::Pending) | None => Readiness::Pending("pending".into()),
        Some(NatGatewayState::Deleting) => Readiness::Deleting("deleting".into()),
        Some(other) => Readiness::Gone(other.as_str().to_owned()),
    }
}

fn observed(g: &NatGateway, stack: String, role: String) -> Observed {
    let subnet = g.subnet_id().unwrap_or_default();
    let allocation = g
        .nat_gateway_addresses()
        .first()
        .and_then(|a| a.allocation_id())
        .unwrap_or_default();
    Observed::new(
        NAT_GATEWAY,
        stack,
        role,
        g.nat_gateway_id().unwrap_or_default(),
    )
    .prop("subnet", subnet)
    .prop("allocation", allocation)
    .refs([
        subnet.to_owned(),
        allocation.to_owned(),
        g.vpc_id().unwrap_or_default().to_owned(),
    ])
    .readiness(readiness(g.state()))
}

pub struct NatObserver;

#[async_trait]
impl Observer<Scope> for NatObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[NAT_GATEWAY]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeNatGateways",
            |token| {
                scope
                    .ec2
                    .describe_nat_gateways()
                    .filter(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeNatGatewaysOutput::next_token,
        )
        .await?;
        for page in found {
            // Some implementations ignore the tag filter here: the tags are checked again.
            for g in page.nat_gateways() {
                let Some((stack, role, uid)) = owner(g.tags()) else {
                    continue;
                };
                if selector.admits(&stack) {
                    out.push(observed(g, stack, role).owner(uid));
                }
            }
        }
        Ok(out)
    }
}

pub struct NatHandler;

impl NatHandler {
    async fn create_with(
        scope: &Scope,
        node: &Resolved,
        salt: &str,
    ) -> Result<NatGateway, AwsError> {
        let token = scope.token(node, salt);
        let out = scope
            .api
            .call("ec2", "CreateNatGateway", Effect::Idempotent, || {
                scope
                    .ec2
                    .create_nat_gateway()
                    .subnet_id(node.req("subnet"))
                    .allocation_id(node.req("allocation"))
                    .client_token(&token)
                    .tag_specifications(tag_spec(scope, ResourceType::Natgateway, node))
                    .send()
            })
            .await?;
        Ok(out
            .nat_gateway()
            .cloned()
            .unwrap_or_else(|| NatGateway::builder().build()))
    }
}

#[async_trait]
impl Handler<Scope> for NatHandler {
    fn kind(&self) -> Kind {
        NAT_GATEWAY
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let mut g = Self::create_with(scope, node, "").await?;
        // A client token stays bound to its gateway after that gateway is deleted; AWS then
        // answers with the deleted one. Ask again with a token of its own.
        if matches!(
            g.state(),
            Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed)
        ) {
            let salt = format!("after-{}", g.nat_gateway_id().unwrap_or_default());
            g = Self::create_with(scope, node, &salt).await?;
        }
        let mut o = created(scope, node, g.nat_gateway_id().unwrap_or_default());
        o.readiness = readiness(g.state());
        Ok(o.refs([
            node.req("subnet").to_owned(),
            node.req("allocation").to_owned(),
        ]))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteNatGateway", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_nat_gateway()
                    .nat_gateway_id(&current.id)
                    .send()
            })
            .await
            .map(|_| ())
    }

    fn settles(&self) -> bool {
        true
    }

    async fn refresh(
        &self,
        scope: &Scope,
        current: &Observed,
    ) -> Result<Option<Observed>, AwsError> {
        let out = scope
            .api
            .call("ec2", "DescribeNatGateways", Effect::Read, || {
                scope
                    .ec2
                    .describe_nat_gateways()
                    .nat_gateway_ids(&current.id)
                    .send()
            })
            .await;
        match out {
            Ok(out) => Ok(out.nat_gateways().first().map(|g| {
                observed(g, current.stack.clone(), current.role.clone())
                    .owner(current.owner.clone())
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_to_readiness() {
        assert_eq!(
            readiness(Some(&NatGatewayState::Available)),
            Readiness::Ready
        );
        assert!(matches!(
            readiness(Some(&NatGatewayState::Pending)),
            Readiness::Pending(_)
        ));
        assert!(matches!(
            readiness(Some(&NatGatewayState::Deleting)),
            Readiness::Deleting(_)
        ));
        assert!(matches!(
            readiness(Some(&NatGatewayState::Deleted)),
            Readiness::Gone(_)
        ));
        assert!(matches!(
            readiness(Some(&NatGatewayState::Failed)),
            Readiness::Gone(_)
        ));
    }
}
