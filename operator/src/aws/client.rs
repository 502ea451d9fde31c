//! The one AWS client layer: every AWS call of the operator goes through [`AwsApi::call`].
//!
//! It counts calls by service, operation and outcome; waits on a token bucket shared by every
//! stack in the process for the same account, region and service; and retries throttling and
//! unavailability with jittered exponential backoff. Requests whose outcome is unknown are
//! retried here only when they are safe to repeat; a create is handed back to the engine, which
//! looks for the resource by its tags before it creates again.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rand::Rng;
use serde::Serialize;

use super::error::AwsError;

/// Whether a call changes anything on AWS, and whether it can be repeated safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Describe, List, Get.
    Read,
    /// A change that is safe to send twice: it carries an idempotency token, or sending it
    /// again has the same result (a modify to a value, a delete that tolerates NotFound).
    Idempotent,
    /// A create that AWS would perform twice if it were sent twice.
    Create,
}

impl Effect {
    pub fn is_mutating(self) -> bool {
        self != Effect::Read
    }
}

/// Backoff settings for calls that failed and may be retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter" backoff: a random delay between zero and the capped exponential.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let ceiling = exp.min(self.cap);
        let millis = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// A token bucket: `capacity` calls at once, refilled at `rate` calls per second.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(capacity: f64, rate: f64) -> Self {
        TokenBucket {
            capacity,
            rate,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Takes one token, or says how long to wait for the next one.
    fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate)
            .min(self.capacity);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            Ok(())
        } else {
            *state = (refilled, now);
            Err(Duration::from_secs_f64((1.0 - refilled) / self.rate))
        }
    }

    pub async fn acquire(&self) {
        loop {
            match self.try_take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

/// Settings of the process-wide rate limit per account, region and service.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub burst: f64,
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        // Below EC2's smallest documented refill rate for describe calls, so that a thousand
        // stacks in one process cannot provoke a throttling storm.
        RateLimit {
            burst: 50.0,
            per_second: 20.0,
        }
    }
}

type BucketKey = (String, String, &'static str);

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 512;

fn buckets() -> &'static Mutex<HashMap<BucketKey, Arc<TokenBucket>>> {
    static BUCKETS: OnceLock<Mutex<HashMap<BucketKey, Arc<TokenBucket>>>> = OnceLock::new();
    BUCKETS.get_or_init(Default::default)
}

/// The bucket shared by everything in this process for one account, region and service.
pub fn shared_bucket(
    account: &str,
    region: &str,
    service: &'static str,
    limit: RateLimit,
) -> Arc<TokenBucket> {
    let mut map = buckets().lock().unwrap_or_else(|e| e.into_inner());
    // Accounts and regions come and go with the stacks: past a bound, buckets that no call
    // layer holds any more are dropped (a new one starts full, as an idle one would be).
    if map.len() >= MAX_BUCKETS {
        map.retain(|_, b| Arc::strong_count(b) > 1);
    }
    map.entry((account.to_owned(), region.to_owned(), service))
        .or_insert_with(|| Arc::new(TokenBucket::new(limit.burst, limit.per_second)))
        .clone()
}

/// Counts of AWS calls: `service -> operation -> outcome -> count`. The outcome is `ok` or the
/// AWS error code. Every attempt is counted, retries included.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts(pub BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>);

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.0
            .values()
            .flat_map(|ops| ops.values())
            .flat_map(|o| o.values())
            .sum()
    }

    /// Attempts of one operation, whatever their outcome.
    pub fn of(&self, service: &str, operation: &str) -> u64 {
        self.0
            .get(service)
            .and_then(|ops| ops.get(operation))
            .map(|o| o.values().sum())
            .unwrap_or(0)
    }

    /// `(service, operation, attempts)` for every operation called.
    pub fn operations(&self) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for (service, ops) in &self.0 {
            for (op, outcomes) in ops {
                out.push((service.clone(), op.clone(), outcomes.values().sum()));
            }
        }
        out
    }

    /// Operations that change something: everything not named like a read.
    pub fn mutating(&self) -> Vec<(String, String, u64)> {
        self.operations()
            .into_iter()
            .filter(|(_, op, _)| !is_read_operation(op))
            .collect()
    }

    pub fn reads(&self) -> Vec<(String, String, u64)> {
        self.operations()
            .into_iter()
            .filter(|(_, op, _)| is_read_operation(op))
            .collect()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CallCounts) {
        for (service, ops) in &other.0 {
            for (op, outcomes) in ops {
                for (outcome, n) in outcomes {
                    *self
                        .0
                        .entry(service.clone())
                        .or_default()
                        .entry(op.clone())
                        .or_default()
                        .entry(outcome.clone())
                        .or_default() += n;
                }
            }
        }
    }

    pub fn difference(&self, earlier: &CallCounts) -> CallCounts {
        let mut out = CallCounts::default();
        for (service, ops) in &self.0 {
            for (op, outcomes) in ops {
                for (outcome, n) in outcomes {
                    let before = earlier
                        .0
                        .get(service)
                        .and_then(|o| o.get(op))
                        .and_then(|o| o.get(outcome))
                        .copied()
                        .unwrap_or(0);
                    if *n > before {
                        *out.0
                            .entry(service.clone())
                            .or_default()
                            .entry(op.clone())
                            .or_default()
                            .entry(outcome.clone())
                            .or_default() += n - before;
                    }
                }
            }
        }
        out
    }
}

/// Whether an AWS operation name is a read by AWS's naming conventions.
pub fn is_read_operation(op: &str) -> bool {
    ["Describe", "List", "Get", "Head", "Lookup", "Search"]
        .iter()
        .any(|p| op.starts_with(p))
}

/// Where the process stops on purpose: after the Nth mutating call took effect, before its
/// answer is used. Crash-safety tests set `WEBSTACK_CRASH_AFTER_MUTATIONS=N` to kill the
/// process at every point of an apply in turn.
pub const CRASH_AFTER_MUTATIONS_ENV: &str = "WEBSTACK_CRASH_AFTER_MUTATIONS";

/// The exit code of a process stopped by [`CRASH_AFTER_MUTATIONS_ENV`].
pub const CRASH_EXIT_CODE: i32 = 86;

/// The call layer: counters, retry policy and the identity used for rate limiting.
#[derive(Debug)]
pub struct AwsApi {
    account: String,
    region: String,
    limit: RateLimit,
    pub retry: RetryPolicy,
    counts: Mutex<CallCounts>,
    mutations: AtomicU64,
    crash_after: Option<u64>,
    /// Tags of resources whose listings do not carry them, read once per process.
    pub tags: super::tags::TagCache,
}

/// How long a background call waits at most for urgent work to finish.
const YIELD_AT_MOST: Duration = Duration::from_secs(5);

impl AwsApi {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        let crash_after = std::env::var(CRASH_AFTER_MUTATIONS_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        AwsApi {
            account: account.into(),
            region: region.into(),
            limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            counts: Mutex::new(CallCounts::default()),
            mutations: AtomicU64::new(0),
            crash_after,
            tags: Default::default(),
        }
    }

    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limit = limit;
        self
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whose calls these are: the key rate limits and shared observations are kept under.
    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn counts(&self) -> CallCounts {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Mutating calls that took effect so far.
    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::SeqCst)
    }

    fn record(&self, service: &str, operation: &str, outcome: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .0
            .entry(service.to_owned())
            .or_default()
            .entry(operation.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Sends one AWS request built by `send`, with rate limiting, counting and retries.
    pub async fn call<T, E, F, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        effect: Effect,
        send: F,
    ) -> Result<T, AwsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let bucket = shared_bucket(&self.account, &self.region, service, self.limit);
        let lane = crate::engine::shared::current_lane();
        // Work a user waits for goes first; a background read gives way, but not forever.
        if lane == Some(crate::engine::shared::Lane::Background) {
            let since = Instant::now();
            while crate::engine::shared::urgent_work() && since.elapsed() < YIELD_AT_MOST {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut attempt = 0;
        loop {
            bucket.acquire().await;
            let result = send().await;
            match result {
                Ok(value) => {
                    self.record(service, operation, "ok");
                    if effect.is_mutating() {
                        let n = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
                        if self.crash_after == Some(n) {
                            tracing::warn!(
                                service,
                                operation,
                                n,
                                "stopping the process on purpose ({CRASH_AFTER_MUTATIONS_ENV})"
                            );
                            std::process::exit(CRASH_EXIT_CODE);
                        }
                    }
                    return Ok(value);
                }
                Err(err) => {
                    let err = AwsError::from_sdk(service, operation, &err);
                    self.record(service, operation, &err.code);
                    let repeatable =
                        err.not_executed() || (err.is_retryable() && effect != Effect::Create);
                    attempt += 1;
                    if !repeatable || attempt >= self.retry.max_attempts {
                        return Err(err);
                    }
                    let delay = self.retry.delay(attempt);
                    tracing::debug!(service, operation, code = %err.code, attempt, ?delay, "retrying AWS call");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_paces() {
        let bucket = TokenBucket::new(2.0, 10.0);
        let t0 = Instant::now();
        assert!(bucket.try_take(t0).is_ok());
        assert!(bucket.try_take(t0).is_ok());
        let wait = bucket.try_take(t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::from_millis(90),
            "{wait:?}"
        );
        assert!(bucket.try_take(t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn buckets_are_shared_per_account_region_service() {
        let a = shared_bucket("acct-test-1", "eu-west-1", "ec2", RateLimit::default());
        let b = shared_bucket("acct-test-1", "eu-west-1", "ec2", RateLimit::default());
        let c = shared_bucket("acct-test-1", "eu-west-1", "rds", RateLimit::default());
        let d = shared_bucket("acct-test-1", "us-east-1", "ec2", RateLimit::default());
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(!Arc::ptr_eq(&a, &d));
    }

    #[test]
    fn backoff_stays_under_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
        };
        for attempt in 0..30 {
            assert!(policy.delay(attempt) <= Duration::from_millis(200));
        }
    }

    #[tokio::test]
    async fn background_calls_give_way_to_urgent_ones() {
        use crate::engine::shared::{in_lane, Lane};
        let api = std::sync::Arc::new(AwsApi::new("lanes", "r"));
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let call = |api: std::sync::Arc<AwsApi>, name: &'static str, ms: u64| {
            let order = order.clone();
            async move {
                let r: Result<(), AwsError> = api
                    .call("ec2", "DescribeVpcs", Effect::Read, || {
                        let order = order.clone();
                        async move {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            order.lock().unwrap().push(name);
                            Ok::<(), SdkError<aws_sdk_ec2::Error, HttpResponse>>(())
                        }
                    })
                    .await;
                r.unwrap();
            }
        };
        let urgent = tokio::spawn(in_lane(Lane::Urgent, call(api.clone(), "urgent", 200)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let background = tokio::spawn(in_lane(
            Lane::Background,
            call(api.clone(), "background", 1),
        ));
        urgent.await.unwrap();
        background.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["urgent", "background"]);
    }

    #[test]
    fn counts_split_reads_and_writes_and_subtract() {
        let api = AwsApi::new("a", "r");
        api.record("ec2", "DescribeVpcs", "ok");
        api.record("ec2", "CreateVpc", "ok");
        let before = api.counts();
        api.record("ec2", "DescribeVpcs", "ok");
        api.record("ec2", "CreateSubnet", "RequestLimitExceeded");
        let diff = api.counts().difference(&before);
        assert_eq!(diff.total(), 2);
        assert_eq!(diff.of("ec2", "CreateSubnet"), 1);
        assert_eq!(diff.reads(), vec![("ec2".into(), "DescribeVpcs".into(), 1)]);
        assert_eq!(
            diff.mutating(),
            vec![("ec2".into(), "CreateSubnet".into(), 1)]
        );
    }
}
