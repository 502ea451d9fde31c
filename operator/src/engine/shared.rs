//! One observation of every stack, per account and region, shared by all of their reconciles.
//!
//! A reconcile of a steady stack reads nothing of its own: it takes its share of a snapshot
//! that read each resource type once for all stacks. A stack that wrote (or waits on AWS, or
//! failed) since the snapshot began is read alone until a later snapshot covers it, so a
//! reconcile right after a write never acts on what the write changed. Drift shows up as a
//! stack whose share differs between two snapshots: [`SharedObservation::subscribe`] names
//! it, so that it is reconciled at once rather than at its next resync.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::broadcast;

use super::model::Observed;
use super::plan::Observation;

/// A read of every stack, and when it began.
struct Snapshot {
    started: Instant,
    by_stack: BTreeMap<String, Vec<Observed>>,
    /// A digest of each stack's share, to tell which changed between two snapshots.
    digests: BTreeMap<String, String>,
    /// The extra places (zones the stacks do not own) this read covered.
    covered: BTreeSet<String>,
}

/// Which calls go first when AWS is busy: work a user waits for (a new or changed stack)
/// before reads that only keep the shared observation fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// A reconcile a user waits for.
    Urgent,
    /// A read of every stack started in the background.
    Background,
}

tokio::task_local! {
    static LANE: Lane;
}

/// Urgent work under way in this process.
static URGENT_WORK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct UrgentWork;

impl UrgentWork {
    fn start() -> Self {
        URGENT_WORK.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        UrgentWork
    }
}

impl Drop for UrgentWork {
    fn drop(&mut self) {
        URGENT_WORK.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Urgent work waiting for a read of every stack: that read must not give way to it.
static URGENT_WAITING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Marks the calling task, if urgent, as waiting for a read, while it lives.
struct WaitingForRead(bool);

impl WaitingForRead {
    fn start() -> Self {
        let urgent = current_lane() == Some(Lane::Urgent);
        if urgent {
            URGENT_WAITING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        WaitingForRead(urgent)
    }
}

impl Drop for WaitingForRead {
    fn drop(&mut self) {
        if self.0 {
            URGENT_WAITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Whether urgent work is under way that does not wait for a read: background reads hold
/// back their calls meanwhile. (A read urgent work waits for goes at full speed: holding it
/// back would hold back the urgent work itself.)
pub fn urgent_work() -> bool {
    let waiting = URGENT_WAITING.load(std::sync::atomic::Ordering::SeqCst);
    URGENT_WORK.load(std::sync::atomic::Ordering::SeqCst) > waiting
}

/// Runs `work` in `lane`: the call layer lets urgent work go before background reads.
pub async fn in_lane<F: Future>(lane: Lane, work: F) -> F::Output {
    let _urgent = (lane == Lane::Urgent).then(UrgentWork::start);
    LANE.scope(lane, work).await
}

/// The lane of the task that calls, if it runs in one.
pub fn current_lane() -> Option<Lane> {
    LANE.try_with(|l| *l).ok()
}

/// The shared observation of one account and region.
pub struct SharedObservation {
    max_age: Duration,
    created: Instant,
    current: Mutex<Option<Arc<Snapshot>>>,
    /// Held by the one read of every stack under way.
    reading: Arc<tokio::sync::Mutex<()>>,
    last_attempt: Mutex<Option<Instant>>,
    /// How long the last read of every stack took.
    last_read: Mutex<Option<Duration>>,
    /// Per stack: the snapshot must have begun after this for the stack to be served from it
    /// (the end of its last write, or when this process took it over).
    fresh_after: Mutex<HashMap<String, Instant>>,
    /// Extra places every snapshot must read (existing zones the stacks write records into).
    needs: Mutex<BTreeSet<String>>,
    /// Values looked up by name (an existing zone, an image parameter), with when.
    lookups: Mutex<HashMap<String, (Instant, Value)>>,
    changed: broadcast::Sender<String>,
    refreshes: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A digest of a stack's resources that does not depend on the order AWS listed them in.
fn digest_of(resources: &[Observed]) -> String {
    let mut lines: Vec<String> = resources
        .iter()
        .map(|o| {
            format!(
                "{}|{}|{}|{:?}|{:?}|{:?}",
                o.kind, o.id, o.role, o.owner, o.readiness, o.props
            )
        })
        .collect();
    lines.sort();
    super::plan::digest(&Value::from(lines))
}

impl SharedObservation {
    /// A snapshot older than `max_age` is read again before it serves a stack; drift is
    /// announced on `changed`.
    pub fn new(max_age: Duration, changed: broadcast::Sender<String>) -> Self {
        SharedObservation {
            max_age,
            created: Instant::now(),
            current: Mutex::new(None),
            reading: Arc::new(tokio::sync::Mutex::new(())),
            last_attempt: Mutex::new(None),
            last_read: Mutex::new(None),
            fresh_after: Mutex::new(HashMap::new()),
            needs: Mutex::new(BTreeSet::new()),
            lookups: Mutex::new(HashMap::new()),
            changed,
            refreshes: Default::default(),
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Snapshots read so far.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How old the snapshot is, if there is one.
    pub fn age(&self) -> Option<Duration> {
        lock(&self.current).as_ref().map(|s| s.started.elapsed())
    }

    /// How long the last read of every stack took.
    pub fn last_read(&self) -> Option<Duration> {
        *lock(&self.last_read)
    }

    /// The stack changed something on AWS (or waits on AWS, or failed): until a snapshot
    /// begun after now covers it, it is read alone.
    pub fn wrote(&self, stack: &str) {
        lock(&self.fresh_after).insert(stack.to_owned(), Instant::now());
    }

    /// This process took the stack over from another (a shard moved): what the other wrote
    /// may postdate the snapshot.
    pub fn taken_over(&self, stack: &str) {
        self.wrote(stack);
    }

    /// The stack is gone: nothing more to keep about it.
    pub fn forget(&self, stack: &str) {
        lock(&self.fresh_after).remove(stack);
    }

    /// The observation of `stack` for a reconcile, from a read of every stack begun after
    /// the stack's last write and covering the extra places (zones) it needs. A steady stack
    /// takes its share of the current snapshot at once, even of one older than the maximum age
    /// (the next read then starts in the background). A stack that wrote waits for a read
    /// begun after its write: the one under way if it began late enough, or the next, which
    /// serves every stack waiting for it. So converging stacks share reads too, and no stack
    /// reads alone.
    pub async fn for_stack<F, Fut, E>(
        self: &Arc<Self>,
        stack: &str,
        needs: &[String],
        read_all: F,
    ) -> Result<Observation, E>
    where
        F: FnOnce(BTreeSet<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<Observed>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        {
            let mut n = lock(&self.needs);
            for need in needs {
                n.insert(need.clone());
            }
        }
        let fresh_after = *lock(&self.fresh_after)
            .entry(stack.to_owned())
            .or_insert(self.created);
        let serves =
            |s: &Snapshot| s.started > fresh_after && needs.iter().all(|n| s.covered.contains(n));
        let current = lock(&self.current).clone();
        if let Some(s) = current.filter(|s| serves(s)) {
            if s.started.elapsed() > self.max_age {
                self.read_in_background(read_all);
            }
            return Ok(self.share(&s, stack));
        }
        // Wait for the read under way; if it began too early, read again (the stacks that
        // queue meanwhile share this read).
        let _waiting = WaitingForRead::start();
        let turn = self.reading.clone().lock_owned().await;
        if let Some(s) = lock(&self.current).clone().filter(|s| serves(s)) {
            return Ok(self.share(&s, stack));
        }
        let next = self.read(read_all).await;
        drop(turn);
        let next = next?;
        Ok(self.share(&next, stack))
    }

    /// Starts the next read of every stack unless one is under way or the last attempt was
    /// moments ago (a failing read is not hammered).
    fn read_in_background<F, Fut, E>(self: &Arc<Self>, read_all: F)
    where
        F: FnOnce(BTreeSet<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<Observed>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let Ok(turn) = self.reading.clone().try_lock_owned() else {
            return;
        };
        {
            let mut last = lock(&self.last_attempt);
            let pause = (self.max_age / 4).min(Duration::from_secs(5));
            if last.is_some_and(|t| t.elapsed() < pause) {
                return;
            }
            *last = Some(Instant::now());
        }
        let me = self.clone();
        tokio::spawn(in_lane(Lane::Background, async move {
            let _turn = turn;
            if let Err(e) = me.read(read_all).await {
                tracing::warn!(error = %e, "reading the AWS resources of every stack failed; the last read still serves");
            }
        }));
    }

    /// Reads every stack (the caller holds `reading`), announces drift, and makes the new
    /// snapshot current.
    async fn read<F, Fut, E>(&self, read_all: F) -> Result<Arc<Snapshot>, E>
    where
        F: FnOnce(BTreeSet<String>) -> Fut,
        Fut: Future<Output = Result<Vec<Observed>, E>>,
    {
        let covered = lock(&self.needs).clone();
        let started = Instant::now();
        let resources = read_all(covered.clone()).await?;
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut by_stack: BTreeMap<String, Vec<Observed>> = BTreeMap::new();
        for o in resources {
            by_stack.entry(o.stack.clone()).or_default().push(o);
        }
        let digests: BTreeMap<String, String> = by_stack
            .iter()
            .map(|(k, v)| (k.clone(), digest_of(v)))
            .collect();
        let next = Arc::new(Snapshot {
            started,
            by_stack,
            digests,
            covered,
        });
        tracing::debug!(took = ?started.elapsed(), stacks = next.by_stack.len(), "read the AWS resources of every stack");
        let previous = lock(&self.current).replace(next.clone());
        if let Some(previous) = previous {
            self.announce_drift(&previous, &next);
        }
        *lock(&self.last_read) = Some(started.elapsed());
        Ok(next)
    }

    fn share(&self, s: &Snapshot, stack: &str) -> Observation {
        Observation::from_resources(s.by_stack.get(stack).cloned().unwrap_or_default())
    }

    /// Names every stack whose share changed between `previous` and `next` although it wrote
    /// nothing since `previous` began.
    fn announce_drift(&self, previous: &Snapshot, next: &Snapshot) {
        let fresh_after = lock(&self.fresh_after);
        let stacks: BTreeSet<&String> =
            previous.digests.keys().chain(next.digests.keys()).collect();
        for stack in stacks {
            if previous.digests.get(stack) == next.digests.get(stack) {
                continue;
            }
            let wrote = fresh_after
                .get(stack.as_str())
                .is_some_and(|t| *t >= previous.started);
            if !wrote && fresh_after.contains_key(stack.as_str()) {
                // Nobody listening is fine: the stack's own resync finds it then.
                let _ = self.changed.send(stack.clone());
            }
        }
    }

    /// A value looked up by `key`, read with `fetch` at most once per maximum age.
    pub async fn lookup<F, Fut, E>(&self, key: &str, fetch: F) -> Result<Value, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, E>>,
    {
        if let Some((at, v)) = lock(&self.lookups).get(key) {
            if at.elapsed() <= self.max_age {
                return Ok(v.clone());
            }
        }
        let at = Instant::now();
        let value = fetch().await?;
        lock(&self.lookups).insert(key.to_owned(), (at, value.clone()));
        Ok(value)
    }
}

/// The shared observations of a process, one per account and region, announcing drift on
/// one channel.
pub struct Sharing {
    max_age: Duration,
    by_key: Mutex<BTreeMap<String, Arc<SharedObservation>>>,
    changed: broadcast::Sender<String>,
}

impl std::fmt::Debug for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharing")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl Sharing {
    pub fn new(max_age: Duration) -> Self {
        Sharing {
            max_age,
            by_key: Mutex::new(BTreeMap::new()),
            changed: broadcast::channel(4096).0,
        }
    }

    /// The shared observation of an account and region, made on first use.
    pub fn of(&self, account: &str, region: &str) -> Arc<SharedObservation> {
        lock(&self.by_key)
            .entry(format!("{account}/{region}"))
            .or_insert_with(|| Arc::new(SharedObservation::new(self.max_age, self.changed.clone())))
            .clone()
    }

    /// Every shared observation made so far, by `account/region`.
    pub fn all(&self) -> Vec<(String, Arc<SharedObservation>)> {
        lock(&self.by_key)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Stacks whose resources drifted, from every account and region.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    /// The stack took over from another replica, or is gone: in every account and region.
    pub fn taken_over(&self, stack: &str) {
        for (_, s) in self.all() {
            s.taken_over(stack);
        }
    }

    pub fn forget(&self, stack: &str) {
        for (_, s) in self.all() {
            s.forget(stack);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Kind;
    use std::sync::atomic::{AtomicU32, Ordering};

    const VPC: Kind = Kind("Vpc");

    fn shared(max_age_ms: u64) -> Arc<SharedObservation> {
        Arc::new(SharedObservation::new(
            Duration::from_millis(max_age_ms),
            broadcast::channel(16).0,
        ))
    }

    fn vpc(stack: &str, id: &str, cidr: &str) -> Observed {
        Observed::new(VPC, stack, "vpc", id)
            .owner(Some("o".into()))
            .prop("cidr", cidr)
    }

    #[derive(Default)]
    struct World {
        resources: Mutex<Vec<Observed>>,
        reads: AtomicU32,
        seen: Mutex<BTreeSet<String>>,
    }

    type Read = std::pin::Pin<Box<dyn Future<Output = Result<Vec<Observed>, String>> + Send>>;

    impl World {
        fn new(r: Vec<Observed>) -> Arc<Self> {
            let w = World::default();
            *w.resources.lock().unwrap() = r;
            Arc::new(w)
        }

        fn reader(self: &Arc<Self>) -> impl FnOnce(BTreeSet<String>) -> Read + Send + 'static {
            let me = self.clone();
            move |needs| {
                Box::pin(async move {
                    me.reads.fetch_add(1, Ordering::SeqCst);
                    *me.seen.lock().unwrap() = needs;
                    Ok(me.resources.lock().unwrap().clone())
                })
            }
        }

        fn reads(&self) -> u32 {
            self.reads.load(Ordering::SeqCst)
        }
    }

    async fn wait_for_reads(world: &World, n: u32) {
        for _ in 0..100 {
            if world.reads() >= n {
                // Let the read's snapshot land.
                tokio::time::sleep(Duration::from_millis(10)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no read number {n}");
    }

    #[tokio::test]
    async fn one_read_serves_every_steady_stack_and_an_old_one_serves_while_the_next_is_read() {
        let world = World::new(vec![
            vpc("a", "vpc-1", "10.0.0.0/16"),
            vpc("b", "vpc-2", "10.1.0.0/16"),
        ]);
        let shared = shared(200);
        for stack in ["a", "b", "a", "c"] {
            let o = shared.for_stack(stack, &[], world.reader()).await.unwrap();
            let n = o.by_kind.get(&VPC).map_or(0, Vec::len);
            assert_eq!(n, usize::from(stack != "c"), "{stack}");
        }
        assert_eq!(world.reads(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Too old: it still serves at once, and the next read starts in the background.
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        wait_for_reads(&world, 2).await;
        assert_eq!(shared.refreshes(), 2);
        assert!(shared.age().unwrap() < Duration::from_millis(200));
    }

    /// An urgent reconcile that waits for the background read under way must not make that
    /// read give way to it: the read would wait for the reconcile that waits for the read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_background_read_urgent_work_waits_for_goes_at_full_speed() {
        use crate::aws::client::{AwsApi, Effect};
        use crate::aws::error::AwsError;
        use aws_smithy_runtime_api::client::result::SdkError;
        use aws_smithy_runtime_api::http::Response as HttpResponse;
        let world = World::new(vec![vpc("a", "vpc-1", "10.0.0.0/16")]);
        let shared = shared(50);
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        // A read through the call layer: three calls one after the other.
        let api = Arc::new(AwsApi::new("waits", "r"));
        let slow = {
            let (api, world) = (api.clone(), world.clone());
            move |_: BTreeSet<String>| -> Read {
                Box::pin(async move {
                    for _ in 0..3 {
                        let r: Result<(), AwsError> = api
                            .call("ec2", "DescribeVpcs", Effect::Read, || async {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                Ok::<(), SdkError<aws_sdk_ec2::Error, HttpResponse>>(())
                            })
                            .await;
                        r.unwrap();
                    }
                    world.reads.fetch_add(1, Ordering::SeqCst);
                    Ok(world.resources.lock().unwrap().clone())
                })
            }
        };
        // Too old: served at once, and the slow read starts in the background.
        shared.for_stack("b", &[], slow).await.unwrap();
        shared.wrote("a");
        let started = std::time::Instant::now();
        in_lane(Lane::Urgent, shared.for_stack("a", &[], world.reader()))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the urgent stack waited {:?} for a read held back on its account",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_stack_that_wrote_waits_for_a_read_begun_after_its_write() {
        let world = World::new(vec![vpc("a", "vpc-1", "10.0.0.0/16")]);
        let shared = shared(60_000);
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        // Its write changed the VPC; a steady stack is still served from the snapshot.
        world.resources.lock().unwrap()[0] = vpc("a", "vpc-1", "10.7.0.0/16");
        shared.wrote("a");
        shared.for_stack("b", &[], world.reader()).await.unwrap();
        assert_eq!(world.reads(), 1);
        let seen = shared.for_stack("a", &[], world.reader()).await.unwrap();
        assert_eq!(world.reads(), 2, "a new read of every stack");
        assert_eq!(seen.by_kind[&VPC][0].props["cidr"], "10.7.0.0/16");
        // That read serves it from then on.
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        assert_eq!(world.reads(), 2);
    }

    #[tokio::test]
    async fn stacks_that_wrote_at_once_share_the_next_read() {
        let world = World::new(vec![]);
        let shared = shared(60_000);
        shared.for_stack("s0", &[], world.reader()).await.unwrap();
        for i in 0..8 {
            shared.wrote(&format!("s{i}"));
        }
        let all = (0..8).map(|i| {
            let (shared, world) = (shared.clone(), world.clone());
            async move {
                shared
                    .for_stack(&format!("s{i}"), &[], world.reader())
                    .await
                    .unwrap()
            }
        });
        futures::future::join_all(all).await;
        assert!(world.reads() <= 3, "{} reads for 8 stacks", world.reads());
    }

    #[tokio::test]
    async fn a_stack_needing_an_extra_place_gets_a_read_of_it() {
        let world = World::new(vec![]);
        let shared = shared(60_000);
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        let zone = ["Z1".to_owned()];
        shared.for_stack("b", &zone, world.reader()).await.unwrap();
        assert_eq!(world.reads(), 2);
        assert!(world.seen.lock().unwrap().contains("Z1"));
        // Covered now, for every stack: no more reads.
        shared.for_stack("b", &zone, world.reader()).await.unwrap();
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        assert_eq!(world.reads(), 2);
    }

    #[tokio::test]
    async fn concurrent_first_reconciles_share_one_read() {
        let world = World::new(vec![vpc("a", "vpc-1", "10.0.0.0/16")]);
        let shared = shared(60_000);
        let all = (0..8).map(|i| {
            let (shared, world) = (shared.clone(), world.clone());
            async move {
                shared
                    .for_stack(&format!("s{i}"), &[], world.reader())
                    .await
                    .unwrap()
            }
        });
        futures::future::join_all(all).await;
        assert_eq!(world.reads(), 1);
    }

    #[tokio::test]
    async fn drift_of_a_stack_that_wrote_nothing_is_announced() {
        let world = World::new(vec![
            vpc("a", "vpc-1", "10.0.0.0/16"),
            vpc("b", "vpc-2", "10.1.0.0/16"),
        ]);
        let (tx, mut drift) = broadcast::channel(16);
        let shared = Arc::new(SharedObservation::new(Duration::from_millis(100), tx));
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        shared.for_stack("b", &[], world.reader()).await.unwrap();
        // Somebody changes a's VPC outside the operator; b changes through its own write.
        {
            let mut r = world.resources.lock().unwrap();
            r[0] = vpc("a", "vpc-1", "10.9.0.0/16");
            r[1] = vpc("b", "vpc-2", "10.8.0.0/16");
        }
        shared.wrote("b");
        tokio::time::sleep(Duration::from_millis(150)).await;
        shared.for_stack("a", &[], world.reader()).await.unwrap();
        wait_for_reads(&world, 2).await;
        assert_eq!(drift.try_recv().unwrap(), "a");
        assert!(drift.try_recv().is_err(), "b changed through its own write");
    }

    #[tokio::test]
    async fn lookups_are_read_once_per_maximum_age() {
        let shared = shared(100);
        let reads = AtomicU32::new(0);
        let fetch = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Value::from("Z1"))
        };
        assert_eq!(
            shared.lookup("zone:example.com", fetch).await.unwrap(),
            "Z1"
        );
        assert_eq!(
            shared.lookup("zone:example.com", fetch).await.unwrap(),
            "Z1"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(120)).await;
        shared.lookup("zone:example.com", fetch).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
