//! The `WebStack` custom resource (`webstack.io/v1alpha1`): its types and their validation,
//! nothing else.

pub mod status;
pub mod validate;

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use status::*;

/// A whole AWS web-application architecture, declared as one resource.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "webstack.io",
    version = "v1alpha1",
    kind = "WebStack",
    namespaced,
    shortname = "ws",
    status = "WebStackStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebStackSpec {
    /// AWS region the stack lives in, such as `eu-west-1`. When omitted, the region of the
    /// operator's AWS configuration (`AWS_REGION`) is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// Tags added to every AWS resource of the stack, beside the ownership tags
    /// `webstack.io/stack`, `webstack.io/component` and `Name`, which are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,

    /// What happens to the AWS resources when the stack is deleted: `Delete` removes them,
    /// `Retain` leaves them in place and removes only the stack's ownership tag.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// The network tier: VPC, subnets, gateways, routes, endpoints and security groups.
    pub network: NetworkSpec,
}

/// What happens to AWS resources when their stack is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete every AWS resource the stack owns.
    #[default]
    Delete,
    /// Keep the resources; release the stack's claim on them.
    Retain,
}

/// The network tier.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// IPv4 range of the VPC in CIDR notation, from /16 to /24, such as `10.0.0.0/16`.
    /// Cannot be changed once the VPC exists.
    pub vpc_cidr: String,

    /// How many availability zones to spread the subnets over, taken in the order the region
    /// lists them. Defaults to 2. Leave unset when `availabilityZones` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az_count: Option<u8>,

    /// Explicit availability zones, such as `[eu-north-1a, eu-north-1b]`. Overrides `azCount`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability_zones: Vec<String>,

    /// Public subnets, one per availability zone, routed to the internet gateway. Their CIDRs
    /// are computed from the VPC CIDR unless listed.
    #[serde(default)]
    pub public_subnets: SubnetSet,

    /// Private subnets, one per availability zone, with no route from the internet. Omit for
    /// a stack with public subnets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_subnets: Option<SubnetSet>,

    /// NAT gateways that give the private subnets outbound internet access: `None` (the
    /// default, no cost), `Single` (one, in the first zone) or `PerAz` (one per zone, so that
    /// a zone outage does not cut the others off).
    #[serde(default)]
    pub nat_gateways: NatGateways,

    /// VPC endpoints, so that private subnets reach AWS services without a NAT gateway.
    #[serde(default)]
    pub endpoints: Endpoints,

    /// CIDRs allowed to reach the application instances by SSH (port 22). Empty: no SSH.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_allowed_cidrs: Vec<String>,

    /// The least-privilege security-group chain: load balancer -> app -> database and cache.
    #[serde(default)]
    pub security_groups: SecurityGroups,
}

/// A set of subnets, one per availability zone.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubnetSet {
    /// One CIDR per availability zone, in zone order, each inside the VPC CIDR. When empty,
    /// CIDRs are computed: the VPC range is cut into blocks of `prefixLength`; public subnets
    /// take the blocks from the start, private ones from the middle, so adding a zone never
    /// moves an existing subnet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,

    /// Prefix length of computed subnets (16 to 28). Defaults to the VPC's prefix plus 4
    /// (a /16 VPC gets /20 subnets), and at most 28.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<u8>,
}

/// How many NAT gateways the private subnets use.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NatGateways {
    /// No NAT gateway: private subnets have no route to the internet.
    #[default]
    None,
    /// One NAT gateway in the first zone's public subnet, shared by every private subnet.
    Single,
    /// One NAT gateway per zone; each private subnet uses the one in its zone.
    PerAz,
}

/// VPC endpoints of the stack.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoints {
    /// A gateway endpoint for S3 on every route table (free of charge).
    #[serde(default)]
    pub s3: bool,

    /// Interface endpoints, placed in the private subnets (the public ones when there are no
    /// private subnets), with private DNS, reachable on 443 from inside the VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interface: Vec<InterfaceEndpoint>,
}

/// An AWS service reachable through an interface endpoint.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum InterfaceEndpoint {
    /// ECR: both `ecr.api` and `ecr.dkr`, as pulling an image needs both.
    Ecr,
    /// AWS KMS.
    Kms,
    /// AWS Secrets Manager.
    SecretsManager,
    /// CloudWatch Logs.
    Logs,
}

impl InterfaceEndpoint {
    /// The service names' suffixes (after `com.amazonaws.<region>.`) and the roles they get.
    pub fn services(self) -> &'static [(&'static str, &'static str)] {
        match self {
            InterfaceEndpoint::Ecr => &[("ecr.api", "ecr-api"), ("ecr.dkr", "ecr-dkr")],
            InterfaceEndpoint::Kms => &[("kms", "kms")],
            InterfaceEndpoint::SecretsManager => &[("secretsmanager", "secretsmanager")],
            InterfaceEndpoint::Logs => &[("logs", "logs")],
        }
    }
}

/// Ports of the security-group chain. Groups for the database and the cache exist only when
/// their port is set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroups {
    /// Ports the load balancer accepts from anywhere. Defaults to 80 and 443.
    #[serde(default = "default_lb_ports")]
    pub load_balancer_ports: Vec<u16>,

    /// The port the application listens on; reachable only from the load balancer's group.
    #[serde(default = "default_app_port")]
    pub app_port: u16,

    /// The database port (3306 for MySQL, 5432 for PostgreSQL); reachable only from the app's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_port: Option<u16>,

    /// The cache port (6379 for Redis and Valkey); reachable only from the app's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_port: Option<u16>,
}

fn default_lb_ports() -> Vec<u16> {
    vec![80, 443]
}

fn default_app_port() -> u16 {
    8080
}

impl Default for SecurityGroups {
    fn default() -> Self {
        SecurityGroups {
            load_balancer_ports: default_lb_ports(),
            app_port: default_app_port(),
            database_port: None,
            cache_port: None,
        }
    }
}

impl WebStack {
    /// `<namespace>/<name>`: the value of the `webstack.io/stack` tag.
    pub fn stack_id(&self) -> String {
        format!(
            "{}/{}",
            self.metadata.namespace.as_deref().unwrap_or("default"),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }
}
