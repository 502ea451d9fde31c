//! The AWS side: one module per AWS area, each exposing the engine's small interface
//! ([`crate::engine::Handler`] per kind, [`crate::engine::Observer`] per family) over a shared
//! [`Scope`].

pub mod client;
pub mod error;
pub mod network;

use std::collections::BTreeMap;
use std::sync::Arc;
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
}

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
        Scope {
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            ec2: aws_sdk_ec2::Client::new(config),
            stack,
            user_tags,
            api,
        }
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

/// The engine with every area built so far.
pub fn engine() -> Engine<Scope> {
    network::register(Engine::new())
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

    #[test]
    fn components_carry_the_role() {
        assert_eq!(
            role_from_component("network/public-eu-west-1a"),
            "public-eu-west-1a"
        );
        assert_eq!(role_from_component("vpc"), "vpc");
    }
}
