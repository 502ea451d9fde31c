//! The DB parameter group of the engine's family, so that parameters can be tuned without a
//! new instance.

use async_trait::async_trait;

use aws_sdk_rds::operation::describe_db_parameter_groups::DescribeDbParameterGroupsOutput;
use aws_sdk_rds::types::DbParameterGroup;

use super::{created, owned_listing, pages, remember, tags, DB_PARAMETER_GROUP};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::Scope;
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

pub struct ParameterGroupObserver;

#[async_trait]
impl Observer<Scope> for ParameterGroupObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[DB_PARAMETER_GROUP]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let pages = pages(
            scope,
            "rds",
            "DescribeDBParameterGroups",
            |marker| {
                scope
                    .rds
                    .describe_db_parameter_groups()
                    .set_marker(marker)
                    .send()
            },
            DescribeDbParameterGroupsOutput::marker,
        )
        .await?;
        let groups = pages
            .iter()
            .flat_map(|p| p.db_parameter_groups().iter().cloned())
            .collect();
        let owned = owned_listing(
            scope,
            selector,
            groups,
            DbParameterGroup::db_parameter_group_name,
            DbParameterGroup::db_parameter_group_arn,
        )
        .await?;
        Ok(owned
            .into_iter()
            .map(|(g, o)| {
                let name = g.db_parameter_group_name().unwrap_or_default();
                Observed::new(DB_PARAMETER_GROUP, o.stack, o.role, name)
                    .owner(o.owner)
                    .prop("name", name)
                    .prop("family", g.db_parameter_group_family().unwrap_or_default())
                    .prop("description", g.description().unwrap_or_default())
                    .prop("arn", g.db_parameter_group_arn().unwrap_or_default())
            })
            .collect())
    }
}

pub struct ParameterGroupHandler;

#[async_trait]
impl Handler<Scope> for ParameterGroupHandler {
    fn kind(&self) -> Kind {
        DB_PARAMETER_GROUP
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags = tags(scope, node, &[]);
        let out = scope
            .api
            .call("rds", "CreateDBParameterGroup", Effect::Create, || {
                scope
                    .rds
                    .create_db_parameter_group()
                    .db_parameter_group_name(node.req("name"))
                    .db_parameter_group_family(node.req("family"))
                    .description(node.req("description"))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let arn = out
            .db_parameter_group()
            .and_then(|g| g.db_parameter_group_arn());
        remember(scope, arn, &tags);
        Ok(created(scope, node, node.req("name")).prop("arn", arn.unwrap_or_default()))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call("rds", "DeleteDBParameterGroup", Effect::Idempotent, || {
                scope
                    .rds
                    .delete_db_parameter_group()
                    .db_parameter_group_name(&current.id)
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
