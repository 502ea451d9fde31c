//! The data tier: a relational database (RDS or external), DynamoDB tables, the cache.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::apps::yes;

/// The relational database.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.kind != 'Rds' || has(self.rds)").message("kind Rds needs the rds settings").field_path(".rds"))]
#[x_kube(validation = Rule::new("self.kind != 'External' || has(self.external)").message("kind External needs the external secret reference").field_path(".external"))]
pub struct DatabaseSpec {
    /// `Rds`: an RDS instance in the private subnets, reachable only from the app's security
    /// group. `External`: a database run elsewhere (such as MongoDB Atlas), whose connection
    /// string the application reads from a Kubernetes Secret.
    pub kind: DatabaseKind,

    /// The RDS instance, for kind `Rds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds: Option<RdsSpec>,

    /// The external database, for kind `External`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatabase>,
}

/// Where the relational database runs.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum DatabaseKind {
    Rds,
    External,
}

/// An RDS database instance. Its master password is generated and kept by AWS in Secrets
/// Manager (`ManageMasterUserPassword`): no password appears in the spec.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.engine == 'Postgres' ? self.version.matches('^(13|14|15|16|17)(\\\\.[0-9]+)?$') : self.version.matches('^8\\\\.(0|4)(\\\\.[0-9]+)?$')").message("unknown engine version: PostgreSQL 13 to 17, MySQL 8.0 or 8.4").field_path(".version"))]
#[x_kube(validation = Rule::new("!has(self.maxAllocatedStorageGib) || self.maxAllocatedStorageGib >= self.allocatedStorageGib").message("maxAllocatedStorageGib must be at least allocatedStorageGib").field_path(".maxAllocatedStorageGib"))]
pub struct RdsSpec {
    /// `Postgres` or `Mysql`. Cannot be changed once the database exists.
    #[x_kube(validation = Rule::new("self == oldSelf").message("the database engine cannot be changed; create a new stack and migrate"))]
    pub engine: Engine,

    /// The engine version: a major (`16`, `8.0`) or a full version (`16.4`, `8.0.39`).
    #[schemars(length(min = 1, max = 16))]
    pub version: String,

    /// The instance class. Defaults to `db.t4g.micro`.
    #[serde(default = "db_t4g_micro")]
    #[schemars(
        length(min = 4, max = 32),
        regex(pattern = super::patterns::DB_INSTANCE_CLASS)
    )]
    pub instance_class: String,

    /// Storage in GiB. Defaults to 20.
    #[serde(default = "twenty")]
    #[schemars(range(min = 20, max = 65536))]
    pub allocated_storage_gib: u32,

    /// Let storage grow automatically up to this many GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 21, max = 65536))]
    pub max_allocated_storage_gib: Option<u32>,

    /// `gp3` (the default) or `gp2`.
    #[serde(default)]
    pub storage_type: super::apps::VolumeType,

    /// A standby in a second zone with automatic failover. Defaults to false.
    #[serde(default)]
    pub multi_az: bool,

    /// Days of automated backups, 0 to 35. Defaults to 7.
    #[serde(default = "seven_u8")]
    #[schemars(range(min = 0, max = 35))]
    pub backup_retention_days: u8,

    /// Refuse to delete the database. Defaults to true.
    #[serde(default = "yes")]
    pub deletion_protection: bool,

    /// Take a final snapshot when the database is deleted. Defaults to true.
    #[serde(default = "yes")]
    pub final_snapshot: bool,

    /// The initial database's name. Defaults to `app`.
    #[serde(default = "app")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"))]
    pub database_name: String,

    /// The master user's name. Defaults to `app`.
    #[serde(default = "app")]
    #[schemars(length(min = 1, max = 16), regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"))]
    pub master_username: String,
}

fn db_t4g_micro() -> String {
    "db.t4g.micro".into()
}
fn twenty() -> u32 {
    20
}
fn seven_u8() -> u8 {
    7
}
fn app() -> String {
    "app".into()
}

/// Relational database engines.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    pub fn port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }
    }
}

/// A database run outside the stack.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalDatabase {
    /// The Kubernetes Secret (in the stack's namespace) and key that hold the connection string.
    pub secret_ref: SecretKeyRef,
    /// What it is, for people reading the stack, such as `MongoDB Atlas M10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
}

/// A key of a Kubernetes Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A DynamoDB table.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.indexes) || self.indexes.all(i, self.indexes.exists_one(j, j.name == i.name))").message("index names must be unique").field_path(".indexes"))]
#[x_kube(validation = Rule::new("!has(self.indexes) || [[[self.partitionKey.name, self.partitionKey.type]] + (has(self.sortKey) ? [[self.sortKey.name, self.sortKey.type]] : []) + self.indexes.map(i, [i.partitionKey.name, i.partitionKey.type]) + self.indexes.filter(i, has(i.sortKey)).map(i, [i.sortKey.name, i.sortKey.type])].all(l, l.all(a, l.all(b, a[0] != b[0] || a[1] == b[1])))").message("an attribute has one type in a table and its indexes").field_path(".indexes"))]
pub struct TableSpec {
    /// The table's name within the stack, such as `profiles`.
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_.-]{1,64}$')").message("table names are 1 to 64 letters, digits, '_', '.' and '-'"))]
    #[schemars(length(max = 64))]
    pub name: String,

    /// The partition key. Cannot be changed once the table exists.
    #[x_kube(validation = Rule::new("self == oldSelf").message("a table's keys cannot be changed"))]
    pub partition_key: KeyAttribute,

    /// The sort key, if any. Cannot be changed once the table exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,

    /// Global secondary indexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub indexes: Vec<TableIndex>,

    /// The attribute holding an expiry time (epoch seconds): items expire after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub ttl_attribute: Option<String>,

    /// A change stream, as functions with a `dynamodbStream` trigger read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamView>,

    /// Point-in-time recovery. Defaults to true.
    #[serde(default = "yes")]
    pub point_in_time_recovery: bool,
}

/// A key attribute of a table or index.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyAttribute {
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// `S` (string, the default), `N` (number) or `B` (binary). Quote `"N"` in YAML: kubectl
    /// reads a bare `N` as the boolean false.
    #[serde(default, rename = "type")]
    pub type_: AttributeType,
}

/// DynamoDB key types.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum AttributeType {
    #[default]
    S,
    N,
    B,
}

/// A global secondary index.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableIndex {
    #[schemars(length(min = 3, max = 255))]
    pub name: String,
    pub partition_key: KeyAttribute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,
}

/// What a table's stream carries.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum StreamView {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
}

/// An ElastiCache replication group, in the private subnets, reachable only from the app.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!self.multiAz || self.replicas >= 1").message("multiAz needs at least one replica").field_path(".multiAz"))]
pub struct CacheSpec {
    /// `Valkey` (the default) or `Redis`.
    #[serde(default)]
    pub engine: CacheEngine,
    /// The node type. Defaults to `cache.t3.micro`.
    #[serde(default = "cache_t3_micro")]
    #[schemars(
        length(min = 4, max = 32),
        regex(pattern = super::patterns::CACHE_NODE_TYPE)
    )]
    pub node_type: String,
    /// Read replicas besides the primary, 0 to 5. Defaults to 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 5))]
    pub replicas: u8,
    /// Automatic failover to a replica in another zone. Defaults to false.
    #[serde(default)]
    pub multi_az: bool,
    /// Days of snapshots, 0 to 35. Defaults to 0 (none).
    #[serde(default)]
    #[schemars(range(min = 0, max = 35))]
    pub snapshot_retention_days: u8,
}

fn cache_t3_micro() -> String {
    "cache.t3.micro".into()
}

/// Cache engines.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum CacheEngine {
    #[default]
    Valkey,
    Redis,
}
