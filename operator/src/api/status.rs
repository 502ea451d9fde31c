//! What the operator writes back: phase, conditions, outputs and the inventory.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a WebStack.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebStackStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The AWS region the stack's resources live in, recorded at the first reconcile; the
    /// operator refuses a spec that moves the stack to another region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// A one-word summary: Pending, Provisioning, Ready, Degraded, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// `Ready` and one condition per tier (`NetworkReady`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Identifiers and addresses the stack produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,

    /// Every AWS resource the stack owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryItem>,

    /// Resources AWS is still creating or deleting (a database, a distribution), with the
    /// state AWS reports and since when; what depends on them waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingResource>,
}

/// A resource that is still settling.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingResource {
    pub kind: String,
    pub role: String,
    pub id: String,
    /// The state AWS reports, such as `creating`.
    pub state: String,
    /// When the operator first saw it settling (RFC 3339).
    pub since: String,
}

/// A one-word summary of the stack's state.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    Pending,
    Provisioning,
    Ready,
    /// What the operator can build is in place; some declared tiers are not built (see the
    /// conditions).
    Degraded,
    Failed,
    Deleting,
}

/// A status condition, as in Kubernetes' own API conventions.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `NetworkReady`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason, such as `Reconciled`, `InvalidSpec` or `AwsError`.
    pub reason: String,
    /// What happened, and what to change when the user can fix it.
    pub message: String,
    /// The generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed between True, False and Unknown (RFC 3339).
    pub last_transition_time: String,
}

/// Identifiers the stack produced.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// Where users reach the stack: the CDN or DNS name, or a load balancer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkOutputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseOutputs>,
    /// The Secrets Manager secret that holds the JWT signing secret (`identity.kind: Jwt`);
    /// its value appears nowhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret_arn: Option<String>,
    /// Where the application reaches the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheOutputs>,
    /// The URIs of the stack's container repositories, by their names in the spec.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub repositories: std::collections::BTreeMap<String, String>,
    /// The backend tiers by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tiers: std::collections::BTreeMap<String, TierOutputs>,
    /// The buckets' names: `frontend` for the static site, the spec's names for the others.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub buckets: std::collections::BTreeMap<String, String>,
    /// The CloudFront distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<CdnOutputs>,
    /// The hosted zone the stack's records are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsOutputs>,
    /// Records that validate the stack's certificates, for a stack whose names are in a zone
    /// it does not manage: write them there (the certificates stay pending until then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_records: Vec<ValidationRecord>,
}

/// The stack's CloudFront distribution.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CdnOutputs {
    pub distribution_id: String,
    /// Its CloudFront domain, such as `d111111abcdef8.cloudfront.net`.
    pub domain_name: String,
    /// `InProgress` while a change rolls out to the edge locations, then `Deployed`.
    #[serde(default)]
    pub status: String,
}

/// The stack's hosted zone.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsOutputs {
    pub zone_id: String,
    /// The name servers the domain's registrar must name (a zone the stack created).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_servers: Vec<String>,
}

/// A DNS record that proves a certificate's name to ACM.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationRecord {
    /// The certificate's name in the spec.
    pub certificate: String,
    /// The name it proves.
    pub domain: String,
    /// A CNAME record: its name and value.
    pub name: String,
    pub value: String,
}

/// The cache's primary endpoint.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheOutputs {
    pub endpoint: String,
    pub port: i64,
}

/// Where a backend tier is reached and what runs it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierOutputs {
    /// The load balancer's DNS name.
    #[serde(default)]
    pub load_balancer_dns: String,
    /// `internet-facing` or `internal`.
    #[serde(default)]
    pub scheme: String,
    /// The Auto Scaling group's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auto_scaling_group: String,
    /// The fixed public address of a single instance (`ec2.elasticIp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// The launch template version its instances run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<i64>,
}

/// Where the application reaches the database. The password is in Secrets Manager, under
/// `secretArn`: AWS generated it, and it appears nowhere else.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseOutputs {
    pub endpoint: String,
    pub port: i64,
    /// The ARN of the Secrets Manager secret that holds the master user's password.
    pub secret_arn: String,
    pub identifier: String,
}

/// Identifiers of the network tier.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkOutputs {
    pub vpc_id: String,
    /// In zone order.
    #[serde(default)]
    pub public_subnet_ids: Vec<String>,
    /// In zone order.
    #[serde(default)]
    pub private_subnet_ids: Vec<String>,
    /// Public IPs of the NAT gateways, for allow-lists of the services the stack calls.
    #[serde(default)]
    pub nat_public_ips: Vec<String>,
    /// Security group ids by role: `load-balancer`, `app`, `database`, `cache`, `endpoints`.
    #[serde(default)]
    pub security_group_ids: std::collections::BTreeMap<String, String>,
}

/// One AWS resource the stack owns.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    /// The resource kind, such as `Vpc` or `SecurityGroupRule`.
    pub kind: String,
    /// The AWS id.
    pub id: String,
    /// The role the resource plays in the stack.
    pub role: String,
}

impl Condition {
    /// A condition, keeping `previous`'s transition time when the status did not change.
    pub fn new(
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
        previous: Option<&Condition>,
    ) -> Self {
        let status = if status { "True" } else { "False" }.to_owned();
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
                .to_string(),
        };
        Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let mut old = Condition::new("Ready", false, "Provisioning", "", Some(1), None);
        old.last_transition_time = "2020-01-01T00:00:00Z".into();
        let same = Condition::new("Ready", false, "AwsError", "x", Some(2), Some(&old));
        assert_eq!(same.last_transition_time, old.last_transition_time);
        let flipped = Condition::new("Ready", true, "Reconciled", "", Some(2), Some(&old));
        assert_ne!(flipped.last_transition_time, old.last_transition_time);
    }
}
