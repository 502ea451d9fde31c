//! Monitoring: log retention and CloudWatch alarms.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Log groups and alarms.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.alarms) || size(self.alarms) <= self.maxAlarms").message("more alarms than maxAlarms allows").field_path(".alarms"))]
#[x_kube(validation = Rule::new("!has(self.alarms) || self.alarms.all(a, self.alarms.exists_one(b, b.name == a.name))").message("alarm names must be unique").field_path(".alarms"))]
pub struct MonitoringSpec {
    /// Days CloudWatch keeps the stack's logs: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150,
    /// 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653. Defaults to 30.
    #[serde(default = "thirty")]
    #[x_kube(validation = Rule::new("self in [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]").message("CloudWatch keeps logs for 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653 days"))]
    pub log_retention_days: u32,

    /// The most alarms the stack may define (each costs money). Defaults to 10.
    #[serde(default = "ten")]
    #[schemars(range(min = 0, max = 100))]
    pub max_alarms: u32,

    /// The alarms.
    #[serde(default)]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub alarms: Vec<AlarmSpec>,

    /// E-mail addresses told when an alarm fires (through an SNS topic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253), regex(pattern = super::patterns::EMAIL)))]
    pub notify: Vec<String>,
}

fn thirty() -> u32 {
    30
}
fn ten() -> u32 {
    10
}

/// A CloudWatch alarm on a metric of the stack.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmSpec {
    /// The alarm's name within the stack, such as `high-5xx`.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9][a-z0-9-]{0,62}$')").message("alarm names are lower-case letters, digits and '-'"))]
    #[schemars(length(max = 63))]
    pub name: String,

    /// What is measured.
    pub metric: AlarmMetric,

    /// The tier (of `spec.backend.tiers`) or function (of `spec.functions`) measured, for
    /// metrics of a tier or a function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub target: Option<String>,

    /// `GreaterThan` (the default) or `LessThan` the threshold.
    #[serde(default)]
    pub comparison: Comparison,

    /// The threshold, in the metric's unit (a count, percent or seconds).
    pub threshold: f64,

    /// Seconds per evaluation period. Defaults to 300.
    #[serde(default = "three_hundred")]
    #[x_kube(validation = Rule::new("self in [10, 30] || (self >= 60 && self % 60 == 0)").message("a period is 10, 30 or a multiple of 60 seconds"))]
    pub period_seconds: u32,

    /// Periods that must breach before the alarm fires. Defaults to 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub evaluation_periods: u32,
}

fn three_hundred() -> u32 {
    300
}
fn one() -> u32 {
    1
}

/// Metrics the operator knows how to alarm on.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum AlarmMetric {
    /// 5xx answers of a tier's load balancer (sum).
    LoadBalancer5xx,
    /// Target response time of a tier's load balancer (average, seconds).
    ResponseTime,
    /// Requests to a tier's load balancer (sum).
    RequestCount,
    /// CPU of a tier's instances or tasks (average, percent).
    Cpu,
    /// Memory of a tier's instances or tasks (average, percent).
    Memory,
    /// CPU of the database (average, percent).
    DatabaseCpu,
    /// Free storage of the database (minimum, bytes).
    DatabaseFreeStorage,
    /// CPU of the cache (average, percent).
    CacheCpu,
    /// Errors of a function (sum).
    FunctionErrors,
    /// 5xx answers of the CDN (average, percent).
    Cdn5xxRate,
}

impl AlarmMetric {
    /// Whether the metric needs a `target`, and of which kind.
    pub fn target_kind(self) -> Option<&'static str> {
        match self {
            AlarmMetric::LoadBalancer5xx
            | AlarmMetric::ResponseTime
            | AlarmMetric::RequestCount
            | AlarmMetric::Cpu
            | AlarmMetric::Memory => Some("tier"),
            AlarmMetric::FunctionErrors => Some("function"),
            _ => None,
        }
    }
}

/// How an alarm compares the metric with its threshold.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Comparison {
    #[default]
    GreaterThan,
    LessThan,
}
