//! The `WebStack` custom resource (`webstack.io/v1alpha1`): its types and their validation,
//! nothing else.

pub mod apps;
pub mod data;
pub mod edge;
pub mod monitoring;
pub mod network;
pub mod patterns;
pub mod serverless;
pub mod status;
pub mod validate;

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use apps::*;
pub use data::*;
pub use edge::*;
pub use monitoring::*;
pub use network::*;
pub use serverless::*;
pub use status::*;

/// A whole AWS web-application architecture, declared as one resource.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "webstack.io",
    version = "v1alpha1",
    kind = "WebStack",
    namespaced,
    shortname = "ws",
    status = "WebStackStatus",
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name: WebStack names are at most 40 characters, so that every AWS name derived from them fits AWS's limits"),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.outputs.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.frontend) || self.frontend.kind != 'Tier' || (has(self.backend) && self.backend.tiers.exists(t, t.name == self.frontend.tier))").message("frontend.tier must name a tier of spec.backend.tiers").field_path(".frontend.tier"))]
#[x_kube(validation = Rule::new("!has(self.buckets) || self.buckets.all(b, !has(b.notifications) || b.notifications.all(n, has(self.functions) && self.functions.exists(f, f.name == n.functionName)))").message("a bucket notification names a function that spec.functions does not define").field_path(".buckets"))]
#[x_kube(validation = Rule::new("!has(self.functions) || self.functions.all(f, !has(f.triggers) || f.triggers.all(t, !has(t.dynamodbStream) || (has(self.tables) && self.tables.exists(x, x.name == t.dynamodbStream.table && has(x.stream)))))").message("a dynamodbStream trigger names a table of spec.tables that has a stream").field_path(".functions"))]
#[x_kube(validation = Rule::new("!has(self.functions) || self.functions.all(f, !has(f.triggers) || f.triggers.all(t, (!has(t.httpRoute) && !has(t.authorizer)) || has(self.httpApi)))").message("httpRoute and authorizer triggers need spec.httpApi").field_path(".functions"))]
#[x_kube(validation = Rule::new("!has(self.functions) || self.functions.all(f, !has(f.triggers) || f.triggers.all(t, !has(t.cognito) || (has(self.identity) && self.identity.kind == 'Cognito')))").message("cognito triggers need spec.identity.kind Cognito").field_path(".functions"))]
#[x_kube(validation = Rule::new("!has(self.functions) || self.functions.all(f, self.functions.exists_one(g, g.name == f.name))").message("function names must be unique").field_path(".functions"))]
#[x_kube(validation = Rule::new("!has(self.buckets) || self.buckets.all(b, self.buckets.exists_one(c, c.name == b.name))").message("bucket names must be unique").field_path(".buckets"))]
#[x_kube(validation = Rule::new("!has(self.tables) || self.tables.all(t, self.tables.exists_one(u, u.name == t.name))").message("table names must be unique").field_path(".tables"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !self.cdn.defaultOrigin.startsWith('bucket/') || (has(self.buckets) && self.buckets.exists(b, 'bucket/' + b.name == self.cdn.defaultOrigin))").message("a CDN origin bucket/<name> must name a bucket of spec.buckets").field_path(".cdn.defaultOrigin"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.cdn.behaviors) || self.cdn.behaviors.all(b, !b.origin.startsWith('bucket/') || (has(self.buckets) && self.buckets.exists(x, 'bucket/' + x.name == b.origin)))").message("a CDN origin bucket/<name> must name a bucket of spec.buckets").field_path(".cdn.behaviors"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !self.cdn.defaultOrigin.startsWith('tier/') || (has(self.backend) && self.backend.tiers.exists(t, 'tier/' + t.name == self.cdn.defaultOrigin))").message("a CDN origin tier/<name> must name a tier of spec.backend.tiers").field_path(".cdn.defaultOrigin"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.cdn.behaviors) || self.cdn.behaviors.all(b, !b.origin.startsWith('tier/') || (has(self.backend) && self.backend.tiers.exists(t, 'tier/' + t.name == b.origin)))").message("a CDN origin tier/<name> must name a tier of spec.backend.tiers").field_path(".cdn.behaviors"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || ((self.cdn.defaultOrigin != 'frontend' || (has(self.frontend) && self.frontend.kind != 'None')) && (self.cdn.defaultOrigin != 'http-api' || has(self.httpApi)))").message("the CDN's default origin needs a frontend (or spec.httpApi for http-api)").field_path(".cdn.defaultOrigin"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.backend) || self.backend.tiers.all(t, !has(t.loadBalancer) || !has(t.loadBalancer.scheme) || t.loadBalancer.scheme != 'Internal' || !(self.cdn.defaultOrigin == 'tier/' + t.name || (self.cdn.defaultOrigin == 'frontend' && (has(self.frontend) && self.frontend.kind == 'Tier' && has(self.frontend.tier) && self.frontend.tier == t.name))))").message("the CDN's default origin is a tier whose load balancer is internal, which CloudFront cannot reach").field_path(".cdn.defaultOrigin"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.cdn.behaviors) || !has(self.backend) || self.backend.tiers.all(t, !has(t.loadBalancer) || !has(t.loadBalancer.scheme) || t.loadBalancer.scheme != 'Internal' || !self.cdn.behaviors.exists(b, b.origin == 'tier/' + t.name || (b.origin == 'frontend' && (has(self.frontend) && self.frontend.kind == 'Tier' && has(self.frontend.tier) && self.frontend.tier == t.name))))").message("a CDN behavior's origin is a tier whose load balancer is internal, which CloudFront cannot reach").field_path(".cdn.behaviors"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.frontend) || self.frontend.kind != 'S3' || !has(self.frontend.s3) || !has(self.frontend.s3.encryption) || self.frontend.s3.encryption != 'Kms' || !(self.cdn.defaultOrigin == 'frontend' || (has(self.cdn.behaviors) && self.cdn.behaviors.exists(b, b.origin == 'frontend')))").message("the CDN serves the frontend's bucket: encrypt it with S3Managed (CloudFront's origin access control cannot read objects under the AWS-managed KMS key)").field_path(".frontend.s3.encryption"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.buckets) || self.buckets.all(x, !has(x.encryption) || x.encryption != 'Kms' || !(self.cdn.defaultOrigin == 'bucket/' + x.name || (has(self.cdn.behaviors) && self.cdn.behaviors.exists(b, b.origin == 'bucket/' + x.name))))").message("the CDN serves a bucket encrypted with KMS: encrypt it with S3Managed (CloudFront's origin access control cannot read objects under the AWS-managed KMS key)").field_path(".buckets"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.cdn.certificate) || (has(self.certificates) && self.certificates.exists(c, c.name == self.cdn.certificate))").message("cdn.certificate must name a certificate of spec.certificates").field_path(".cdn.certificate"))]
#[x_kube(validation = Rule::new("!has(self.backend) || self.backend.tiers.all(t, !has(t.loadBalancer) || !has(t.loadBalancer.certificate) || (has(self.certificates) && self.certificates.exists(c, c.name == t.loadBalancer.certificate)))").message("a load balancer's certificate must name a certificate of spec.certificates").field_path(".backend.tiers"))]
#[x_kube(validation = Rule::new("!has(self.dns) || !has(self.dns.records) || self.dns.records.all(r, (r.target != 'cdn' || has(self.cdn)) && (r.target != 'http-api' || has(self.httpApi)) && (!r.target.startsWith('tier/') || (has(self.backend) && self.backend.tiers.exists(t, 'tier/' + t.name == r.target))))").message("a DNS record's target (cdn, http-api or tier/<name>) must exist in the spec").field_path(".dns.records"))]
#[x_kube(validation = Rule::new("!has(self.frontend) || self.frontend.kind != 'InCluster' || !has(self.backend) || !self.backend.tiers.exists(t, t.name == 'frontend')").message("no backend tier may be named frontend next to an in-cluster frontend: their objects would share a name").field_path(".backend.tiers"))]
#[x_kube(validation = Rule::new("!has(self.pipeline) || (has(self.repositories) && self.repositories.exists(r, r.name == self.pipeline.repository))").message("pipeline.repository must name a repository of spec.repositories").field_path(".pipeline.repository"))]
#[x_kube(validation = Rule::new("!has(self.pipeline) || (has(self.backend) && self.backend.tiers.exists(t, t.name == self.pipeline.tier))").message("pipeline.tier must name a tier of spec.backend.tiers").field_path(".pipeline.tier"))]
#[x_kube(validation = Rule::new("!has(self.database) || self.database.kind != 'Rds' || !has(self.network.securityGroups) || !has(self.network.securityGroups.databasePort) || self.network.securityGroups.databasePort == (self.database.rds.engine == 'Postgres' ? 5432 : 3306)").message("network.securityGroups.databasePort disagrees with the database engine's port; leave it unset").field_path(".network.securityGroups.databasePort"))]
#[x_kube(validation = Rule::new("!has(self.database) || self.database.kind != 'Rds' || (has(self.network.availabilityZones) ? size(self.network.availabilityZones) >= 2 : (!has(self.network.azCount) || self.network.azCount >= 2))").message("an RDS database needs subnets in at least two availability zones").field_path(".network.azCount"))]
#[x_kube(validation = Rule::new("!has(self.backend) || self.backend.tiers.all(t, !has(t.ec2) || !t.ec2.elasticIp || t.subnets == 'Public')").message("an instance with an Elastic IP must run in the public subnets").field_path(".backend.tiers"))]
#[x_kube(validation = Rule::new("!has(self.backend) || self.backend.tiers.all(t, t.subnets != 'Private' || t.runtime == 'InCluster' || has(self.network.privateSubnets))").message("a tier in private subnets needs network.privateSubnets").field_path(".backend.tiers"))]
#[x_kube(validation = Rule::new("!has(self.monitoring) || !has(self.monitoring.alarms) || self.monitoring.alarms.all(a, !(a.metric in ['LoadBalancer5xx', 'ResponseTime', 'RequestCount', 'Cpu', 'Memory']) || (has(a.target) && has(self.backend) && self.backend.tiers.exists(t, t.name == a.target)))").message("an alarm on a tier metric names a tier of spec.backend.tiers in target").field_path(".monitoring.alarms"))]
#[x_kube(validation = Rule::new("!has(self.monitoring) || !has(self.monitoring.alarms) || self.monitoring.alarms.all(a, a.metric != 'FunctionErrors' || (has(a.target) && has(self.functions) && self.functions.exists(f, f.name == a.target)))").message("a FunctionErrors alarm names a function of spec.functions in target").field_path(".monitoring.alarms"))]
#[x_kube(validation = Rule::new("!has(self.monitoring) || !has(self.monitoring.alarms) || self.monitoring.alarms.all(a, (!(a.metric in ['DatabaseCpu', 'DatabaseFreeStorage']) || (has(self.database) && self.database.kind == 'Rds')) && (a.metric != 'CacheCpu' || has(self.cache)) && (a.metric != 'Cdn5xxRate' || has(self.cdn)))").message("an alarm measures a database, cache or CDN that the spec does not declare").field_path(".monitoring.alarms"))]
#[x_kube(validation = Rule::new("!has(self.httpApi) || !has(self.httpApi.tierRoutes) || self.httpApi.tierRoutes.all(r, has(self.backend) && self.backend.tiers.exists(t, t.name == r.tier))").message("an HTTP API tier route names a tier of spec.backend.tiers").field_path(".httpApi.tierRoutes"))]
#[x_kube(validation = Rule::new("!has(self.httpApi) || !has(self.httpApi.authorization) || self.httpApi.authorization != 'Function' || (has(self.functions) && self.functions.exists_one(f, has(f.triggers) && f.triggers.exists(t, has(t.authorizer) && t.authorizer)))").message("authorization Function needs exactly one function with an authorizer trigger").field_path(".httpApi.authorization"))]
#[x_kube(validation = Rule::new("!has(self.httpApi) || !has(self.httpApi.authorization) || self.httpApi.authorization != 'Cognito' || (has(self.identity) && self.identity.kind == 'Cognito')").message("authorization Cognito needs spec.identity.kind Cognito").field_path(".httpApi.authorization"))]
#[x_kube(validation = Rule::new("!has(self.cdn) || !has(self.cdn.aliases) || size(self.cdn.aliases) == 0 || (has(self.cdn.certificate) && has(self.certificates) && self.certificates.exists(c, c.name == self.cdn.certificate && self.cdn.aliases.all(a, ([c.domain] + (has(c.subjectAlternativeNames) ? c.subjectAlternativeNames : [])).exists(d, (d == a || (d.startsWith('*.') && size(a) > size(d) - 1 && a.endsWith(d.substring(1)) && !a.substring(0, size(a) - size(d) + 1).contains('.')))))))").message("every CDN alias must be covered by the certificate cdn.certificate names (CloudFront refuses an alias its certificate does not cover)").field_path(".cdn.aliases"))]
#[x_kube(validation = Rule::new("!has(self.httpApi) || !has(self.httpApi.domain) || (has(self.certificates) && self.certificates.exists(c, c.name == self.httpApi.domain.certificate && ([c.domain] + (has(c.subjectAlternativeNames) ? c.subjectAlternativeNames : [])).exists(d, (d == self.httpApi.domain.name || (d.startsWith('*.') && size(self.httpApi.domain.name) > size(d) - 1 && self.httpApi.domain.name.endsWith(d.substring(1)) && !self.httpApi.domain.name.substring(0, size(self.httpApi.domain.name) - size(d) + 1).contains('.'))))))").message("httpApi.domain.certificate must name a certificate of spec.certificates that covers httpApi.domain.name").field_path(".httpApi.domain.name"))]
#[x_kube(validation = Rule::new("!has(self.dns) || !has(self.certificates) || self.certificates.all(c, ([c.domain] + (has(c.subjectAlternativeNames) ? c.subjectAlternativeNames : [])).all(n, n == self.dns.zone || n.endsWith('.' + self.dns.zone)))").message("certificate names must lie in the stack's zone (dns.zone), where their validation records are written").field_path(".certificates"))]
#[x_kube(validation = Rule::new("!has(self.dns) || !has(self.httpApi) || !has(self.httpApi.domain) || self.httpApi.domain.name == self.dns.zone || self.httpApi.domain.name.endsWith('.' + self.dns.zone)").message("httpApi.domain.name must lie in the stack's zone (dns.zone)").field_path(".httpApi.domain.name"))]
#[x_kube(validation = Rule::new("!has(self.dns) || !has(self.dns.records) || self.dns.records.all(r, r.target != 'cdn' || (has(self.cdn) && has(self.cdn.aliases) && self.cdn.aliases.exists(d, (d == (r.name == '@' ? self.dns.zone : r.name + '.' + self.dns.zone) || (d.startsWith('*.') && size((r.name == '@' ? self.dns.zone : r.name + '.' + self.dns.zone)) > size(d) - 1 && (r.name == '@' ? self.dns.zone : r.name + '.' + self.dns.zone).endsWith(d.substring(1)) && !(r.name == '@' ? self.dns.zone : r.name + '.' + self.dns.zone).substring(0, size((r.name == '@' ? self.dns.zone : r.name + '.' + self.dns.zone)) - size(d) + 1).contains('.'))))))").message("a DNS record to the CDN must name one of cdn.aliases (CloudFront refuses requests for other names)").field_path(".dns.records"))]
#[x_kube(validation = Rule::new("!has(self.dns) || !has(self.dns.records) || self.dns.records.all(r, r.target != 'http-api' || (has(self.httpApi) && has(self.httpApi.domain) && self.httpApi.domain.name == (r.name == '@' ? self.dns.zone : r.name + '.' + self.dns.zone)))").message("a DNS record to the HTTP API must name httpApi.domain.name").field_path(".dns.records"))]
#[x_kube(validation = Rule::new("!has(self.region) || !has(self.network.availabilityZones) || self.network.availabilityZones.all(z, size(z) > 1 && z.substring(0, size(z) - 1) == self.region)").message("availability zones must be zones of spec.region").field_path(".network.availabilityZones"))]
pub struct WebStackSpec {
    /// AWS region the stack lives in, such as `eu-west-1`. When omitted, the region of the
    /// operator's AWS configuration (`AWS_REGION`) is used. Cannot be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("the region cannot be changed; create a new stack"))]
    #[schemars(length(max = 32))]
    pub region: Option<String>,

    /// An IAM role the operator assumes to build the stack in that role's account, instead
    /// of using its own credentials. In a cluster, the platform administrator names the roles
    /// each namespace may use (the operator's `--role-map`); a role not allowed for the
    /// stack's namespace is refused before any AWS call. Cannot be changed: the resources live
    /// in the role's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.roleArn == oldSelf.roleArn").message("assumeRole.roleArn cannot be changed: the stack's resources live in that role's account; create a new stack"))]
    pub assume_role: Option<AssumeRoleSpec>,

    /// Tags added to every AWS resource of the stack, at most 45: AWS allows 50 per resource
    /// and the operator adds `webstack.io/stack`, `webstack.io/component`, `webstack.io/owner`,
    /// `Name` and, on some, `webstack.io/digest`. Keys starting with `aws:` or `webstack.io/`
    /// are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, !k.lowerAscii().startsWith('aws:') && !k.lowerAscii().startsWith('webstack.io/') && k != 'Name')").message("tag keys starting with aws: or webstack.io/ (in any case), and Name, are reserved"))]
    #[schemars(extend(
        "maxProperties" = 45,
        "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": patterns::TAG_VALUE}
    ))]
    pub tags: BTreeMap<String, String>,

    /// What happens to the AWS resources when the stack is deleted: `Delete` removes them,
    /// `Retain` leaves them in place and removes only the stack's ownership tags.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Encryption keys of the stack's data (buckets, database, secrets).
    #[serde(default)]
    pub encryption: EncryptionSpec,

    /// The network tier: VPC, subnets, gateways, routes, endpoints and security groups.
    pub network: NetworkSpec,

    /// The frontend: a static site on S3, a backend tier, or a Deployment in this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<FrontendSpec>,

    /// Data buckets beside the frontend, such as user uploads and processed assets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub buckets: Vec<BucketSpec>,

    /// The backend tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendSpec>,

    /// Private container registries (ECR) for the stack's images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub repositories: Vec<RepositorySpec>,

    /// The relational database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,

    /// DynamoDB tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub tables: Vec<TableSpec>,

    /// The cache (ElastiCache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,

    /// The Kubernetes Secret through which workloads in this cluster reach the database and
    /// the cache (for a stack with either; written by the operator in a cluster).
    #[serde(default, skip_serializing_if = "ConnectionSecretSpec::is_default")]
    pub connection_secret: ConnectionSecretSpec,

    /// The CDN (CloudFront).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<CdnSpec>,

    /// DNS (Route 53).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,

    /// TLS certificates (ACM), validated through DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub certificates: Vec<CertificateSpec>,

    /// How users sign in: a generated JWT secret or Cognito.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySpec>,

    /// Lambda functions and what triggers them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub functions: Vec<FunctionSpec>,

    /// An HTTP API (API Gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_api: Option<HttpApiSpec>,

    /// A build pipeline (CodePipeline and CodeBuild).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineSpec>,

    /// Logs and alarms (CloudWatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
}

/// The IAM role the stack is built with.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssumeRoleSpec {
    /// The role's ARN, such as `arn:aws:iam::111122223333:role/webstack-team-a`.
    #[schemars(regex(pattern = patterns::ROLE_ARN), length(max = 600))]
    pub role_arn: String,
    /// The external id the role's trust policy asks for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::EXTERNAL_ID), length(min = 2, max = 1224))]
    pub external_id: Option<String>,
}

/// The connection Secret `<stack>-connection`: the database's host, port, name and user and
/// the ARN of the Secrets Manager secret with its password; the cache's host and port.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionSecretSpec {
    /// Copy the database password itself into the Secret (key `DATABASE_PASSWORD`), read
    /// from Secrets Manager at every reconcile. Defaults to false: the password stays in
    /// Secrets Manager and the Secret holds only its ARN.
    #[serde(default)]
    pub include_password: bool,
}

impl ConnectionSecretSpec {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// Encryption keys of the stack.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSpec {
    /// Create a customer-managed KMS key for the stack (with yearly rotation) instead of
    /// the AWS-managed keys. Defaults to false.
    #[serde(default)]
    pub customer_managed_key: bool,
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

/// The CustomResourceDefinition as YAML, as `crds/webstack.yaml` holds it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let yaml = serde_yaml::to_string(&WebStack::crd()).expect("the CRD serializes");
    format!(
        "# Generated by `webstack crd`; do not edit.\n{}",
        quote_yaml11_enum_values(&yaml)
    )
}

/// serde_yaml writes YAML 1.2, where `N` is a string; kubectl and the API server read YAML
/// 1.1, where `N`, `y`, `no`, `on`, ... are booleans. Enum values among those are quoted so
/// that every reader sees the string (DynamoDB's `N` attribute type would otherwise be `false`).
fn quote_yaml11_enum_values(yaml: &str) -> String {
    const YAML11_BOOLS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let mut out = String::with_capacity(yaml.len());
    let mut enum_indent: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if enum_indent.is_some_and(|i| indent < i || !trimmed.starts_with("- ")) {
            enum_indent = None;
        }
        match (enum_indent, trimmed.strip_prefix("- ")) {
            (Some(_), Some(value)) if YAML11_BOOLS.contains(&value) => {
                out.push_str(&format!("{}- '{value}'", &line[..indent]));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
        if trimmed == "enum:" {
            enum_indent = Some(indent);
        }
    }
    out
}

#[cfg(test)]
mod crd_tests;
