//! Route tables, their routes and their subnet associations. Routes and associations carry
//! no tags of their own: they belong to the stack through their table, and are matched by what
//! they are (a table and a destination; a subnet).

use async_trait::async_trait;
use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
use aws_sdk_ec2::types::{ResourceType, RouteOrigin};

use super::{
    created, owner, owner_filter, release_ec2, tag_spec, ROUTE, ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{FieldChange, Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct RouteTableObserver;

#[async_trait]
impl Observer<Scope> for RouteTableObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[ROUTE_TABLE, ROUTE, ROUTE_TABLE_ASSOCIATION]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let mut out = Vec::new();
        let found = crate::aws::pages(
            scope,
            "ec2",
            "DescribeRouteTables",
            |token| {
                scope
                    .ec2
                    .describe_route_tables()
                    .filters(owner_filter(selector))
                    .set_next_token(token)
                    .send()
            },
            DescribeRouteTablesOutput::next_token,
        )
        .await?;
        for page in found {
            for t in page.route_tables() {
                let Some((stack, role, uid)) = owner(t.tags()) else {
                    continue;
                };
                let table = t.route_table_id().unwrap_or_default();
                let vpc = t.vpc_id().unwrap_or_default();
                out.push(
                    Observed::new(ROUTE_TABLE, stack.clone(), role.clone(), table)
                        .owner(uid.clone())
                        .prop("vpc", vpc)
                        .refs([vpc.to_owned()]),
                );
                for r in t.routes() {
                    // The local route comes with the table; gateway endpoints manage their own.
                    let Some(destination) = r.destination_cidr_block() else {
                        continue;
                    };
                    if r.origin() == Some(&RouteOrigin::CreateRouteTable)
                        || r.gateway_id() == Some("local")
                    {
                        continue;
                    }
                    let target = r.nat_gateway_id().or(r.gateway_id()).unwrap_or_default();
                    if target.starts_with("vpce-") {
                        continue;
                    }
                    out.push(
                        Observed::new(
                            ROUTE,
                            stack.clone(),
                            format!("{role}-{destination}"),
                            format!("{table}|{destination}"),
                        )
                        .owner(uid.clone())
                        .prop("routeTable", table)
                        .prop("destination", destination)
                        .prop("target", target)
                        .refs([table.to_owned(), target.to_owned()]),
                    );
                }
                for a in t.associations() {
                    let (Some(subnet), Some(id)) = (a.subnet_id(), a.route_table_association_id())
                    else {
                        continue;
                    };
                    if a.main() == Some(true) {
                        continue;
                    }
                    out.push(
                        Observed::new(
                            ROUTE_TABLE_ASSOCIATION,
                            stack.clone(),
                            format!("{role}-{subnet}"),
                            id,
                        )
                        .owner(uid.clone())
                        .prop("routeTable", table)
                        .prop("subnet", subnet)
                        .refs([table.to_owned(), subnet.to_owned()]),
                    );
                }
            }
        }
        Ok(out)
    }
}

pub struct RouteTableHandler;

#[async_trait]
impl Handler<Scope> for RouteTableHandler {
    fn kind(&self) -> Kind {
        ROUTE_TABLE
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let token = scope.token(node, "");
        let out = scope
            .api
            .call("ec2", "CreateRouteTable", Effect::Idempotent, || {
                scope
                    .ec2
                    .create_route_table()
                    .vpc_id(node.req("vpc"))
                    .client_token(&token)
                    .tag_specifications(tag_spec(scope, ResourceType::RouteTable, node))
                    .send()
            })
            .await?;
        let id = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap_or_default();
        Ok(created(scope, node, id).refs([node.req("vpc").to_owned()]))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DeleteRouteTable", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_route_table()
                    .route_table_id(&current.id)
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_ec2(scope, resources).await
    }
}

pub struct RouteHandler;

/// Sets a route's target: NAT gateways and internet gateways go in different fields.
fn is_nat(target: &str) -> bool {
    target.starts_with("nat-")
}

#[async_trait]
impl Handler<Scope> for RouteHandler {
    fn kind(&self) -> Kind {
        ROUTE
    }

    fn identity(&self) -> &'static [&'static str] {
        &["routeTable", "destination"]
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["target"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let (table, destination, target) = (
            node.req("routeTable"),
            node.req("destination"),
            node.req("target"),
        );
        let result = scope
            .api
            .call("ec2", "CreateRoute", Effect::Idempotent, || {
                let req = scope
                    .ec2
                    .create_route()
                    .route_table_id(table)
                    .destination_cidr_block(destination);
                if is_nat(target) {
                    req.nat_gateway_id(target).send()
                } else {
                    req.gateway_id(target).send()
                }
            })
            .await;
        match result {
            // Created by an attempt whose answer was lost: make sure it points the right way.
            Err(e) if e.code == "RouteAlreadyExists" => {
                self.update(scope, node, &created(scope, node, ""), &[])
                    .await?;
            }
            other => {
                other?;
            }
        }
        Ok(created(scope, node, &format!("{table}|{destination}"))
            .refs([table.to_owned(), target.to_owned()]))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let (table, destination, target) = (
            node.req("routeTable"),
            node.req("destination"),
            node.req("target"),
        );
        scope
            .api
            .call("ec2", "ReplaceRoute", Effect::Idempotent, || {
                let req = scope
                    .ec2
                    .replace_route()
                    .route_table_id(table)
                    .destination_cidr_block(destination);
                if is_nat(target) {
                    req.nat_gateway_id(target).send()
                } else {
                    req.gateway_id(target).send()
                }
            })
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let (table, destination) = (
            current.str("routeTable").unwrap_or_default(),
            current.str("destination").unwrap_or_default(),
        );
        scope
            .api
            .call("ec2", "DeleteRoute", Effect::Idempotent, || {
                scope
                    .ec2
                    .delete_route()
                    .route_table_id(table)
                    .destination_cidr_block(destination)
                    .send()
            })
            .await
            .map(|_| ())
    }
}

pub struct AssociationHandler;

#[async_trait]
impl Handler<Scope> for AssociationHandler {
    fn kind(&self) -> Kind {
        ROUTE_TABLE_ASSOCIATION
    }

    fn identity(&self) -> &'static [&'static str] {
        &["subnet"]
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["routeTable"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let (table, subnet) = (node.req("routeTable"), node.req("subnet"));
        let out = scope
            .api
            .call("ec2", "AssociateRouteTable", Effect::Create, || {
                scope
                    .ec2
                    .associate_route_table()
                    .route_table_id(table)
                    .subnet_id(subnet)
                    .send()
            })
            .await?;
        Ok(
            created(scope, node, out.association_id().unwrap_or_default())
                .refs([table.to_owned(), subnet.to_owned()]),
        )
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        scope
            .api
            .call(
                "ec2",
                "ReplaceRouteTableAssociation",
                Effect::Idempotent,
                || {
                    scope
                        .ec2
                        .replace_route_table_association()
                        .association_id(&current.id)
                        .route_table_id(node.req("routeTable"))
                        .send()
                },
            )
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("ec2", "DisassociateRouteTable", Effect::Idempotent, || {
                scope
                    .ec2
                    .disassociate_route_table()
                    .association_id(&current.id)
                    .send()
            })
            .await
            .map(|_| ())
    }
}
