//! The network tier: VPC, subnets, gateways, routes, endpoints, security groups.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The network tier.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!(has(self.azCount) && has(self.availabilityZones) && size(self.availabilityZones) > 0)").message("set either azCount or availabilityZones, not both").field_path(".azCount"))]
#[x_kube(validation = Rule::new("!has(self.publicSubnets) || !has(self.publicSubnets.cidrs) || self.publicSubnets.cidrs.all(c, isCIDR(c) && cidr(self.vpcCidr).containsCIDR(c))").message("every public subnet must be a CIDR inside vpcCidr").field_path(".publicSubnets.cidrs"))]
#[x_kube(validation = Rule::new("!has(self.privateSubnets) || !has(self.privateSubnets.cidrs) || self.privateSubnets.cidrs.all(c, isCIDR(c) && cidr(self.vpcCidr).containsCIDR(c))").message("every private subnet must be a CIDR inside vpcCidr").field_path(".privateSubnets.cidrs"))]
#[x_kube(validation = Rule::new("[(has(self.publicSubnets) && has(self.publicSubnets.cidrs) ? self.publicSubnets.cidrs : []) + (has(self.privateSubnets) && has(self.privateSubnets.cidrs) ? self.privateSubnets.cidrs : [])].all(l, l.all(a, !isCIDR(a) || l.exists_one(b, isCIDR(b) && (cidr(a).containsCIDR(b) || cidr(b).containsCIDR(a)))))").message("subnet CIDRs must not overlap").field_path(".privateSubnets.cidrs"))]
#[x_kube(validation = Rule::new("[has(self.availabilityZones) && size(self.availabilityZones) > 0 ? size(self.availabilityZones) : (has(self.azCount) ? self.azCount : 2)].all(n, (!has(self.publicSubnets) || !has(self.publicSubnets.cidrs) || size(self.publicSubnets.cidrs) == n) && (!has(self.privateSubnets) || !has(self.privateSubnets.cidrs) || size(self.privateSubnets.cidrs) == n))").message("list one subnet CIDR per availability zone").field_path(".publicSubnets.cidrs"))]
#[x_kube(validation = Rule::new("!has(self.natGateways) || self.natGateways == 'None' || has(self.privateSubnets)").message("NAT gateways serve private subnets; set privateSubnets or natGateways: None").field_path(".natGateways"))]
pub struct NetworkSpec {
    /// IPv4 range of the VPC in CIDR notation, from /16 to /24, such as `10.0.0.0/16`.
    /// Cannot be changed once the VPC exists.
    #[x_kube(validation = Rule::new("isCIDR(self) && cidr(self).ip().family() == 4 && cidr(self).prefixLength() >= 16 && cidr(self).prefixLength() <= 24").message("vpcCidr must be an IPv4 CIDR from /16 to /24, such as 10.0.0.0/16"))]
    #[x_kube(validation = Rule::new("!isCIDR(self) || cidr(self).masked() == cidr(self)").message("vpcCidr has host bits set"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("vpcCidr cannot be changed once the VPC exists"))]
    #[schemars(length(max = 18))]
    pub vpc_cidr: String,

    /// How many availability zones to spread the subnets over, taken in the order the region
    /// lists them. Defaults to 2. Leave unset when `availabilityZones` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 6))]
    pub az_count: Option<u8>,

    /// Explicit availability zones, such as `[eu-north-1a, eu-north-1b]`. Overrides `azCount`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(z, self.exists_one(y, y == z))").message("an availability zone is listed twice"))]
    #[x_kube(validation = Rule::new("self.all(z, size(z) > 1 && size(self[0]) > 1 && z.substring(0, size(z) - 1) == self[0].substring(0, size(self[0]) - 1))").message("all availability zones must be in one region"))]
    #[schemars(length(max = 6), inner(length(max = 32)))]
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
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c) && cidr(c).ip().family() == 4 && cidr(c).prefixLength() > 0)").message("each entry must be an IPv4 CIDR narrower than 0.0.0.0/0: SSH is never open to the whole internet"))]
    #[schemars(length(max = 16), inner(length(max = 18)))]
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
    #[schemars(length(max = 6), inner(length(max = 18)))]
    pub cidrs: Vec<String>,

    /// Prefix length of computed subnets (16 to 28). Defaults to the VPC's prefix plus 4
    /// (a /16 VPC gets /20 subnets), and at most 28.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16, max = 28))]
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
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoints {
    /// A gateway endpoint for S3 on every route table (free of charge).
    #[serde(default)]
    pub s3: bool,

    /// Interface endpoints, placed in the private subnets (the public ones when there are no
    /// private subnets), with private DNS, reachable on 443 from inside the VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(e, self.exists_one(f, f == e))").message("an endpoint is listed twice"))]
    #[schemars(length(max = 4))]
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

/// Ports of the security-group chain. Groups for the database and the cache exist when
/// their port is set here or when the stack has a database or a cache (whose engine gives the
/// port).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroups {
    /// Ports the load balancer accepts from anywhere. Defaults to 80 and 443.
    #[serde(default = "default_lb_ports")]
    #[x_kube(validation = Rule::new("!self.exists(p, p == 22)").message("22 (SSH) must not be open to the internet; use sshAllowedCidrs"))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q == p))").message("a port is listed twice"))]
    #[schemars(length(min = 1, max = 8), range(min = 1, max = 65535))]
    pub load_balancer_ports: Vec<u16>,

    /// The port the application listens on; reachable only from the load balancer's group.
    #[serde(default = "default_app_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub app_port: u16,

    /// The database port (3306 for MySQL, 5432 for PostgreSQL); reachable only from the app's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub database_port: Option<u16>,

    /// The cache port (6379 for Redis and Valkey); reachable only from the app's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
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
