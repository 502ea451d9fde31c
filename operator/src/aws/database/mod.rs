//! The relational database on RDS: a subnet group over the private subnets, a parameter group
//! of the engine's family, and the instance, never publicly accessible, encrypted, reachable
//! only from the application's security group. The master password is generated and kept by
//! AWS in Secrets Manager (`ManageMasterUserPassword`): it passes through no spec, status,
//! event or log. RDS names are unique per account and region: each is derived from the
//! stack, its owner and the role, so that a create after a crash finds the resource by name.

mod instance;
mod parameter_group;
mod subnet_group;

use aws_sdk_rds::types::Tag;

use super::naming::{physical_name, RDS_MAX};
use super::tags::{ownership, read_each, Ownership, Tags};
use super::{created, pages, Scope, StackRef};
use crate::api::{DatabaseKind, Engine as DbEngine, RdsSpec, WebStackSpec};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::engine::{Engine, Kind, Node, NodeId, Resolved};

pub const DB_SUBNET_GROUP: Kind = Kind("DbSubnetGroup");
pub const DB_PARAMETER_GROUP: Kind = Kind("DbParameterGroup");
pub const DB_INSTANCE: Kind = Kind("DbInstance");

/// Every kind of this area, for the `DatabaseReady` condition.
pub const KINDS: &[Kind] = &[DB_SUBNET_GROUP, DB_PARAMETER_GROUP, DB_INSTANCE];

const TIER: &str = "database";
const ROLE: &str = "database";

/// The tag that records whether deleting the instance takes a final snapshot: the delete call
/// sees only what AWS reports, and the spec may be gone by then.
pub const FINAL_SNAPSHOT_TAG: &str = "webstack.io/final-snapshot";
/// The engine version as the spec asked for it (`16`), which AWS resolves to a minor (`16.4`).
pub const VERSION_TAG: &str = "webstack.io/engine-version";

/// Adds the database kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(subnet_group::SubnetGroupObserver)
        .observer(parameter_group::ParameterGroupObserver)
        .observer(instance::InstanceObserver)
        .handler(subnet_group::SubnetGroupHandler)
        .handler(parameter_group::ParameterGroupHandler)
        .handler(instance::InstanceHandler)
}

/// RDS's engine name and its parameter-group family for a spec's version (`16.4` ->
/// `postgres16`, `8.0.39` -> `mysql8.0`).
pub fn engine_and_family(rds: &RdsSpec) -> (&'static str, String) {
    match rds.engine {
        DbEngine::Postgres => {
            let major = rds.version.split('.').next().unwrap_or_default();
            ("postgres", format!("postgres{major}"))
        }
        DbEngine::Mysql => {
            let major: Vec<&str> = rds.version.split('.').take(2).collect();
            ("mysql", format!("mysql{}", major.join(".")))
        }
    }
}

/// The database's nodes, for a stack whose spec declares an RDS database. `subnets` are the
/// subnets it may use (the private ones, or the public ones of a stack without private
/// subnets: it is never publicly accessible either way); `security_group` admits the app.
pub fn desired(
    stack: &StackRef,
    spec: &WebStackSpec,
    subnets: Vec<NodeId>,
    security_group: NodeId,
) -> Vec<Node> {
    let Some(rds) = spec
        .database
        .as_ref()
        .filter(|d| d.kind == DatabaseKind::Rds)
        .and_then(|d| d.rds.as_ref())
    else {
        return Vec::new();
    };
    let (engine, family) = engine_and_family(rds);
    let name = physical_name(stack, ROLE, RDS_MAX);
    let subnets_name = physical_name(stack, &format!("{ROLE}-subnets"), RDS_MAX);
    let subnet_group = Node::new(DB_SUBNET_GROUP, TIER, ROLE, subnets_name.clone())
        .prop("name", subnets_name.as_str())
        .prop("subnets", subnets)
        .prop(
            "description",
            format!("Subnets of the database of {}", stack.id()),
        );
    // The family is part of the role: a new major version gets a new group, the instance
    // moves to it, and the old one is deleted once nothing uses it.
    let group_role = format!("{ROLE}-{family}");
    let group_name = physical_name(stack, &group_role, RDS_MAX);
    let parameter_group = Node::new(DB_PARAMETER_GROUP, TIER, group_role, group_name.clone())
        .prop("name", group_name.as_str())
        .prop("family", family.as_str())
        .prop(
            "description",
            format!("Parameters of the database of {}", stack.id()),
        );
    let instance = Node::new(DB_INSTANCE, TIER, ROLE, name.clone())
        .prop("identifier", name.as_str())
        .prop("engine", engine)
        .prop("version", rds.version.as_str())
        .prop("class", rds.instance_class.as_str())
        .prop("storageGib", i64::from(rds.allocated_storage_gib))
        .prop(
            "maxStorageGib",
            i64::from(rds.max_allocated_storage_gib.unwrap_or(0)),
        )
        .prop(
            "storageType",
            serde_json::to_value(rds.storage_type).unwrap_or_default(),
        )
        .prop("multiAz", rds.multi_az)
        .prop("backupRetentionDays", i64::from(rds.backup_retention_days))
        .prop("deletionProtection", rds.deletion_protection)
        .prop("finalSnapshot", rds.final_snapshot)
        .prop("databaseName", rds.database_name.as_str())
        .prop("masterUsername", rds.master_username.as_str())
        .prop("encrypted", true)
        .prop("publiclyAccessible", false)
        .prop("subnetGroup", subnet_group.id.clone())
        .prop("parameterGroup", parameter_group.id.clone())
        .prop("securityGroups", vec![security_group]);
    vec![subnet_group, parameter_group, instance]
}

/// The stack's tags for an RDS resource.
fn tags(scope: &Scope, node: &Resolved, extra: &[(&str, String)]) -> Vec<Tag> {
    scope
        .tags(node)
        .into_iter()
        .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn tag_value<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn owned(tags: &[(String, String)]) -> Option<Ownership> {
    ownership(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// RDS's tag reader for [`owned_listing`]: one `ListTagsForResource` per resource.
async fn read_tags(
    scope: &Scope,
    arns: Vec<String>,
) -> Result<std::collections::HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call("rds", "ListTagsForResource", Effect::Read, || {
                scope
                    .rds
                    .list_tags_for_resource()
                    .resource_name(&arn)
                    .send()
            })
            .await?;
        Ok(pairs(r.tag_list()))
    })
    .await
}

/// The resources of an RDS listing that belong to the stacks the selector admits.
async fn owned_listing<T>(
    scope: &Scope,
    selector: &crate::engine::Selector,
    items: Vec<T>,
    name: fn(&T) -> Option<&str>,
    arn: fn(&T) -> Option<&str>,
) -> Result<Vec<(T, Ownership)>, AwsError> {
    super::tags::owned_listing(scope, selector, items, name, arn, |arns| {
        read_tags(scope, arns)
    })
    .await
}

fn remember(scope: &Scope, arn: Option<&str>, tags: &[Tag]) {
    if let Some(arn) = arn {
        scope.api.tags.put(arn, pairs(tags));
    }
}

#[cfg(test)]
mod tests;
