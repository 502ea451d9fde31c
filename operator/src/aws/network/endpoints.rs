//! VPC endpoints: the S3 gateway endpoint on the route tables, interface endpoints in the
//! subnets with their security group.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_vpc_endpoints::DescribeVpcEndpointsOutput;
use aws_sdk_ec2::types::{ResourceType, State, VpcEndpoint, VpcEndpointType};

use super::{created, json_strs, owner, owner_filter, release_ec2, tag_spec, VPC_ENDPOINT};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{
    FieldChange, Handler, Kind, Observed, Observer, Readiness, Resolved, Selector,
};

fn readiness(state: Option<&State>) -> Readiness {
    match state.map(|s| s.as_str().to_ascii_lowercase()) {
        Some(s) if s == "available" => Readiness::Ready,
        Some(s) if s == "deleting" => Readiness::Deleting(s),
        Some(s) if s == "deleted" || s == "failed" || s == "rejected" || s == "expired" => {
            Readiness::Gone(s)
        }
        Some(s) => Readiness::Pending(s),
        None => Readiness::Pending("pending".into()),
    }
}

fn observed(e: &VpcEndpoint, stack: String, role: String) -> Observed {
    let vpc = e.vpc_id().unwrap_or_default();
    let kind = match e.vpc_endpoint_type() {
        Some(VpcEndpointType::Gateway) => "Gateway",
        _ => "Interface",
    };
    let groups: Vec<&str> = e.groups().iter().filter_map(|g| g.group_id()).collect();
    let mut o = Observed::new(
        VPC_ENDPOINT,
        stack,
        role,
        e.vpc_endpoint_id().unwrap_or_default(),
    )
    .prop("vpc", vpc)
    .prop("service", e.service_name().unwrap_or_default())
    .prop("type", kind)
    .refs([vpc.to_owned()])
    .refs(e.route_table_ids().iter().cloned())
    .refs(e.subnet_ids().iter().cloned())
    .refs(groups.iter().map(|g| g.to_string()))
    .readiness(readiness(e.state()));
    if kind == "Gateway" {
        o = o.prop(
            "routeTables",
            json_strs(e.route_table_ids().iter().map(String::as_str)),
        );
    } else {
        o = o
            .prop(
                "subnets",
                json_strs(e.subnet_ids().iter().map(String::as_str)),
            )
            .prop("securityGroups", json_strs(groups))
            .prop("privateDns", e.private_dns_enabled().unwrap_or(false));
    }
    o
}

pub struct EndpointObserver;

#[async_trait]
impl Observer<Scope> for EndpointObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[VPC_ENDPOINT]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeVpcEndpoints",
            |token| {
                scope
                    .ec2
                    .describe_vpc_endpoints()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeVpcEndpointsOutput::next_token,
        )
        .await?;
        for page in found {
            for e in page.vpc_endpoints() {
                let Some((stack, role, uid)) = owner(e.tags()) else {
                    continue;
                };
                out.push(observed(e, stack, role).owner(uid));
            }
        }
        Ok(out)
    }
}

pub struct EndpointHandler;

/// `(added, removed)` between two id lists.
fn delta(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let b: BTreeSet<&String> = before.iter().collect();
    let a: BTreeSet<&String> = after.iter().collect();
    (
        a.difference(&b).map(|s| s.to_string()).collect(),
        b.difference(&a).map(|s| s.to_string()).collect(),
    )
}

fn strs(o: &Observed, key: &str) -> Vec<String> {
    o.props
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Handler<Scope> for EndpointHandler {
    fn kind(&self) -> Kind {
        VPC_ENDPOINT
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["routeTables", "subnets", "securityGroups", "privateDns"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let token = scope.token(node, "");
        let gateway = node.req("type") == "Gateway";
        let out = scope
            .api
            .call("ec2", "CreateVpcEndpoint", Effect::Idempotent, || {
                let req = scope
                    .ec2
                    .create_vpc_endpoint()
                    .vpc_id(node.req("vpc"))
                    .service_name(node.req("service"))
                    .client_token(&token)
                    .tag_specifications(tag_spec(scope, ResourceType::VpcEndpoint, node));
                if gateway {
                    req.vpc_endpoint_type(VpcEndpointType::Gateway)
                        .set_route_table_ids(Some(node.strs("routeTables")))
                        .send()
                } else {
                    req.vpc_endpoint_type(VpcEndpointType::Interface)
                        .set_subnet_ids(Some(node.strs("subnets")))
                        .set_security_group_ids(Some(node.strs("securityGroups")))
                        .private_dns_enabled(node.bool("privateDns"))
                        .send()
                }
            })
            .await?;
        let e = out
            .vpc_endpoint()
            .cloned()
            .unwrap_or_else(|| VpcEndpoint::builder().build());
        let mut o = created(scope, node, e.vpc_endpoint_id().unwrap_or_default());
        o.readiness = readiness(e.state());
        o.refs = observed(&e, String::new(), String::new()).refs;
        Ok(o)
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let (add_rt, remove_rt) = delta(&strs(current, "routeTables"), &node.strs("routeTables"));
        let (add_sn, remove_sn) = delta(&strs(current, "subnets"), &node.strs("subnets"));
        let (add_sg, remove_sg) = delta(
            &strs(current, "securityGroups"),
            &node.strs("securityGroups"),
        );
        let private_dns = (node.str("type") == Some("Interface")).then(|| node.bool("privateDns"));
        let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
        scope
            .api
            .call("ec2", "ModifyVpcEndpoint", Effect::Idempotent, || {
                scope
                    .ec2
                    .modify_vpc_endpoint()
                    .vpc_endpoint_id(&current.id)
                    .set_add_route_table_ids(some(add_rt.clone()))
                    .set_remove_route_table_ids(some(remove_rt.clone()))
                    .set_add_subnet_ids(some(add_sn.clone()))
                    .set_remove_subnet_ids(some(remove_sn.clone()))
                    .set_add_security_group_ids(some(add_sg.clone()))
                    .set_remove_security_group_ids(some(remove_sg.clone()))
                    .set_private_dns_enabled(private_dns)
                    .send()
            })
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let out = scope
            .api
            .call("ec2", "DeleteVpcEndpoints", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_vpc_endpoints()
                    .vpc_endpoint_ids(&current.id)
                    .send()
            })
            .await?;
        // This call reports failures per endpoint in its answer instead of as an error.
        if let Some(item) = out.unsuccessful().first() {
            let err = item.error();
            let code = err.and_then(|e| e.code()).unwrap_or("Unsuccessful");
            if !code.ends_with("NotFound") {
                return Err(AwsError::new(
                    "ec2",
                    "DeleteVpcEndpoints",
                    code,
                    err.and_then(|e| e.message()).unwrap_or_default(),
                    crate::aws::error::classify(code, None),
                ));
            }
        }
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
        let out = scope
            .api
            .call("ec2", "DescribeVpcEndpoints", Effect::Read, || {
                scope
                    .ec2
                    .describe_vpc_endpoints()
                    .vpc_endpoint_ids(&current.id)
                    .send()
            })
            .await;
        match out {
            Ok(out) => Ok(out.vpc_endpoints().first().map(|e| {
                observed(e, current.stack.clone(), current.role.clone())
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
    fn delta_splits_additions_and_removals() {
        let (add, remove) = delta(&["a".into(), "b".into()], &["b".into(), "c".into()]);
        assert_eq!(add, vec!["c".to_string()]);
        assert_eq!(remove, vec!["a".to_string()]);
    }
}
