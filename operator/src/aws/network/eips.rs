//! Elastic IPs for the NAT gateways and for single instances with a fixed address, and the
//! associations of the latter with the instance their Auto Scaling group runs.

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};

use super::{created, owner, owner_filter, release_ec2, tag_spec, ADDRESS_ASSOCIATION, ELASTIC_IP};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, OrAbsent};
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

/// Elastic IPs are found with DescribeAddresses and a tag filter: the tagging API does not
/// list them.
pub struct AddressObserver;

#[async_trait]
impl Observer<Scope> for AddressObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[ELASTIC_IP, ADDRESS_ASSOCIATION]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        // DescribeAddresses is not paginated.
        let out = scope
            .api
            .call("ec2", "DescribeAddresses", Effect::Read, || {
                scope
                    .ec2
                    .describe_addresses()
                    .filters(owner_filter(selector))
                    .send()
            })
            .await?;
        let mut found = Vec::new();
        for a in out.addresses() {
            let Some((stack, role, uid)) = owner(a.tags()) else {
                continue;
            };
            let allocation = a.allocation_id().unwrap_or_default();
            // An address the stack gave an instance (not a NAT gateway's, which the gateway
            // holds) is associated by the stack: the association is a resource of its own.
            let on_instance = role.ends_with(INSTANCE_SUFFIX);
            if let (true, Some(instance), Some(association)) =
                (on_instance, a.instance_id(), a.association_id())
            {
                found.push(
                    Observed::new(
                        ADDRESS_ASSOCIATION,
                        stack.clone(),
                        role.clone(),
                        association,
                    )
                    .owner(uid.clone())
                    .prop("allocation", allocation)
                    .prop("instance", instance)
                    .refs([allocation.to_owned()]),
                );
            }
            found.push(
                Observed::new(ELASTIC_IP, stack, role, allocation)
                    .owner(uid)
                    .prop("publicIp", a.public_ip().unwrap_or_default())
                    .prop("association", a.association_id().unwrap_or_default()),
            );
        }
        Ok(found)
    }
}

pub struct AddressHandler;

#[async_trait]
impl Handler<Scope> for AddressHandler {
    fn kind(&self) -> Kind {
        ELASTIC_IP
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let out = scope
            .api
            .call("ec2", "AllocateAddress", Effect::Create, || {
                scope
                    .ec2
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(tag_spec(scope, ResourceType::ElasticIp, node))
                    .send()
            })
            .await?;
        Ok(
            created(scope, node, out.allocation_id().unwrap_or_default())
                .prop("publicIp", out.public_ip().unwrap_or_default()),
        )
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let result = scope
            .api
            .call("ec2", "ReleaseAddress", Effect::Idempotent, || {
                scope
                    .ec2
                    .release_address()
                    .allocation_id(&current.id)
                    .send()
            })
            .await;
        match result {
            Err(e) if e.code == "InvalidAllocationID.NotFound" => Ok(()),
            // Still associated with a NAT gateway that is being deleted: try again later.
            Err(e)
                if e.code == "InvalidIPAddress.InUse"
                    || e.code == "AuthFailure" && e.message.contains("in use") =>
            {
                Err(AwsError {
                    class: crate::aws::error::ErrorClass::DependencyViolation,
                    ..e
                })
            }
            other => other.map(|_| ()),
        }
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}

/// The role suffix of addresses that belong on an instance (`<tier>-instance`).
pub const INSTANCE_SUFFIX: &str = "-instance";

/// Keeps an Elastic IP on the instance its node names (an Auto Scaling group's only
/// instance); a replaced instance gets the address moved to it.
pub struct AssociationHandler;

impl AssociationHandler {
    async fn associate(&self, scope: &Scope, node: &Resolved) -> Result<String, AwsError> {
        let out = scope
            .api
            .call("ec2", "AssociateAddress", Effect::Idempotent, || {
                scope
                    .ec2
                    .associate_address()
                    .allocation_id(node.req("allocation"))
                    .instance_id(node.req("instance"))
                    .allow_reassociation(true)
                    .send()
            })
            .await?;
        Ok(out.association_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl Handler<Scope> for AssociationHandler {
    fn kind(&self) -> Kind {
        ADDRESS_ASSOCIATION
    }

    fn identity(&self) -> &'static [&'static str] {
        &["allocation"]
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["instance"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let id = self.associate(scope, node).await?;
        Ok(created(scope, node, &id).refs([node.req("allocation").to_owned()]))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[crate::engine::FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let id = self.associate(scope, node).await?;
        Ok(Some(
            created(scope, node, &id).refs([node.req("allocation").to_owned()]),
        ))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DisassociateAddress", Effect::Idempotent, || {
                scope
                    .ec2
                    .disassociate_address()
                    .association_id(&current.id)
                    .send()
            })
            .await
            .or_absent()
    }
}
