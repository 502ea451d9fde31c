//! The AWS side: one module per AWS area, each exposing the engine's small interface
//! ([`crate::engine::Handler`] per kind, [`crate::engine::Observer`] per family) over a shared
//! [`Scope`].

pub mod alarms;
pub mod backend;
pub mod cache;
pub mod cdn;
pub mod certificates;
pub mod client;
pub mod database;
pub mod dns;
pub mod error;
pub mod global;
pub mod keys;
pub mod logs;
pub mod naming;
pub mod network;
pub mod notify;
pub mod registry;
pub mod secrets;
pub mod storage;
pub mod tags;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_types::SdkConfig;
use sha2::{Digest, Sha256};

use crate::engine::{Engine, Resolved};
use client::AwsApi;

/// The tag that says which stack owns a resource: `<namespace>/<name>`.
pub const STACK_TAG: &str = "webstack.io/stack";
/// The tag that says which part of the stack a resource is: `<tier>/<role>`.
pub const COMPONENT_TAG: &str = "webstack.io/component";
/// The tag that says who created the resource for the stack: the WebStack object's UID in a
/// cluster, or the CLI's identity. A stack of the same name elsewhere never touches it.
pub const OWNER_TAG: &str = "webstack.io/owner";

/// Who a stack is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackRef {
    pub namespace: String,
    pub name: String,
    /// The Kubernetes UID; for the CLI, a stable value derived from the namespace and name.
    pub uid: String,
}

impl StackRef {
    pub fn new(namespace: &str, name: &str, uid: Option<&str>) -> Self {
        let uid = uid
            .map(str::to_owned)
            .unwrap_or_else(|| hex_digest(&format!("cli:{namespace}/{name}"))[..32].to_owned());
        StackRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid,
        }
    }

    /// The value of the [`STACK_TAG`].
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The stack as the engine knows it: its tag value and its owner.
    pub fn key(&self) -> crate::engine::StackKey {
        crate::engine::StackKey::new(self.id(), self.uid.clone())
    }
}

pub fn hex_digest(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What every handler works with: the stack's identity and tags, the AWS clients, and the call
/// layer that counts and paces every call.
#[derive(Clone)]
pub struct Scope {
    pub stack: StackRef,
    pub region: String,
    /// The user's tags from `spec.tags`.
    pub user_tags: BTreeMap<String, String>,
    pub api: Arc<AwsApi>,
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub acm: aws_sdk_acm::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    /// The existing hosted zone the spec's DNS names (`spec.dns.createZone: false`), found by
    /// its name when the stack is prepared.
    pub existing_zone: Option<String>,
    /// More zones whose records an observation of every stack reads: the existing zones of
    /// all the stacks it serves.
    pub observed_zones: Vec<String>,
    /// Values from outside the spec (Kubernetes Secrets) that handlers hand to AWS.
    pub inputs: Arc<crate::inputs::Inputs>,
    /// IAM, CloudFront and Route 53 are global: their clients reach [`GLOBAL_REGION`].
    pub iam: aws_sdk_iam::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    pub route53: aws_sdk_route53::Client,
    /// ACM in [`GLOBAL_REGION`], where CloudFront reads certificates.
    pub acm_global: aws_sdk_acm::Client,
    /// The configuration the clients were built from, for clients of other services and
    /// regions.
    config: SdkConfig,
    /// The same stack with its clients in [`GLOBAL_REGION`], built on first use.
    global: Arc<std::sync::OnceLock<Scope>>,
}

/// Reads of single resources (an attribute, a resource's settings) sent at once by one
/// observation.
pub const READS_AT_ONCE: usize = 4;

/// Where AWS keeps the resources of its global services (IAM, CloudFront, Route 53) and the
/// certificates CloudFront reads.
pub const GLOBAL_REGION: &str = "us-east-1";

/// Errors before any AWS call can be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no AWS region: set spec.region or AWS_REGION")]
    NoRegion,
    #[error("no AWS credentials could be found: {0}")]
    NoCredentials(String),
}

/// Where and as whom to reach AWS. The defaults take everything from the standard chain
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials from the environment, profiles, IMDS);
/// tests set an endpoint and credentials explicitly so that each can have its own emulator.
#[derive(Clone, Debug, Default)]
pub struct Connect {
    pub endpoint_url: Option<String>,
    pub credentials: Option<aws_credential_types::Credentials>,
    /// A call layer to share (its counts and rate limits); a new one otherwise.
    pub api: Option<Arc<AwsApi>>,
    /// One observation per account and region serving every stack's reconcile (the
    /// controller); each stack reads alone when unset (the CLI).
    pub sharing: Option<Arc<crate::engine::shared::Sharing>>,
    /// The pace of AWS calls per account, region and service; the default otherwise.
    pub rate_limit: Option<client::RateLimit>,
    /// Configurations and call layers already built, by region: credentials are resolved once
    /// per region and reused by every reconcile, not rebuilt each time.
    connected: Arc<Mutex<HashMap<String, Connected>>>,
}

/// A region's configuration and call layer.
type Connected = (SdkConfig, Arc<AwsApi>);

impl Connect {
    /// The configuration and call layer for `region` (the chain's default region when
    /// `None`), built on first use.
    pub async fn connect(&self, region: Option<&str>) -> Result<Connected, ConnectError> {
        self.connect_as(region, None).await
    }

    /// [`Connect::connect`] as `role` (assumed with the chain's credentials, renewed before
    /// they expire), or as the chain's own identity.
    pub async fn connect_as(
        &self,
        region: Option<&str>,
        role: Option<&crate::api::AssumeRoleSpec>,
    ) -> Result<Connected, ConnectError> {
        let key = format!(
            "{}|{}",
            region.unwrap_or_default(),
            role.map(|r| r.role_arn.as_str()).unwrap_or_default()
        );
        if let Some(found) = self.lock().get(&key) {
            return Ok(found.clone());
        }
        let mut config = load_config(region, self).await?;
        if let Some(role) = role {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
                .session_name("webstack-operator")
                .configure(&config);
            if let Some(id) = &role.external_id {
                provider = provider.external_id(id);
            }
            let provider = provider.build().await;
            config = config
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        let api = match self.api.clone() {
            Some(a) => a,
            None => {
                let region = config.region().map(|r| r.to_string()).unwrap_or_default();
                // A role's credentials change as they are renewed; the role does not.
                let account = match role {
                    Some(r) => r.role_arn.clone(),
                    None => account_key(&config).await?,
                };
                let api = AwsApi::new(account, region);
                Arc::new(match self.rate_limit {
                    Some(limit) => api.with_rate_limit(limit),
                    None => api,
                })
            }
        };
        let pair = (config, api);
        self.lock().insert(key, pair.clone());
        Ok(pair)
    }

    /// Every AWS call made through this connection so far, in every region.
    pub fn call_counts(&self) -> client::CallCounts {
        let mut apis: Vec<Arc<AwsApi>> = Vec::new();
        for (_, api) in self.lock().values() {
            if !apis.iter().any(|a| Arc::ptr_eq(a, api)) {
                apis.push(api.clone());
            }
        }
        let mut out = client::CallCounts::default();
        for api in apis {
            out.add(&api.counts());
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connected>> {
        self.connected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Loads the AWS configuration with the SDK's own retries off: the call layer retries.
pub async fn load_config(
    region: Option<&str>,
    connect: &Connect,
) -> Result<SdkConfig, ConnectError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    if let Some(url) = &connect.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = &connect.credentials {
        loader = loader.credentials_provider(c.clone());
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(ConnectError::NoRegion);
    }
    Ok(config)
}

/// The identity used to share rate limits: the credentials' access key (one per account user).
pub async fn account_key(config: &SdkConfig) -> Result<String, ConnectError> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| ConnectError::NoCredentials("no provider configured".into()))?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| ConnectError::NoCredentials(e.to_string()))?;
    Ok(creds.access_key_id().to_owned())
}

impl Scope {
    pub fn new(
        stack: StackRef,
        config: &SdkConfig,
        api: Arc<AwsApi>,
        user_tags: BTreeMap<String, String>,
    ) -> Self {
        let global = config
            .to_builder()
            .region(Region::new(GLOBAL_REGION))
            .build();
        Scope {
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            ec2: aws_sdk_ec2::Client::new(config),
            rds: aws_sdk_rds::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            acm: aws_sdk_acm::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            ecr: aws_sdk_ecr::Client::new(config),
            elasticache: aws_sdk_elasticache::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            s3: aws_sdk_s3::Client::new(config),
            iam: aws_sdk_iam::Client::new(&global),
            cloudfront: aws_sdk_cloudfront::Client::new(&global),
            route53: aws_sdk_route53::Client::new(&global),
            acm_global: aws_sdk_acm::Client::new(&global),
            config: config.clone(),
            global: Arc::default(),
            inputs: Arc::default(),
            existing_zone: None,
            observed_zones: Vec::new(),
            stack,
            user_tags,
            api,
        }
    }

    /// The configuration for a client of a resource that lives in `region` (IAM, CloudFront and
    /// Route 53 in [`GLOBAL_REGION`], CloudFront's certificate too), with the same credentials
    /// and endpoint as the stack's own.
    pub fn config_in(&self, region: &str) -> SdkConfig {
        self.config
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    /// The stack with every client in [`GLOBAL_REGION`], for the resources that must live
    /// there ([`global`]).
    pub fn global(&self) -> &Scope {
        self.global.get_or_init(|| {
            let mut s = Scope::new(
                self.stack.clone(),
                &self.config_in(GLOBAL_REGION),
                self.api.clone(),
                self.user_tags.clone(),
            );
            s.inputs = self.inputs.clone();
            s.existing_zone = self.existing_zone.clone();
            s
        })
    }

    /// The configuration of the stack's own region.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// Every tag a resource of `node` carries: the user's, then ownership and `Name`.
    pub fn tags(&self, node: &Resolved) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = self
            .user_tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.push((STACK_TAG.to_owned(), self.stack.id()));
        tags.push((COMPONENT_TAG.to_owned(), node.component.clone()));
        tags.push((OWNER_TAG.to_owned(), self.stack.uid.clone()));
        if !node.name.is_empty() {
            tags.push(("Name".to_owned(), node.name.clone()));
        }
        tags
    }

    /// An idempotency token for creating `node`: the same stack, role and desired properties
    /// give the same token, so a create repeated after a lost answer is a no-op on AWS's side.
    /// `salt` distinguishes a deliberate second attempt.
    pub fn token(&self, node: &Resolved, salt: &str) -> String {
        let props = serde_json::to_string(&node.props).unwrap_or_default();
        hex_digest(&format!(
            "{}|{}|{}|{}|{}",
            self.stack.uid, node.id.kind, node.id.role, props, salt
        ))[..32]
            .to_owned()
    }
}

/// The observation of a resource just created from `node`: the stack's, with its owner, and
/// the properties it was created with.
pub(crate) fn created(scope: &Scope, node: &Resolved, id: &str) -> crate::engine::Observed {
    let mut o =
        crate::engine::Observed::new(node.id.kind, scope.stack.id(), node.id.role.clone(), id)
            .owner(Some(scope.stack.uid.clone()));
    o.props = node.props.clone();
    o
}

/// Every page of a paginated listing (`send` takes the previous page's token or marker);
/// each page is one counted call.
pub(crate) async fn pages<O, E, F, Fut>(
    scope: &Scope,
    service: &'static str,
    operation: &'static str,
    send: F,
    next: fn(&O) -> Option<&str>,
) -> Result<Vec<O>, error::AwsError>
where
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<
        Output = Result<
            O,
            aws_smithy_runtime_api::client::result::SdkError<
                E,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
    >,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = scope
            .api
            .call(service, operation, client::Effect::Read, || {
                send(token.clone())
            })
            .await?;
        token = next(&page).map(str::to_owned);
        out.push(page);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The engine with every area built so far.
pub fn engine() -> Engine<Scope> {
    let engine = network::register(Engine::new());
    let engine = certificates::register(backend::register(engine));
    let engine = cache::register(registry::register(engine));
    let engine = logs::register(secrets::register(engine));
    let engine = alarms::register(notify::register(engine));
    let engine = storage::register(keys::register(engine));
    let engine = dns::register(cdn::register(engine));
    database::register(engine)
}

/// The role of a resource from its component tag `<tier>/<role>`.
pub fn role_from_component(component: &str) -> &str {
    component
        .split_once('/')
        .map(|(_, r)| r)
        .unwrap_or(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_stacks_get_a_stable_uid() {
        let a = StackRef::new("default", "shop", None);
        let b = StackRef::new("default", "shop", None);
        let c = StackRef::new("default", "other", None);
        assert_eq!(a.uid, b.uid);
        assert_ne!(a.uid, c.uid);
        assert_eq!(a.id(), "default/shop");
        assert_eq!(StackRef::new("ns", "x", Some("uid-1")).uid, "uid-1");
    }

    #[tokio::test]
    async fn a_scope_reaches_other_regions_with_the_same_credentials_and_endpoint() {
        let connect = Connect {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            credentials: Some(aws_credential_types::Credentials::new(
                "test", "test", None, None, "test",
            )),
            ..Default::default()
        };
        let (config, api) = connect.connect(Some("eu-north-1")).await.unwrap();
        let (again, same_api) = connect.connect(Some("eu-north-1")).await.unwrap();
        assert!(Arc::ptr_eq(&api, &same_api), "built once per region");
        assert_eq!(again.region(), config.region());
        let scope = Scope::new(
            StackRef::new("ns", "s", Some("uid-1")),
            &config,
            api,
            BTreeMap::new(),
        );
        let global = scope.config_in(GLOBAL_REGION);
        assert_eq!(global.region().unwrap().as_ref(), "us-east-1");
        assert_eq!(global.endpoint_url(), Some("http://127.0.0.1:9"));
        assert!(global.credentials_provider().is_some());
        assert_eq!(scope.region, "eu-north-1");
    }

    #[test]
    fn every_resource_carries_at_most_the_tags_the_api_budgets_for() {
        use crate::api::validate::names::OPERATOR_TAGS;
        let user: BTreeMap<String, String> =
            (0..3).map(|i| (format!("k{i}"), "v".into())).collect();
        let scope = Scope::new(
            StackRef::new("ns", "s", Some("uid-1")),
            &SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
            Arc::new(AwsApi::new("a", "r")),
            user.clone(),
        );
        let node = Resolved {
            id: crate::engine::NodeId::new(crate::engine::Kind("Vpc"), "vpc"),
            component: "network/vpc".into(),
            name: "s-vpc".into(),
            props: BTreeMap::new(),
        };
        let tags = scope.tags(&node);
        assert_eq!(tags.len(), user.len() + OPERATOR_TAGS);
        assert!(tags.contains(&(OWNER_TAG.to_owned(), "uid-1".to_owned())));
    }

    #[test]
    fn components_carry_the_role() {
        assert_eq!(
            role_from_component("network/public-eu-west-1a"),
            "public-eu-west-1a"
        );
        assert_eq!(role_from_component("vpc"), "vpc");
    }
}
