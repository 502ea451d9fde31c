//! Identity, functions, the HTTP API and the build pipeline.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How users sign in.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.kind != 'Cognito' || has(self.cognito)").message("kind Cognito needs the cognito settings").field_path(".cognito"))]
pub struct IdentitySpec {
    /// `Jwt`: the application signs its own tokens with a secret the operator generates and
    /// keeps in Secrets Manager (and in a Kubernetes Secret). `Cognito`: a Cognito user pool.
    pub kind: IdentityKind,

    /// The generated signing secret, for kind `Jwt`.
    #[serde(default)]
    pub jwt: JwtSecret,

    /// The user pool, for kind `Cognito`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito: Option<CognitoSpec>,
}

/// Identity providers.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum IdentityKind {
    Jwt,
    Cognito,
}

/// A generated JWT signing secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtSecret {
    /// Random bytes in the secret. Defaults to 64.
    #[serde(default = "sixty_four")]
    #[schemars(range(min = 32, max = 512))]
    pub length_bytes: u16,
    /// Rotate the secret every this many days; unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 365))]
    pub rotation_days: Option<u16>,
}

fn sixty_four() -> u16 {
    64
}

impl Default for JwtSecret {
    fn default() -> Self {
        JwtSecret {
            length_bytes: 64,
            rotation_days: None,
        }
    }
}

/// A Cognito user pool with its app clients.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CognitoSpec {
    /// Users sign in with `Email` (the default) or a `Username`.
    #[serde(default)]
    pub sign_in: SignIn,
    /// `Off`, `Optional` (the default) or `Required`.
    #[serde(default)]
    pub mfa: Mfa,
    /// Shortest password allowed. Defaults to 12.
    #[serde(default = "twelve")]
    #[schemars(range(min = 8, max = 99))]
    pub password_min_length: u8,
    /// Users may sign themselves up. Defaults to true.
    #[serde(default = "super::apps::yes")]
    pub self_sign_up: bool,
    /// A prefix for the hosted sign-in domain (`<prefix>.auth.<region>.amazoncognito.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9](-?[a-z0-9])*$"))]
    pub domain_prefix: Option<String>,
    /// App clients, such as the single-page app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub clients: Vec<CognitoClient>,
}

fn twelve() -> u8 {
    12
}

/// How users sign in to Cognito.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum SignIn {
    #[default]
    Email,
    Username,
}

/// Multi-factor authentication.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Mfa {
    Off,
    #[default]
    Optional,
    Required,
}

/// A Cognito app client.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CognitoClient {
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Where the hosted UI may send users after sign-in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253), regex(pattern = super::patterns::REDIRECT_URL)))]
    pub callback_urls: Vec<String>,
    /// Where the hosted UI may send users after sign-out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253), regex(pattern = super::patterns::REDIRECT_URL)))]
    pub logout_urls: Vec<String>,
}

/// A Lambda function.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(has(self.code.inline) ? 1 : 0) + (has(self.code.s3) ? 1 : 0) + (has(self.code.image) ? 1 : 0) == 1").message("code needs exactly one of inline, s3 or image").field_path(".code"))]
#[x_kube(validation = Rule::new("has(self.code.image) || has(self.runtime)").message("a function from inline or S3 code needs a runtime").field_path(".runtime"))]
pub struct FunctionSpec {
    /// The function's name within the stack, such as `thumbnails`.
    #[x_kube(validation = Rule::new("self.matches('^[a-z][a-z0-9-]{0,31}$')").message("function names are 1 to 32 lower-case letters, digits and '-', starting with a letter"))]
    #[schemars(length(max = 32))]
    pub name: String,

    /// The runtime, such as `python3.12` or `nodejs20.x` (not for container images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['python3.9', 'python3.10', 'python3.11', 'python3.12', 'python3.13', 'nodejs18.x', 'nodejs20.x', 'nodejs22.x', 'java17', 'java21', 'provided.al2023', 'ruby3.3', 'dotnet8']").message("not a Lambda runtime AWS supports"))]
    #[schemars(length(max = 32))]
    pub runtime: Option<String>,

    /// The handler, such as `app.handler`. Defaults to `index.handler`.
    #[serde(default = "index_handler")]
    #[schemars(length(min = 1, max = 128))]
    pub handler: String,

    /// Memory in MiB, 128 to 10240. Defaults to 128.
    #[serde(default = "one_two_eight")]
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mib: u32,

    /// Timeout in seconds, 1 to 900. Defaults to 10.
    #[serde(default = "ten_u32")]
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: u32,

    /// The code.
    pub code: FunctionCode,

    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,

    /// Run inside the VPC's private subnets (to reach the database or the cache).
    #[serde(default)]
    pub in_vpc: bool,

    /// What invokes the function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub triggers: Vec<FunctionTrigger>,
}

fn index_handler() -> String {
    "index.handler".into()
}
fn one_two_eight() -> u32 {
    128
}
fn ten_u32() -> u32 {
    10
}

/// A function's code: exactly one source.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionCode {
    /// Source of a single file, zipped by the operator (small functions, such as a CORS
    /// preflight answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32768))]
    pub inline: Option<String>,
    /// A zip in S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Object>,
    /// A container image: a full reference or `<repository>:<tag>` of `spec.repositories`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = super::patterns::IMAGE))]
    pub image: Option<String>,
}

/// An object in S3.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Object {
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
}

/// What invokes a function: exactly one of the members.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(has(self.dynamodbStream) ? 1 : 0) + (has(self.cognito) ? 1 : 0) + (has(self.httpRoute) ? 1 : 0) + (has(self.authorizer) ? 1 : 0) == 1").message("a trigger sets exactly one of dynamodbStream, cognito, httpRoute or authorizer"))]
pub struct FunctionTrigger {
    /// Records of a table's stream (a table of `spec.tables` with a stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb_stream: Option<StreamTrigger>,
    /// A Cognito user-pool event, such as `PostConfirmation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito: Option<CognitoTrigger>,
    /// A route of the HTTP API, such as `GET /uploads/presign` or `OPTIONS /{proxy+}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = super::patterns::ROUTE))]
    pub http_route: Option<String>,
    /// The function is the HTTP API's authorizer (a Lambda authorizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<bool>,
}

/// A DynamoDB stream trigger. (S3 triggers are declared on the bucket, as `notifications`.)
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamTrigger {
    /// A table of `spec.tables`.
    #[schemars(length(max = 64))]
    pub table: String,
    /// Records per invocation, 1 to 1000. Defaults to 100.
    #[serde(default = "hundred_u16")]
    #[schemars(range(min = 1, max = 1000))]
    pub batch_size: u16,
    /// `Latest` (the default) or `TrimHorizon`.
    #[serde(default)]
    pub starting_position: StartingPosition,
}

fn hundred_u16() -> u16 {
    100
}

/// Where a stream trigger starts reading.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum StartingPosition {
    #[default]
    Latest,
    TrimHorizon,
}

/// Cognito user-pool triggers.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum CognitoTrigger {
    PreSignUp,
    PostConfirmation,
    PreAuthentication,
    PostAuthentication,
    PreTokenGeneration,
}

/// An API Gateway HTTP API. Function routes come from the functions' `httpRoute` triggers.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpApiSpec {
    /// Origins browsers may call the API from, such as `https://example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253)))]
    pub cors_origins: Vec<String>,
    /// Routes to backend tiers through a VPC link, such as `ANY /api/{proxy+}` to `api`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tier_routes: Vec<TierRoute>,
    /// Require a Cognito token (`Cognito`), ask the function marked `authorizer` (`Function`),
    /// or let every request through (`None`, the default).
    #[serde(default)]
    pub authorization: Authorization,
    /// A custom domain (with a certificate of `spec.certificates` that covers it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<ApiDomain>,
}

/// A route of the HTTP API to a backend tier.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierRoute {
    /// The route, such as `ANY /api/{proxy+}`.
    #[schemars(length(max = 256), regex(pattern = super::patterns::ROUTE))]
    pub route: String,
    /// A tier of `spec.backend.tiers`.
    #[schemars(length(max = 16))]
    pub tier: String,
}

/// How the HTTP API authorizes requests.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Authorization {
    #[default]
    None,
    Cognito,
    Function,
}

/// A custom domain of the HTTP API.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiDomain {
    /// The domain, such as `api.example.com`.
    #[schemars(length(max = 253), regex(pattern = super::patterns::DOMAIN))]
    pub name: String,
    /// A certificate of `spec.certificates`.
    #[schemars(length(max = 32))]
    pub certificate: String,
}

/// A build pipeline: source, an image build, a push to ECR and a rollout of a tier.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    /// The source repository, as `owner/name`, reached through a CodeStar connection.
    #[schemars(
        length(min = 3, max = 200),
        regex(pattern = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    )]
    pub source_repository: String,
    /// The branch to build. Defaults to `main`.
    #[serde(default = "main_branch")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: String,
    /// The ARN of the CodeStar connection to the source host.
    #[schemars(
        length(max = 256),
        regex(pattern = r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):")
    )]
    pub connection_arn: String,
    /// The ECR repository (a name of `spec.repositories`) the image is pushed to.
    #[schemars(length(max = 64))]
    pub repository: String,
    /// The tier rolled out with the new image.
    #[schemars(length(max = 16))]
    pub tier: String,
    /// The build specification; defaults to a Docker build of the repository root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub buildspec: Option<String>,
}

fn main_branch() -> String {
    "main".into()
}
