//! The DB subnet group: the subnets the database may be placed in.

use async_trait::async_trait;

use aws_sdk_rds::operation::describe_db_subnet_groups::DescribeDbSubnetGroupsOutput;
use aws_sdk_rds::types::DbSubnetGroup;

use super::{created, owned_listing, pages, remember, tags, DB_SUBNET_GROUP};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{FieldChange, Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct SubnetGroupObserver;

#[async_trait]
impl Observer<Scope> for SubnetGroupObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[DB_SUBNET_GROUP]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let pages = pages(
            scope,
            "rds",
            "DescribeDBSubnetGroups",
            |marker| {
                scope
                    .rds
                    .describe_db_subnet_groups()
                    .set_marker(marker)
                    .send()
            },
            DescribeDbSubnetGroupsOutput::marker,
        )
        .await?;
        let groups = pages
            .iter()
            .flat_map(|p| p.db_subnet_groups().iter().cloned())
            .collect();
        let owned = owned_listing(
            scope,
            selector,
            groups,
            DbSubnetGroup::db_subnet_group_name,
            DbSubnetGroup::db_subnet_group_arn,
        )
        .await?;
        Ok(owned
            .into_iter()
            .map(|(g, o)| {
                let name = g.db_subnet_group_name().unwrap_or_default();
                let subnets: Vec<&str> = g
                    .subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier())
                    .collect();
                Observed::new(DB_SUBNET_GROUP, o.stack, o.role, name)
                    .owner(o.owner)
                    .prop("name", name)
                    .prop("subnets", serde_json::json!(subnets))
                    .prop(
                        "description",
                        g.db_subnet_group_description().unwrap_or_default(),
                    )
                    .prop("arn", g.db_subnet_group_arn().unwrap_or_default())
                    .refs(subnets.iter().map(|s| (*s).to_owned()))
            })
            .collect())
    }
}

pub struct SubnetGroupHandler;

#[async_trait]
impl Handler<Scope> for SubnetGroupHandler {
    fn kind(&self) -> Kind {
        DB_SUBNET_GROUP
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["subnets", "description"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags = tags(scope, node, &[]);
        let out = scope
            .api
            .call("rds", "CreateDBSubnetGroup", Effect::Create, || {
                scope
                    .rds
                    .create_db_subnet_group()
                    .db_subnet_group_name(node.req("name"))
                    .db_subnet_group_description(node.req("description"))
                    .set_subnet_ids(Some(node.strs("subnets")))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let arn = out.db_subnet_group().and_then(|g| g.db_subnet_group_arn());
        remember(scope, arn, &tags);
        Ok(created(scope, node, node.req("name"))
            .prop("arn", arn.unwrap_or_default())
            .refs(node.strs("subnets")))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        scope
            .api
            .call("rds", "ModifyDBSubnetGroup", Effect::Idempotent, || {
                scope
                    .rds
                    .modify_db_subnet_group()
                    .db_subnet_group_name(node.req("name"))
                    .db_subnet_group_description(node.req("description"))
                    .set_subnet_ids(Some(node.strs("subnets")))
                    .send()
            })
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("rds", "DeleteDBSubnetGroup", Effect::Idempotent, || {
                scope
                    .rds
                    .delete_db_subnet_group()
                    .db_subnet_group_name(&current.id)
                    .send()
            })
            .await?;
        scope
            .api
            .tags
            .forget(current.str("arn").unwrap_or_default());
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        super::instance::release_rds(scope, resources).await
    }
}
