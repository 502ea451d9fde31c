//! Prometheus metrics of the controller, served on `/metrics`: reconciles, their durations and
//! errors by reason, AWS calls by service, operation and outcome, throttles, resources still
//! settling, the work queue, and the age of each shared observation.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::aws::client::CallCounts;
use crate::aws::error::{classify, ErrorClass};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    /// `now` (new, changed, failing, settling, drifted) or `resync`.
    urgency: String,
    /// `ok` or `error`.
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UrgencyLabels {
    urgency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    /// `account/region`, the account as a short digest of the credentials' key.
    scope: String,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    durations: Family<UrgencyLabels, Histogram, fn() -> Histogram>,
    errors: Family<ReasonLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    throttles: Family<ServiceLabels, Counter>,
    pending: Gauge,
    pending_by_stack: Mutex<BTreeMap<String, usize>>,
    queued: Family<UrgencyLabels, Gauge>,
    running: Gauge,
    stacks: Gauge,
    owned: Gauge,
    observation_age: Family<ScopeLabels, Gauge<f64, AtomicU64>>,
    observation_reads: Family<ScopeLabels, Counter>,
    observation_read_seconds: Family<ScopeLabels, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("webstack");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register("reconciles", "Reconciles ended", reconciles.clone());
        let durations = Family::<UrgencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            reconcile_histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took",
            durations.clone(),
        );
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error, by the condition reason it became",
            errors.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS calls by service, operation and outcome (ok or the AWS error code), retries included",
            calls.clone(),
        );
        let throttles = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "aws_throttles",
            "AWS calls AWS throttled",
            throttles.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "pending_resources",
            "AWS resources still being created or deleted, over all stacks",
            pending.clone(),
        );
        let queued = Family::<UrgencyLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Stacks waiting for a reconcile",
            queued.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "reconciles_running",
            "Reconciles under way",
            running.clone(),
        );
        let stacks = Gauge::default();
        registry.register("stacks", "WebStacks the controller sees", stacks.clone());
        let owned = Gauge::default();
        registry.register(
            "stacks_owned",
            "WebStacks this replica reconciles (its shards)",
            owned.clone(),
        );
        let observation_age = Family::<ScopeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "shared_observation_age_seconds",
            "Age of the shared AWS observation of an account and region",
            observation_age.clone(),
        );
        let observation_reads = Family::<ScopeLabels, Counter>::default();
        registry.register(
            "shared_observation_reads",
            "Shared AWS observations read (each one read per resource type for every stack)",
            observation_reads.clone(),
        );
        let observation_read_seconds = Family::<ScopeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "shared_observation_read_seconds",
            "How long the last shared AWS observation of an account and region took to read",
            observation_read_seconds.clone(),
        );
        Metrics {
            registry,
            observation_read_seconds,
            reconciles,
            durations,
            errors,
            calls,
            throttles,
            pending,
            pending_by_stack: Mutex::new(BTreeMap::new()),
            queued,
            running,
            stacks,
            owned,
            observation_age,
            observation_reads,
        }
    }

    /// A reconcile ended.
    pub fn reconciled(&self, urgency: &str, seconds: f64, error: Option<&str>) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles
            .get_or_create(&ReconcileLabels {
                urgency: urgency.into(),
                result: result.into(),
            })
            .inc();
        self.durations
            .get_or_create(&UrgencyLabels {
                urgency: urgency.into(),
            })
            .observe(seconds);
        if let Some(reason) = error {
            self.errors
                .get_or_create(&ReasonLabels {
                    reason: reason.into(),
                })
                .inc();
        }
    }

    /// A stack's resources still settling after its last pass.
    pub fn pending(&self, stack: &str, n: usize) {
        let mut by_stack = self
            .pending_by_stack
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if n == 0 {
            by_stack.remove(stack);
        } else {
            by_stack.insert(stack.to_owned(), n);
        }
        self.pending.set(by_stack.values().sum::<usize>() as i64);
    }

    pub fn queue(&self, now: usize, resync: usize, running: usize) {
        for (urgency, n) in [("now", now), ("resync", resync)] {
            self.queued
                .get_or_create(&UrgencyLabels {
                    urgency: urgency.into(),
                })
                .set(n as i64);
        }
        self.running.set(running as i64);
    }

    pub fn stacks(&self, seen: usize, owned: usize) {
        self.stacks.set(seen as i64);
        self.owned.set(owned as i64);
    }

    /// Brings the AWS call counters up to `counts` (the call layers count; the counters follow).
    pub fn aws_calls(&self, counts: &CallCounts) {
        let mut throttled: BTreeMap<&str, u64> = BTreeMap::new();
        for (service, ops) in &counts.0 {
            for (operation, outcomes) in ops {
                for (outcome, n) in outcomes {
                    let counter = self.calls.get_or_create(&CallLabels {
                        service: service.clone(),
                        operation: operation.clone(),
                        outcome: outcome.clone(),
                    });
                    let seen = counter.get();
                    if *n > seen {
                        counter.inc_by(n - seen);
                    }
                    if outcome != "ok" && classify(outcome, None) == ErrorClass::Throttled {
                        *throttled.entry(service).or_default() += n;
                    }
                }
            }
        }
        for (service, n) in throttled {
            let counter = self.throttles.get_or_create(&ServiceLabels {
                service: service.into(),
            });
            let seen = counter.get();
            if n > seen {
                counter.inc_by(n - seen);
            }
        }
    }

    /// The state of one shared observation.
    pub fn observation(&self, scope: &str, age: Option<f64>, reads: u64, took: Option<f64>) {
        let labels = ScopeLabels {
            scope: scope.into(),
        };
        self.observation_read_seconds
            .get_or_create(&labels)
            .set(took.unwrap_or(f64::NAN));
        self.observation_age
            .get_or_create(&labels)
            .set(age.unwrap_or(f64::NAN));
        let counter = self.observation_reads.get_or_create(&labels);
        let seen = counter.get();
        if reads > seen {
            counter.inc_by(reads - seen);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_calls_follow_the_call_layer_counts_and_throttles_are_split_out() {
        let m = Metrics::new();
        let mut counts = CallCounts::default();
        let mut add = |op: &str, outcome: &str, n: u64| {
            counts
                .0
                .entry("ec2".into())
                .or_default()
                .entry(op.into())
                .or_default()
                .insert(outcome.into(), n);
        };
        add("DescribeVpcs", "ok", 3);
        add("DescribeVpcs", "RequestLimitExceeded", 2);
        m.aws_calls(&counts);
        // A second scrape with the same counts adds nothing.
        m.aws_calls(&counts);
        let text = m.render();
        assert!(
            text.contains(
                "webstack_aws_calls_total{service=\"ec2\",operation=\"DescribeVpcs\",outcome=\"ok\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("webstack_aws_throttles_total{service=\"ec2\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn reconciles_errors_and_pending_resources_are_counted() {
        let m = Metrics::new();
        m.reconciled("now", 0.2, None);
        m.reconciled("resync", 0.01, Some("AwsError"));
        m.pending("ns/a", 2);
        m.pending("ns/b", 1);
        m.pending("ns/a", 0);
        let text = m.render();
        assert!(text.contains("webstack_reconciles_total{urgency=\"now\",result=\"ok\"} 1"));
        assert!(text.contains("webstack_reconcile_errors_total{reason=\"AwsError\"} 1"));
        assert!(text.contains("webstack_pending_resources 1"), "{text}");
        assert!(text.contains("webstack_reconcile_duration_seconds_count{urgency=\"resync\"} 1"));
    }
}
