//! The RDS instance. It settles for minutes (`creating` -> `available`, `modifying`,
//! `deleting`): the engine records it pending and goes on. It holds data: a graph change never
//! deletes it, only deleting the stack does, with a final snapshot unless the spec opts out,
//! and never while deletion protection is on.

use async_trait::async_trait;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::types::{DbInstance, Tag};

use super::{
    created, owned, pages, pairs, tag_value, tags, DB_INSTANCE, FINAL_SNAPSHOT_TAG, VERSION_TAG,
};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass};
use crate::aws::{Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{
    FieldChange, Handler, Kind, Observed, Observer, Readiness, Resolved, Selector,
};

fn readiness(status: &str) -> Readiness {
    match status {
        "available" | "backing-up" | "storage-optimization" | "maintenance" => Readiness::Ready,
        "deleting" => Readiness::Deleting(status.to_owned()),
        "deleted" => Readiness::Gone(status.to_owned()),
        other => Readiness::Pending(other.to_owned()),
    }
}

/// An instance as AWS reports it, with the attributes others refer to.
fn observed(i: &DbInstance) -> Option<Observed> {
    let tags = pairs(i.tag_list());
    let o = owned(&tags)?;
    let id = i.db_instance_identifier().unwrap_or_default();
    let version = tag_value(&tags, VERSION_TAG)
        .or(i.engine_version())
        .unwrap_or_default();
    let final_snapshot = tag_value(&tags, FINAL_SNAPSHOT_TAG) != Some("false");
    let subnet_group = i
        .db_subnet_group()
        .and_then(|g| g.db_subnet_group_name())
        .unwrap_or_default();
    let parameter_group = i
        .db_parameter_groups()
        .first()
        .and_then(|g| g.db_parameter_group_name())
        .unwrap_or_default();
    let groups: Vec<&str> = i
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    let endpoint = i.endpoint();
    Some(
        Observed::new(DB_INSTANCE, o.stack, o.role, id)
            .owner(o.owner)
            .prop("identifier", id)
            .prop("engine", i.engine().unwrap_or_default())
            .prop("version", version)
            .prop("class", i.db_instance_class().unwrap_or_default())
            .prop("storageGib", i64::from(i.allocated_storage().unwrap_or(0)))
            .prop(
                "maxStorageGib",
                i64::from(i.max_allocated_storage().unwrap_or(0)),
            )
            .prop("storageType", i.storage_type().unwrap_or_default())
            .prop("multiAz", i.multi_az().unwrap_or(false))
            .prop(
                "backupRetentionDays",
                i64::from(i.backup_retention_period().unwrap_or(0)),
            )
            .prop(
                "deletionProtection",
                i.deletion_protection().unwrap_or(false),
            )
            .prop("finalSnapshot", final_snapshot)
            .prop("databaseName", i.db_name().unwrap_or_default())
            .prop("masterUsername", i.master_username().unwrap_or_default())
            .prop("encrypted", i.storage_encrypted().unwrap_or(false))
            .prop("kmsKey", i.kms_key_id().unwrap_or_default())
            .prop(
                "publiclyAccessible",
                i.publicly_accessible().unwrap_or(false),
            )
            .prop("subnetGroup", subnet_group)
            .prop("parameterGroup", parameter_group)
            .prop("securityGroups", serde_json::json!(groups))
            .prop("arn", i.db_instance_arn().unwrap_or_default())
            .prop(
                "endpoint",
                endpoint.and_then(|e| e.address()).unwrap_or_default(),
            )
            .prop(
                "port",
                i64::from(endpoint.and_then(|e| e.port()).unwrap_or(0)),
            )
            .prop(
                "secretArn",
                i.master_user_secret()
                    .and_then(|s| s.secret_arn())
                    .unwrap_or_default(),
            )
            .refs(
                // The stack's key too: the final snapshot needs it until the instance is gone.
                [subnet_group, parameter_group]
                    .into_iter()
                    .chain(groups.iter().copied())
                    .chain(i.kms_key_id())
                    .map(str::to_owned),
            )
            .readiness(readiness(i.db_instance_status().unwrap_or_default())),
    )
}

async fn describe(scope: &Scope, identifier: Option<&str>) -> Result<Vec<DbInstance>, AwsError> {
    let pages = pages(
        scope,
        "rds",
        "DescribeDBInstances",
        |marker| {
            scope
                .rds
                .describe_db_instances()
                .set_db_instance_identifier(identifier.map(str::to_owned))
                .set_marker(marker)
                .send()
        },
        DescribeDbInstancesOutput::marker,
    )
    .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.db_instances().iter().cloned())
        .collect())
}

pub struct InstanceObserver;

#[async_trait]
impl Observer<Scope> for InstanceObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[DB_INSTANCE]
    }

    /// One listing for every stack: RDS reports each instance's tags with it.
    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        Ok(describe(scope, None)
            .await?
            .iter()
            .filter_map(observed)
            .filter(|o| selector.admits(&o.stack))
            .collect())
    }
}

pub struct InstanceHandler;

fn i32_of(node: &Resolved, key: &str) -> i32 {
    node.i64(key)
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0)
}

fn bookkeeping_tags(node: &Resolved) -> Vec<(&'static str, String)> {
    vec![
        (FINAL_SNAPSHOT_TAG, node.bool("finalSnapshot").to_string()),
        (VERSION_TAG, node.req("version").to_owned()),
    ]
}

#[async_trait]
impl Handler<Scope> for InstanceHandler {
    fn kind(&self) -> Kind {
        DB_INSTANCE
    }

    fn mutable(&self) -> &'static [&'static str] {
        &[
            "version",
            "class",
            "storageGib",
            "maxStorageGib",
            "storageType",
            "multiAz",
            "backupRetentionDays",
            "deletionProtection",
            "finalSnapshot",
            "publiclyAccessible",
            "parameterGroup",
            "securityGroups",
        ]
    }

    fn settles(&self) -> bool {
        true
    }

    fn holds_data(&self) -> bool {
        true
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags = tags(scope, node, &bookkeeping_tags(node));
        let max_storage = i32_of(node, "maxStorageGib");
        let out = scope
            .api
            .call("rds", "CreateDBInstance", Effect::Create, || {
                scope
                    .rds
                    .create_db_instance()
                    .db_instance_identifier(node.req("identifier"))
                    .engine(node.req("engine"))
                    .engine_version(node.req("version"))
                    .db_instance_class(node.req("class"))
                    .allocated_storage(i32_of(node, "storageGib"))
                    .set_max_allocated_storage((max_storage > 0).then_some(max_storage))
                    .storage_type(node.req("storageType"))
                    .multi_az(node.bool("multiAz"))
                    .backup_retention_period(i32_of(node, "backupRetentionDays"))
                    .deletion_protection(node.bool("deletionProtection"))
                    .db_name(node.req("databaseName"))
                    .master_username(node.req("masterUsername"))
                    .manage_master_user_password(true)
                    .storage_encrypted(true)
                    .set_kms_key_id(node.str("kmsKey").map(str::to_owned))
                    .publicly_accessible(false)
                    .copy_tags_to_snapshot(true)
                    .db_subnet_group_name(node.req("subnetGroup"))
                    .db_parameter_group_name(node.req("parameterGroup"))
                    .set_vpc_security_group_ids(Some(node.strs("securityGroups")))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        match out.db_instance().and_then(observed) {
            Some(o) => Ok(o),
            None => Ok(created(scope, node, node.req("identifier"))
                .readiness(Readiness::Pending("creating".into()))),
        }
    }

    /// Class, storage and the rest change in place, applied at once.
    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let changed = |f: &str| changes.iter().any(|c| c.field == f);
        // Only the final-snapshot choice lives in a tag alone; everything else is the instance's.
        let instance_fields = changes.iter().any(|c| c.field != "finalSnapshot");
        if changed("finalSnapshot") || changed("version") {
            let tags: Vec<Tag> = bookkeeping_tags(node)
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            scope
                .api
                .call("rds", "AddTagsToResource", Effect::Idempotent, || {
                    scope
                        .rds
                        .add_tags_to_resource()
                        .resource_name(current.str("arn").unwrap_or_default())
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await?;
        }
        if !instance_fields {
            return Ok(None);
        }
        let max_storage = i32_of(node, "maxStorageGib");
        let out = scope
            .api
            .call("rds", "ModifyDBInstance", Effect::Idempotent, || {
                let req = scope
                    .rds
                    .modify_db_instance()
                    .db_instance_identifier(&current.id)
                    .apply_immediately(true)
                    .db_instance_class(node.req("class"))
                    .allocated_storage(i32_of(node, "storageGib"))
                    .set_max_allocated_storage((max_storage > 0).then_some(max_storage))
                    .storage_type(node.req("storageType"))
                    .multi_az(node.bool("multiAz"))
                    .backup_retention_period(i32_of(node, "backupRetentionDays"))
                    .deletion_protection(node.bool("deletionProtection"))
                    .publicly_accessible(node.bool("publiclyAccessible"))
                    .db_parameter_group_name(node.req("parameterGroup"))
                    .set_vpc_security_group_ids(Some(node.strs("securityGroups")));
                if changed("version") {
                    req.engine_version(node.req("version"))
                        .allow_major_version_upgrade(true)
                        .send()
                } else {
                    req.send()
                }
            })
            .await?;
        // The answer reports the instance `modifying`: the engine waits for it to settle.
        Ok(out.db_instance().and_then(observed).map(|mut o| {
            for c in changes {
                o.props.insert(c.field.clone(), c.after.clone());
            }
            o
        }))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        if current.props.get("deletionProtection") == Some(&serde_json::json!(true)) {
            return Err(AwsError::new(
                "rds",
                "DeleteDBInstance",
                "DeletionProtected",
                format!(
                    "{} has deletion protection: set spec.database.rds.deletionProtection to false and apply before deleting the stack (or set deletionPolicy: Retain to keep it)",
                    current.id
                ),
                ErrorClass::Permanent,
            ));
        }
        let final_snapshot = current.props.get("finalSnapshot") != Some(&serde_json::json!(false));
        let snapshot = format!("{}-final", current.id);
        let result = scope
            .api
            .call("rds", "DeleteDBInstance", Effect::Idempotent, || {
                let req = scope
                    .rds
                    .delete_db_instance()
                    .db_instance_identifier(&current.id)
                    .delete_automated_backups(false);
                if final_snapshot {
                    req.skip_final_snapshot(false)
                        .final_db_snapshot_identifier(&snapshot)
                        .send()
                } else {
                    req.skip_final_snapshot(true).send()
                }
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            // A deletion accepted by an earlier attempt whose answer was lost.
            Err(e)
                if e.code == "InvalidDBInstanceState"
                    && current_is_deleting(scope, &current.id).await =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn refresh(
        &self,
        scope: &Scope,
        current: &Observed,
    ) -> Result<Option<Observed>, AwsError> {
        match describe(scope, Some(&current.id)).await {
            Ok(found) => Ok(found.iter().find_map(observed)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_rds(scope, resources).await
    }
}

async fn current_is_deleting(scope: &Scope, id: &str) -> bool {
    describe(scope, Some(id)).await.is_ok_and(|found| {
        found
            .iter()
            .all(|i| i.db_instance_status() == Some("deleting"))
    })
}

/// Removes the stack's ownership tags from RDS resources that stay.
pub(super) async fn release_rds(scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
    for o in resources {
        let Some(arn) = o.str("arn").filter(|a| !a.is_empty()) else {
            continue;
        };
        scope
            .api
            .call("rds", "RemoveTagsFromResource", Effect::Idempotent, || {
                scope
                    .rds
                    .remove_tags_from_resource()
                    .resource_name(arn)
                    .tag_keys(STACK_TAG)
                    .tag_keys(COMPONENT_TAG)
                    .tag_keys(OWNER_TAG)
                    .send()
            })
            .await?;
        scope.api.tags.forget(arn);
    }
    Ok(())
}
