//! The internet gateway and its attachment to the VPC.

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_internet_gateways::DescribeInternetGatewaysOutput;
use aws_sdk_ec2::types::{AttachmentStatus, ResourceType};

use super::{
    created, owner, owner_filter, release_ec2, tag_spec, GATEWAY_ATTACHMENT, INTERNET_GATEWAY,
};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct GatewayObserver;

#[async_trait]
impl Observer<Scope> for GatewayObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[INTERNET_GATEWAY, GATEWAY_ATTACHMENT]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeInternetGateways",
            |token| {
                scope
                    .ec2
                    .describe_internet_gateways()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeInternetGatewaysOutput::next_token,
        )
        .await?;
        for page in found {
            for g in page.internet_gateways() {
                let Some((stack, role, uid)) = owner(g.tags()) else {
                    continue;
                };
                let id = g.internet_gateway_id().unwrap_or_default();
                out.push(
                    Observed::new(INTERNET_GATEWAY, stack.clone(), role.clone(), id)
                        .owner(uid.clone()),
                );
                for a in g.attachments() {
                    let attached = matches!(
                        a.state(),
                        Some(AttachmentStatus::Attached | AttachmentStatus::Attaching)
                    ) || a.state().map(|s| s.as_str()) == Some("available");
                    let vpc = a.vpc_id().unwrap_or_default();
                    if attached {
                        out.push(
                            Observed::new(
                                GATEWAY_ATTACHMENT,
                                stack.clone(),
                                role.clone(),
                                format!("{id}|{vpc}"),
                            )
                            .owner(uid.clone())
                            .prop("gateway", id)
                            .prop("vpc", vpc)
                            .refs([id.to_owned(), vpc.to_owned()]),
                        );
                    }
                }
            }
        }
        Ok(out)
    }
}

pub struct GatewayHandler;

#[async_trait]
impl Handler<Scope> for GatewayHandler {
    fn kind(&self) -> Kind {
        INTERNET_GATEWAY
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let out = scope
            .api
            .call("ec2", "CreateInternetGateway", Effect::Create, || {
                scope
                    .ec2
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(scope, ResourceType::InternetGateway, node))
                    .send()
            })
            .await?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .unwrap_or_default();
        Ok(created(scope, node, id))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteInternetGateway", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(&current.id)
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}

pub struct AttachmentHandler;

#[async_trait]
impl Handler<Scope> for AttachmentHandler {
    fn kind(&self) -> Kind {
        GATEWAY_ATTACHMENT
    }

    fn identity(&self) -> &'static [&'static str] {
        &["gateway", "vpc"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let (gateway, vpc) = (node.req("gateway"), node.req("vpc"));
        let result = scope
            .api
            .call("ec2", "AttachInternetGateway", Effect::Idempotent, || {
                scope
                    .ec2
                    .attach_internet_gateway()
                    .internet_gateway_id(gateway)
                    .vpc_id(vpc)
                    .send()
            })
            .await;
        match result {
            // Attached by an earlier attempt whose answer was lost.
            Err(e) if e.code == "Resource.AlreadyAssociated" => {}
            other => {
                other?;
            }
        }
        Ok(created(scope, node, &format!("{gateway}|{vpc}"))
            .refs([gateway.to_owned(), vpc.to_owned()]))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let (gateway, vpc) = (
            current.str("gateway").unwrap_or_default(),
            current.str("vpc").unwrap_or_default(),
        );
        let result = scope
            .api
            .call("ec2", "DetachInternetGateway", Effect::Idempotent, || {
                scope
                    .ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(gateway)
                    .vpc_id(vpc)
                    .send()
            })
            .await;
        match result {
            Err(e) if e.code == "Gateway.NotAttached" => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
