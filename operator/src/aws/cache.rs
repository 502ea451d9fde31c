//! The cache on ElastiCache: a subnet group over the private subnets and a Valkey or Redis
//! replication group, encrypted at rest and in transit, reachable only from the application's
//! security groups. Names are unique per account and region, derived from the stack, its
//! owner and the role; listings carry no tags, which are read once per resource and cached.
//! The group holds data: it goes only with the stack.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_elasticache::operation::describe_cache_subnet_groups::DescribeCacheSubnetGroupsOutput;
use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsOutput;
use aws_sdk_elasticache::types::{CacheSubnetGroup, ReplicationGroup, Tag};
use serde_json::json;

use super::client::Effect;
use super::error::{AwsError, OrAbsent};
use super::naming::{physical_name, ELASTICACHE_MAX};
use super::tags::{
    arn_of, claim_taken, owned_listing, read_each, release_each, Ownership, Tags, DIGEST_TAG,
};
use super::{created, pages, Scope, StackRef};
use crate::api::{CacheEngine, WebStackSpec};
use crate::engine::{
    digest, Engine, FieldChange, Handler, Kind, Node, NodeId, Observed, Observer, Prop, Readiness,
    Resolved, Selector,
};

pub const CACHE_SUBNET_GROUP: Kind = Kind("CacheSubnetGroup");
pub const REPLICATION_GROUP: Kind = Kind("ReplicationGroup");

/// Every kind of this area, for the `CacheReady` condition.
pub const KINDS: &[Kind] = &[CACHE_SUBNET_GROUP, REPLICATION_GROUP];

const TIER: &str = "cache";
const ROLE: &str = "cache";
const SERVICE: &str = "elasticache";

/// Adds the cache kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(CacheObserver)
        .handler(SubnetGroupHandler)
        .handler(GroupHandler)
}

/// The replication group's node id.
pub fn group_id() -> NodeId {
    NodeId::new(REPLICATION_GROUP, ROLE)
}

/// The cache's nodes, in `subnets`, admitting `security_group`.
pub fn desired(
    stack: &StackRef,
    spec: &WebStackSpec,
    subnets: Vec<NodeId>,
    security_group: NodeId,
) -> Vec<Node> {
    let Some(cache) = &spec.cache else {
        return Vec::new();
    };
    let subnets_name = physical_name(stack, "cache-subnets", 255);
    let group = Node::new(CACHE_SUBNET_GROUP, TIER, ROLE, subnets_name.clone())
        .prop("name", subnets_name.as_str())
        .prop("subnets", subnets)
        .prop(
            "description",
            format!("Subnets of the cache of {}", stack.id()),
        );
    let id = physical_name(stack, ROLE, ELASTICACHE_MAX);
    let engine = match cache.engine {
        CacheEngine::Valkey => "valkey",
        CacheEngine::Redis => "redis",
    };
    let replication = Node::new(REPLICATION_GROUP, TIER, ROLE, id.clone())
        .prop("id", id.as_str())
        .prop("engine", engine)
        .prop("nodeType", cache.node_type.as_str())
        .prop("nodes", i64::from(cache.replicas) + 1)
        .prop("multiAz", cache.multi_az)
        .prop(
            "snapshotRetentionDays",
            i64::from(cache.snapshot_retention_days),
        )
        // Where the group lives: not in its listing, so compared by the digest recorded in
        // its tags at creation.
        .prop(
            "placement",
            std::collections::BTreeMap::from([
                ("subnetGroup".to_owned(), Prop::Ref(group.id.clone())),
                (
                    "securityGroups".to_owned(),
                    Prop::Refs(vec![security_group]),
                ),
            ]),
        );
    vec![group, replication]
}

fn stack_tags(scope: &Scope, node: &Resolved) -> Vec<Tag> {
    scope
        .tags(node)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// ElastiCache's tag reader: one `ListTagsForResource` per resource never seen before.
async fn read_tags(scope: &Scope, arns: Vec<String>) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call(SERVICE, "ListTagsForResource", Effect::Read, || {
                scope
                    .elasticache
                    .list_tags_for_resource()
                    .resource_name(&arn)
                    .send()
            })
            .await?;
        let tags = r
            .tag_list()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect();
        Ok(tags)
    })
    .await
}

/// The placement digest recorded in a group's tags.
fn recorded(scope: &Scope, arn: &str) -> Option<String> {
    scope
        .api
        .tags
        .get(arn)?
        .into_iter()
        .find(|(k, _)| k == DIGEST_TAG)
        .map(|(_, v)| v)
}

fn placement(node: &Resolved) -> (String, Vec<String>) {
    let p = &node.props["placement"];
    (
        p["subnetGroup"].as_str().unwrap_or_default().to_owned(),
        p["securityGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

fn readiness(status: &str) -> Readiness {
    match status {
        "available" => Readiness::Ready,
        "deleting" => Readiness::Deleting(status.to_owned()),
        "deleted" | "create-failed" => Readiness::Gone(status.to_owned()),
        other => Readiness::Pending(other.to_owned()),
    }
}

/// The node that takes writes: the one CloudWatch's per-node metrics of the primary name.
fn primary_cluster(g: &ReplicationGroup) -> &str {
    g.node_groups()
        .iter()
        .flat_map(|n| n.node_group_members())
        .find(|m| m.current_role() == Some("primary"))
        .and_then(|m| m.cache_cluster_id())
        .or_else(|| g.member_clusters().first().map(String::as_str))
        .unwrap_or_default()
}

fn observed_group(g: &ReplicationGroup, o: Ownership, placement: Option<String>) -> Observed {
    let id = g.replication_group_id().unwrap_or_default();
    let endpoint = g.node_groups().first().and_then(|n| n.primary_endpoint());
    Observed::new(REPLICATION_GROUP, o.stack, o.role, id)
        .owner(o.owner)
        .prop("id", id)
        .prop("engine", g.engine().unwrap_or_default())
        .prop("nodeType", g.cache_node_type().unwrap_or_default())
        .prop("nodes", g.member_clusters().len() as i64)
        .prop("primaryCluster", primary_cluster(g))
        .prop(
            "multiAz",
            g.multi_az().is_some_and(|m| m.as_str() == "enabled"),
        )
        .prop(
            "snapshotRetentionDays",
            i64::from(g.snapshot_retention_limit().unwrap_or(0)),
        )
        .prop("arn", g.arn().unwrap_or_default())
        .prop("kmsKey", g.kms_key_id().unwrap_or_default())
        // Deleted before the key it is encrypted with.
        .refs(g.kms_key_id().map(str::to_owned))
        .prop("placement", placement.unwrap_or_default())
        .prop(
            "endpoint",
            endpoint.and_then(|e| e.address()).unwrap_or_default(),
        )
        .prop(
            "port",
            i64::from(endpoint.and_then(|e| e.port()).unwrap_or(0)),
        )
        .readiness(readiness(g.status().unwrap_or_default()))
}

/// The cache's subnet and replication groups of the stacks the selector admits. A group's
/// subnet group and security groups are not in its listing: they are the ones the stack
/// created it with, recorded by their names in the node.
pub struct CacheObserver;

#[async_trait]
impl Observer<Scope> for CacheObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[CACHE_SUBNET_GROUP, REPLICATION_GROUP]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let subnet_groups: Vec<CacheSubnetGroup> = pages(
            scope,
            SERVICE,
            "DescribeCacheSubnetGroups",
            |marker| {
                scope
                    .elasticache
                    .describe_cache_subnet_groups()
                    .set_marker(marker)
                    .send()
            },
            DescribeCacheSubnetGroupsOutput::marker,
        )
        .await?
        .iter()
        .flat_map(|p| p.cache_subnet_groups().iter().cloned())
        .collect();
        let groups: Vec<ReplicationGroup> = pages(
            scope,
            SERVICE,
            "DescribeReplicationGroups",
            |marker| {
                scope
                    .elasticache
                    .describe_replication_groups()
                    .set_marker(marker)
                    .send()
            },
            DescribeReplicationGroupsOutput::marker,
        )
        .await?
        .iter()
        .flat_map(|p| p.replication_groups().iter().cloned())
        .collect();
        let subnet_groups = owned_listing(
            scope,
            selector,
            subnet_groups,
            CacheSubnetGroup::cache_subnet_group_name,
            CacheSubnetGroup::arn,
            |arns| read_tags(scope, arns),
        )
        .await?;
        let groups = owned_listing(
            scope,
            selector,
            groups,
            ReplicationGroup::replication_group_id,
            ReplicationGroup::arn,
            |arns| read_tags(scope, arns),
        )
        .await?;
        let mut out: Vec<Observed> = subnet_groups
            .into_iter()
            .map(|(g, o)| {
                let name = g.cache_subnet_group_name().unwrap_or_default();
                let subnets: Vec<&str> = g
                    .subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier())
                    .collect();
                Observed::new(CACHE_SUBNET_GROUP, o.stack, o.role, name)
                    .owner(o.owner)
                    .prop("name", name)
                    .prop("subnets", json!(subnets))
                    .prop(
                        "description",
                        g.cache_subnet_group_description().unwrap_or_default(),
                    )
                    .prop("arn", g.arn().unwrap_or_default())
                    .refs(subnets.iter().map(|s| (*s).to_owned()))
            })
            .collect();
        let subnet_group_of: HashMap<(String, String), String> = out
            .iter()
            .map(|o| ((o.stack.clone(), o.role.clone()), o.id.clone()))
            .collect();
        for (g, o) in groups {
            let key = (o.stack.clone(), o.role.clone());
            let placement = recorded(scope, g.arn().unwrap_or_default());
            let mut observed = observed_group(&g, o, placement);
            // The subnet group is the stack's own of the same role: deletion waits for the
            // replication group.
            if let Some(sg) = subnet_group_of.get(&key) {
                observed = observed.refs([sg.clone()]);
            }
            out.push(observed);
        }
        Ok(out)
    }
}

pub struct SubnetGroupHandler;

#[async_trait]
impl Handler<Scope> for SubnetGroupHandler {
    fn kind(&self) -> Kind {
        CACHE_SUBNET_GROUP
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["subnets", "description"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags = stack_tags(scope, node);
        let out = scope
            .api
            .call(SERVICE, "CreateCacheSubnetGroup", Effect::Create, || {
                scope
                    .elasticache
                    .create_cache_subnet_group()
                    .cache_subnet_group_name(node.req("name"))
                    .cache_subnet_group_description(node.req("description"))
                    .set_subnet_ids(Some(node.strs("subnets")))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let arn = out
            .cache_subnet_group()
            .and_then(|g| g.arn())
            .unwrap_or_default();
        scope.api.tags.put(arn, scope.tags(node));
        Ok(created(scope, node, node.req("name"))
            .prop("arn", arn)
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
            .call(
                SERVICE,
                "ModifyCacheSubnetGroup",
                Effect::Idempotent,
                || {
                    scope
                        .elasticache
                        .modify_cache_subnet_group()
                        .cache_subnet_group_name(node.req("name"))
                        .cache_subnet_group_description(node.req("description"))
                        .set_subnet_ids(Some(node.strs("subnets")))
                        .send()
                },
            )
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(
                SERVICE,
                "DeleteCacheSubnetGroup",
                Effect::Idempotent,
                || {
                    scope
                        .elasticache
                        .delete_cache_subnet_group()
                        .cache_subnet_group_name(&current.id)
                        .send()
                },
            )
            .await
            .or_absent()?;
        scope
            .api
            .tags
            .forget(current.str("arn").unwrap_or_default());
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release(scope, resources).await
    }
}

pub struct GroupHandler;

#[async_trait]
impl Handler<Scope> for GroupHandler {
    fn kind(&self) -> Kind {
        REPLICATION_GROUP
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["nodeType", "snapshotRetentionDays"]
    }

    fn holds_data(&self) -> bool {
        true
    }

    fn digested(&self) -> &'static [&'static str] {
        &["placement"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let recorded = digest(&node.props["placement"]);
        let mut all = scope.tags(node);
        all.push((DIGEST_TAG.to_owned(), recorded.clone()));
        let tags: Vec<Tag> = all
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let (subnet_group, security_groups) = placement(node);
        let nodes = node.i64("nodes").unwrap_or(1) as i32;
        let failover = nodes > 1 && node.bool("multiAz");
        let id = node.req("id");
        let made = scope
            .api
            .call(SERVICE, "CreateReplicationGroup", Effect::Create, || {
                scope
                    .elasticache
                    .create_replication_group()
                    .replication_group_id(id)
                    .replication_group_description(format!("Cache of {}", scope.stack.id()))
                    .engine(node.req("engine"))
                    .cache_node_type(node.req("nodeType"))
                    .num_cache_clusters(nodes)
                    .automatic_failover_enabled(failover)
                    .multi_az_enabled(failover)
                    .snapshot_retention_limit(node.i64("snapshotRetentionDays").unwrap_or(0) as i32)
                    .cache_subnet_group_name(&subnet_group)
                    .set_security_group_ids(Some(security_groups.clone()))
                    .at_rest_encryption_enabled(true)
                    .set_kms_key_id(node.str("kmsKey").map(str::to_owned))
                    .transit_encryption_enabled(true)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        let group = match made {
            Ok(out) => out.replication_group().cloned(),
            // The id carries the owner's hash: a create whose answer was lost, unless its tags
            // say it is somebody else's.
            Err(e) if e.code.contains("AlreadyExists") => {
                let found = scope
                    .api
                    .call(SERVICE, "DescribeReplicationGroups", Effect::Read, || {
                        scope
                            .elasticache
                            .describe_replication_groups()
                            .replication_group_id(id)
                            .send()
                    })
                    .await?;
                let g = found.replication_groups().first().cloned();
                let arn = g
                    .as_ref()
                    .and_then(|g| g.arn())
                    .unwrap_or_default()
                    .to_owned();
                let tags = read_tags(scope, vec![arn.clone()]).await?;
                claim_taken(
                    scope,
                    tags.get(&arn),
                    &e,
                    &format!("the replication group {id}"),
                )?;
                g
            }
            Err(e) => return Err(e),
        };
        let arn = group
            .as_ref()
            .and_then(|g| g.arn())
            .unwrap_or_default()
            .to_owned();
        scope.api.tags.put(&arn, all);
        let status = group
            .as_ref()
            .and_then(|g| g.status())
            .unwrap_or("creating")
            .to_owned();
        let mut o = created(scope, node, id)
            .prop("arn", arn)
            .prop("placement", recorded)
            .refs(std::iter::once(subnet_group).chain(security_groups))
            .readiness(readiness(&status));
        if let Some(g) = &group {
            let seen = observed_group(
                g,
                Ownership {
                    stack: o.stack.clone(),
                    role: o.role.clone(),
                    owner: o.owner.clone(),
                },
                None,
            );
            for k in ["endpoint", "port"] {
                o.props.insert(k.into(), seen.props[k].clone());
            }
        }
        Ok(o)
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
                SERVICE,
                "ModifyReplicationGroup",
                Effect::Idempotent,
                || {
                    scope
                        .elasticache
                        .modify_replication_group()
                        .replication_group_id(&current.id)
                        .cache_node_type(node.req("nodeType"))
                        .snapshot_retention_limit(
                            node.i64("snapshotRetentionDays").unwrap_or(0) as i32
                        )
                        .apply_immediately(true)
                        .send()
                },
            )
            .await
            .map(|_| None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(
                SERVICE,
                "DeleteReplicationGroup",
                Effect::Idempotent,
                || {
                    scope
                        .elasticache
                        .delete_replication_group()
                        .replication_group_id(&current.id)
                        .send()
                },
            )
            .await
            .or_absent()?;
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
        let read = scope
            .api
            .call(SERVICE, "DescribeReplicationGroups", Effect::Read, || {
                scope
                    .elasticache
                    .describe_replication_groups()
                    .replication_group_id(&current.id)
                    .send()
            })
            .await;
        let found = match read {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        Ok(found.replication_groups().first().map(|g| {
            let mut o = observed_group(
                g,
                Ownership {
                    stack: current.stack.clone(),
                    role: current.role.clone(),
                    owner: current.owner.clone(),
                },
                current.str("placement").map(str::to_owned),
            );
            o.refs = current.refs.clone();
            o
        }))
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release(scope, resources).await
    }
}

async fn release(scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
    release_each(scope, resources, arn_of, |o, keys| async move {
        scope
            .api
            .call(
                SERVICE,
                "RemoveTagsFromResource",
                Effect::Idempotent,
                || {
                    scope
                        .elasticache
                        .remove_tags_from_resource()
                        .resource_name(arn_of(&o))
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                },
            )
            .await
            .map(|_| ())
    })
    .await
}
