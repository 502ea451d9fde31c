//! The application tiers: frontend, buckets, backend tiers and container repositories.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Where the frontend is served from.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.kind != 'S3' || has(self.s3)").message("kind S3 needs the s3 settings").field_path(".s3"))]
#[x_kube(validation = Rule::new("self.kind != 'Tier' || has(self.tier)").message("kind Tier needs the name of a backend tier in tier").field_path(".tier"))]
#[x_kube(validation = Rule::new("self.kind != 'InCluster' || has(self.inCluster)").message("kind InCluster needs the inCluster workload").field_path(".inCluster"))]
pub struct FrontendSpec {
    /// `S3`: a static site in an S3 bucket, private and served through the CDN (an origin
    /// access control, never a public bucket). `Tier`: served by one of the backend tiers
    /// (an EC2 group of web servers, as with NGINX). `InCluster`: a Deployment in this
    /// cluster. `None`: no frontend.
    pub kind: FrontendKind,

    /// The static site, for kind `S3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<StaticSite>,

    /// The backend tier that serves the frontend, for kind `Tier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub tier: Option<String>,

    /// The in-cluster workload, for kind `InCluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_cluster: Option<InClusterWorkload>,
}

/// Where the frontend is served from.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum FrontendKind {
    S3,
    Tier,
    InCluster,
    None,
}

/// A static website in a private S3 bucket.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticSite {
    /// The page served for `/`. Defaults to `index.html`.
    #[serde(default = "index_html")]
    #[schemars(length(min = 1, max = 256))]
    pub index_document: String,

    /// Serve the index page for paths that do not exist, as single-page apps (React, Vue)
    /// need. Defaults to true.
    #[serde(default = "yes")]
    pub spa_fallback: bool,

    /// Keep earlier versions of every object, so that a bad deployment can be rolled back.
    /// Defaults to true.
    #[serde(default = "yes")]
    pub versioning: bool,

    /// Encryption at rest. Defaults to `S3Managed` (SSE-S3).
    #[serde(default)]
    pub encryption: BucketEncryption,

    /// Lifecycle rules, such as expiring old versions. Defaults to expiring replaced versions
    /// after 30 days (when versioned) and unfinished uploads after 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,

    /// Delete the site's objects with the stack. Defaults to false: a stack whose bucket still
    /// holds objects stops deleting and names the bucket.
    #[serde(default)]
    pub delete_objects: bool,
}

pub(crate) fn yes() -> bool {
    true
}

fn index_html() -> String {
    "index.html".into()
}

/// Encryption at rest of a bucket.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum BucketEncryption {
    /// SSE-S3: keys managed by S3.
    #[default]
    S3Managed,
    /// SSE-KMS with the stack's KMS key (see `spec.encryption`).
    Kms,
}

/// Lifecycle rules of a bucket.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifecycle {
    /// Delete objects this many days after their creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub expiration_days: Option<u32>,

    /// Delete earlier versions this many days after they were replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub noncurrent_version_expiration_days: Option<u32>,

    /// Move objects to Standard-IA this many days after their creation (at least 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 36500))]
    pub transition_to_infrequent_access_days: Option<u32>,

    /// Abort unfinished multipart uploads after this many days. Defaults to 7.
    #[serde(default = "seven")]
    #[schemars(range(min = 1, max = 365))]
    pub abort_incomplete_uploads_days: u32,
}

fn seven() -> u32 {
    7
}

/// A bucket for data: user uploads, raw and processed assets.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketSpec {
    /// The bucket's name within the stack, such as `uploads`; the AWS name adds the stack's
    /// namespace, name and a hash so that it is unique in AWS.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9][a-z0-9-]{0,19}$')").message("bucket names are 1 to 20 lower-case letters, digits and '-'"))]
    #[schemars(length(max = 20))]
    pub name: String,

    /// Keep earlier versions of every object. Defaults to false.
    #[serde(default)]
    pub versioning: bool,

    /// Encryption at rest. Defaults to `S3Managed` (SSE-S3).
    #[serde(default)]
    pub encryption: BucketEncryption,

    /// Lifecycle rules. Defaults to aborting unfinished uploads after 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,

    /// Delete the bucket's objects with the stack. Defaults to false: a stack whose bucket
    /// still holds objects stops deleting and names the bucket.
    #[serde(default)]
    pub delete_objects: bool,

    /// Browsers may upload or read directly from these origins (for presigned URLs), such as
    /// `https://example.com`. Defaults to the stack's own origins (`https://` and each CDN
    /// alias).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253), regex(pattern = super::patterns::ORIGIN)))]
    pub cors_origins: Vec<String>,

    /// Functions called when objects change. Each names a function of `spec.functions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub notifications: Vec<BucketNotification>,
}

/// A function called for object events of a bucket.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketNotification {
    /// The function of `spec.functions` to call.
    #[schemars(length(max = 32))]
    pub function_name: String,
    /// S3 event types, such as `s3:ObjectCreated:*` (the default).
    #[serde(default = "object_created")]
    #[schemars(length(max = 8), inner(length(max = 253), regex(pattern = super::patterns::S3_EVENT)))]
    pub events: Vec<String>,
    /// Only keys starting with this, such as `raw/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub prefix: Option<String>,
    /// Only keys ending with this, such as `.jpg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub suffix: Option<String>,
}

fn object_created() -> Vec<String> {
    vec!["s3:ObjectCreated:*".into()]
}

/// The backend: one or several tiers, each behind its own load balancer.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.tiers.all(t, self.tiers.exists_one(u, u.name == t.name))").message("tier names must be unique").field_path(".tiers"))]
#[x_kube(validation = Rule::new("self.tiers.all(t, !has(t.upstreams) || t.upstreams.all(u, u != t.name && self.tiers.exists(v, v.name == u)))").message("upstreams must name other tiers of spec.backend.tiers").field_path(".tiers"))]
pub struct BackendSpec {
    /// The tiers. A tier can proxy to others (`upstreams`), as a frontend tier of web servers
    /// does to an API tier behind an internal load balancer.
    #[schemars(length(min = 1, max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub tiers: Vec<TierSpec>,
}

/// One backend tier: compute behind an Application Load Balancer.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.runtime != 'Ec2' || has(self.ec2)").message("runtime Ec2 needs the ec2 settings").field_path(".ec2"))]
#[x_kube(validation = Rule::new("self.runtime != 'Fargate' || has(self.fargate)").message("runtime Fargate needs the fargate settings").field_path(".fargate"))]
#[x_kube(validation = Rule::new("self.runtime != 'InCluster' || has(self.inCluster)").message("runtime InCluster needs the inCluster workload").field_path(".inCluster"))]
#[x_kube(validation = Rule::new("!has(self.scaling) || !has(self.scaling.desired) || (self.scaling.min <= self.scaling.desired && self.scaling.desired <= self.scaling.max)").message("scaling must satisfy min <= desired <= max").field_path(".scaling"))]
#[x_kube(validation = Rule::new("!has(self.scaling) || self.scaling.min <= self.scaling.max").message("scaling.min must not exceed scaling.max").field_path(".scaling"))]
#[x_kube(validation = Rule::new("!has(self.ec2) || !self.ec2.elasticIp || (has(self.scaling) && self.scaling.max == 1)").message("an Elastic IP fits a single instance: set scaling.max to 1").field_path(".ec2.elasticIp"))]
pub struct TierSpec {
    /// The tier's name, such as `api` or `web`: lower-case letters, digits and '-'.
    #[x_kube(validation = Rule::new("self.matches('^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$')").message("tier names are 1 to 16 lower-case letters, digits and '-', starting with a letter"))]
    #[schemars(length(max = 16))]
    pub name: String,

    /// What runs the tier: `Ec2` (an Auto Scaling group), `Fargate` (an ECS service) or
    /// `InCluster` (a Deployment in this cluster).
    pub runtime: Runtime,

    /// The port the application listens on. Defaults to 8080.
    #[serde(default = "port_8080")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,

    /// The load balancer's health check.
    #[serde(default)]
    pub health_check: HealthCheck,

    /// The load balancer in front of the tier.
    #[serde(default)]
    pub load_balancer: LoadBalancerSpec,

    /// How many instances or tasks run, and when to add more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,

    /// The subnets the instances or tasks run in. Defaults to `Private` (they are reached
    /// through the load balancer only).
    #[serde(default = "private")]
    pub subnets: SubnetPlacement,

    /// Other tiers this one calls, through their load balancers; each gets a security-group
    /// rule from this tier only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(max = 253)))]
    pub upstreams: Vec<String>,

    /// Environment variables of the application. Secrets do not go here: the database and
    /// identity secrets are passed by reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,

    /// EC2 settings, for runtime `Ec2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2: Option<Ec2Spec>,

    /// Fargate settings, for runtime `Fargate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate: Option<FargateSpec>,

    /// The Deployment, for runtime `InCluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_cluster: Option<InClusterWorkload>,
}

fn port_8080() -> u16 {
    8080
}

fn private() -> SubnetPlacement {
    SubnetPlacement::Private
}

/// What runs a tier.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Runtime {
    Ec2,
    Fargate,
    InCluster,
}

/// Which subnets a tier runs in.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SubnetPlacement {
    Public,
    Private,
}

/// The load balancer's health check of a tier.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// The HTTP path checked. Defaults to `/health`.
    #[serde(default = "health_path")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/"))]
    pub path: String,
    /// Seconds between checks. Defaults to 30.
    #[serde(default = "thirty")]
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: u16,
    /// Consecutive successes before a target is healthy. Defaults to 3.
    #[serde(default = "three")]
    #[schemars(range(min = 2, max = 10))]
    pub healthy_threshold: u8,
    /// Consecutive failures before a target is unhealthy. Defaults to 3.
    #[serde(default = "three")]
    #[schemars(range(min = 2, max = 10))]
    pub unhealthy_threshold: u8,
}

fn health_path() -> String {
    "/health".into()
}
fn thirty() -> u16 {
    30
}
fn three() -> u8 {
    3
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: health_path(),
            interval_seconds: thirty(),
            healthy_threshold: three(),
            unhealthy_threshold: three(),
        }
    }
}

/// The Application Load Balancer of a tier.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSpec {
    /// `InternetFacing` (the default) in the public subnets, or `Internal` in the private
    /// subnets, reachable only from other tiers.
    #[serde(default)]
    pub scheme: LoadBalancerScheme,

    /// The certificate (a name of `spec.certificates`) for an HTTPS listener on 443; HTTP on
    /// 80 then redirects to HTTPS. Without it the load balancer listens on HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub certificate: Option<String>,

    /// Seconds to let in-flight requests finish when a target leaves. Defaults to 30.
    #[serde(default = "thirty")]
    #[schemars(range(min = 0, max = 3600))]
    pub deregistration_delay_seconds: u16,
}

/// Whether a load balancer is reachable from the internet.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum LoadBalancerScheme {
    #[default]
    InternetFacing,
    Internal,
}

/// How many instances or tasks run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scaling {
    /// Fewest instances or tasks. Defaults to 1.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    pub min: u32,
    /// Most instances or tasks. Defaults to 2.
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 1000))]
    pub max: u32,
    /// How many to start with; defaults to `min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub desired: Option<u32>,
    /// Target tracking on average CPU, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 95))]
    pub cpu_target_percent: Option<u8>,
    /// Target tracking on average memory, in percent (EC2 needs the CloudWatch agent, which
    /// the operator's user data installs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 95))]
    pub memory_target_percent: Option<u8>,
}

fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}

/// An EC2 Auto Scaling group.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ec2Spec {
    /// The instance type. Defaults to `t3.micro`.
    #[serde(default = "t3_micro")]
    #[schemars(
        length(min = 4, max = 32),
        regex(pattern = super::patterns::INSTANCE_TYPE)
    )]
    pub instance_type: String,

    /// The machine image: an SSM public parameter (the default is Amazon Linux 2023's) or an
    /// AMI id.
    #[serde(default)]
    pub image: MachineImage,

    /// The container the instances run with Docker, pulled at boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerImage>,

    /// Extra shell commands run at boot, after the container setup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    pub user_data: Option<String>,

    /// The root volume: size, type, always encrypted.
    #[serde(default)]
    pub root_volume: RootVolume,

    /// Run part or all of the group on Spot instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<Spot>,

    /// An existing EC2 key pair for SSH (with `network.sshAllowedCidrs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub key_pair: Option<String>,

    /// Give the single instance a fixed public address (an Elastic IP). Needs
    /// `scaling.max: 1` and public subnets.
    #[serde(default)]
    pub elastic_ip: bool,
}

fn t3_micro() -> String {
    "t3.micro".into()
}

/// The machine image of EC2 instances. Instance metadata always requires IMDSv2 tokens.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineImage {
    /// An SSM public parameter that names the newest image. Defaults to Amazon Linux 2023.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub ssm_parameter: Option<String>,
    /// A fixed AMI id, such as `ami-0123456789abcdef0`; overrides `ssmParameter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ami-[0-9a-f]{8,17}$"))]
    pub ami_id: Option<String>,
}

impl Default for MachineImage {
    fn default() -> Self {
        MachineImage {
            ssm_parameter: Some(
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".into(),
            ),
            ami_id: None,
        }
    }
}

/// A container image.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerImage {
    /// A full image reference, or `<repository>:<tag>` with a repository of `spec.repositories`.
    #[schemars(length(min = 1, max = 512), regex(pattern = super::patterns::IMAGE))]
    pub image: String,
}

/// The root EBS volume of EC2 instances.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RootVolume {
    /// Size in GiB. Defaults to 8.
    #[serde(default = "eight")]
    #[schemars(range(min = 8, max = 16384))]
    pub size_gib: u32,
    /// `gp3` (the default) or `gp2`.
    #[serde(default)]
    pub volume_type: VolumeType,
}

fn eight() -> u32 {
    8
}

impl Default for RootVolume {
    fn default() -> Self {
        RootVolume {
            size_gib: 8,
            volume_type: VolumeType::Gp3,
        }
    }
}

/// EBS volume types.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    #[default]
    Gp3,
    Gp2,
}

/// Spot capacity of an Auto Scaling group.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spot {
    /// Instances kept on demand before Spot is used. Defaults to 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub on_demand_base: u32,
    /// Share of the instances above the base that run on Spot, in percent. Defaults to 100.
    #[serde(default = "hundred")]
    #[schemars(range(min = 0, max = 100))]
    pub spot_percent: u8,
}

fn hundred() -> u8 {
    100
}

/// An ECS service on Fargate.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(self.cpu == 256 && self.memoryMib in [512, 1024, 2048]) || (self.cpu == 512 && self.memoryMib >= 1024 && self.memoryMib <= 4096) || (self.cpu == 1024 && self.memoryMib >= 2048 && self.memoryMib <= 8192) || (self.cpu == 2048 && self.memoryMib >= 4096 && self.memoryMib <= 16384) || (self.cpu == 4096 && self.memoryMib >= 8192 && self.memoryMib <= 30720)").message("cpu and memoryMib must be a combination Fargate offers (256: 512-2048, 512: 1024-4096, 1024: 2048-8192, 2048: 4096-16384, 4096: 8192-30720)").field_path(".memoryMib"))]
pub struct FargateSpec {
    /// The container image: a full reference, or `<repository>:<tag>` of `spec.repositories`.
    #[schemars(length(min = 1, max = 512), regex(pattern = super::patterns::IMAGE))]
    pub image: String,
    /// CPU units: 256, 512, 1024, 2048 or 4096. Defaults to 256.
    #[serde(default = "cpu_256")]
    pub cpu: u32,
    /// Memory in MiB, within what Fargate allows for the CPU. Defaults to 512.
    #[serde(default = "mem_512")]
    pub memory_mib: u32,
}

fn cpu_256() -> u32 {
    256
}
fn mem_512() -> u32 {
    512
}

/// A Deployment in this cluster.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InClusterWorkload {
    /// The container image.
    #[schemars(length(min = 1, max = 512), regex(pattern = super::patterns::IMAGE))]
    pub image: String,
    /// Replicas. Defaults to 2.
    #[serde(default = "two_i32")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// The container port. Defaults to 8080.
    #[serde(default = "port_8080")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// The CPU each pod requests, in millicores; the autoscaler's CPU target is a share of
    /// it. Defaults to 250.
    #[serde(default = "millis_250")]
    #[schemars(range(min = 10, max = 64000))]
    pub cpu_millis: u32,
    /// The memory each pod requests and may use, in MiB. Defaults to 256.
    #[serde(default = "mib_256")]
    #[schemars(range(min = 16, max = 262144))]
    pub memory_mib: u32,
    /// The Ingress that exposes the workload's Service.
    #[serde(default)]
    pub ingress: IngressSettings,
}

fn two_i32() -> i32 {
    2
}
fn millis_250() -> u32 {
    250
}
fn mib_256() -> u32 {
    256
}

/// The Ingress of an in-cluster workload.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressSettings {
    /// Create the Ingress. Defaults to true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The IngressClass. Defaults to the operator's `--ingress-class`, and without it to the
    /// cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub class_name: Option<String>,
    /// The host name the Ingress answers; every host when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(
            pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        )
    )]
    pub host: Option<String>,
    /// The path prefix routed to the workload. Defaults to `/`.
    #[serde(default = "slash")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/"))]
    pub path: String,
}

impl Default for IngressSettings {
    fn default() -> Self {
        IngressSettings {
            enabled: true,
            class_name: None,
            host: None,
            path: slash(),
        }
    }
}

fn slash() -> String {
    "/".to_owned()
}

/// A private container registry (ECR).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySpec {
    /// The repository's name within the stack, such as `backend`.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]+([._-][a-z0-9]+)*$')").message("repository names are lower-case letters and digits, separated by '.', '_' or '-'"))]
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Scan images for vulnerabilities when pushed. Defaults to true.
    #[serde(default = "yes")]
    pub scan_on_push: bool,
    /// Refuse to overwrite a tag. Defaults to true.
    #[serde(default = "yes")]
    pub immutable_tags: bool,
    /// Keep only this many images; older ones expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub keep_last_images: Option<u32>,
}
