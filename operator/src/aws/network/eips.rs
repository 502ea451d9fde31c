//! Elastic IPs for the NAT gateways.

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};

use super::{created, owner, owner_filter, release_ec2, tag_spec, ELASTIC_IP};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

/// Elastic IPs are found with DescribeAddresses and a tag filter: the tagging API does not
/// list them.
pub struct AddressObserver;

#[async_trait]
impl Observer<Scope> for AddressObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[ELASTIC_IP]
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
        Ok(out
            .addresses()
            .iter()
            .filter_map(|a| {
                let (stack, role, uid) = owner(a.tags())?;
                Some(
                    Observed::new(
                        ELASTIC_IP,
                        stack,
                        role,
                        a.allocation_id().unwrap_or_default(),
                    )
                    .owner(uid.clone())
                    .prop("publicIp", a.public_ip().unwrap_or_default())
                    .prop("association", a.association_id().unwrap_or_default()),
                )
            })
            .collect())
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
