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
use std::sync::Mutex;
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

/// Where a stack's observation came from, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Its share of the shared snapshot.
    Shared,
    /// A read of the stack alone: it wrote since the snapshot began.
    Own,
}

/// The shared observation of one account and region.
pub struct SharedObservation {
    max_age: Duration,
    created: Instant,
    snapshot: tokio::sync::Mutex<Option<Snapshot>>,
    /// Per stack: the snapshot must have begun after this for the stack to be served from it
    /// (the end of its last write, or when this process took it over).
    fresh_after: Mutex<HashMap<String, Instant>>,
    /// Extra places every snapshot must read (existing zones the stacks write records into).
    needs: Mutex<BTreeSet<String>>,
    /// Values looked up by name (an existing zone, an image parameter), with when.
    lookups: Mutex<HashMap<String, (Instant, Value)>>,
    changed: broadcast::Sender<String>,
    refreshes: std::sync::atomic::AtomicU64,
    /// When the current snapshot began, readable without waiting for a read under way.
    last: Mutex<Option<Instant>>,
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
            snapshot: tokio::sync::Mutex::new(None),
            fresh_after: Mutex::new(HashMap::new()),
            needs: Mutex::new(BTreeSet::new()),
            lookups: Mutex::new(HashMap::new()),
            changed,
            refreshes: Default::default(),
            last: Mutex::new(None),
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
        lock(&self.last).map(|t| t.elapsed())
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

    /// The observation of `stack` for a reconcile, from the shared snapshot, or `None` when
    /// the stack must be read alone (it wrote since the snapshot began). A snapshot older than
    /// the maximum age, or one that did not read the extra places the stack `needs`, is read
    /// again first with `read_all`, which gets every extra place any stack needs; concurrent
    /// callers wait for that one read.
    pub async fn for_stack<F, Fut, E>(
        &self,
        stack: &str,
        needs: &[String],
        read_all: F,
    ) -> Result<Option<Observation>, E>
    where
        F: FnOnce(BTreeSet<String>) -> Fut,
        Fut: Future<Output = Result<Vec<Observed>, E>>,
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
        let mut guard = self.snapshot.lock().await;
        let usable = |s: &Snapshot| {
            s.started.elapsed() <= self.max_age && needs.iter().all(|n| s.covered.contains(n))
        };
        match guard.as_ref() {
            Some(s) if usable(s) && s.started > fresh_after => {
                return Ok(Some(self.share(s, stack)));
            }
            // Fresh enough for everybody else: this stack's own write is newer.
            Some(s) if usable(s) => return Ok(None),
            _ => {}
        }
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
        let next = Snapshot {
            started,
            by_stack,
            digests,
            covered,
        };
        if let Some(previous) = guard.as_ref() {
            self.announce_drift(previous, &next);
        }
        let served = (next.started > fresh_after).then(|| self.share(&next, stack));
        *lock(&self.last) = Some(next.started);
        *guard = Some(next);
        Ok(served)
    }

    fn share(&self, s: &Snapshot, stack: &str) -> Observation {
        Observation::from_resources(s.by_stack.get(stack).cloned().unwrap_or_default())
    }

    /// Names every stack whose share changed between `previous` and `next` although it wrote
    /// nothing since `previous` began.
    fn announce_drift(&self, previous: &Snapshot, next: &Snapshot) {
        let fresh_after = lock(&self.fresh_after);
        let stacks: BTreeSet<&String> = previous.digests.keys().chain(next.digests.keys()).collect();
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
    by_key: Mutex<BTreeMap<String, std::sync::Arc<SharedObservation>>>,
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
    pub fn of(&self, account: &str, region: &str) -> std::sync::Arc<SharedObservation> {
        lock(&self.by_key)
            .entry(format!("{account}/{region}"))
            .or_insert_with(|| {
                std::sync::Arc::new(SharedObservation::new(self.max_age, self.changed.clone()))
            })
            .clone()
    }

    /// Every shared observation made so far, by `account/region`.
    pub fn all(&self) -> Vec<(String, std::sync::Arc<SharedObservation>)> {
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

    fn shared(max_age_ms: u64) -> SharedObservation {
        SharedObservation::new(
            Duration::from_millis(max_age_ms),
            broadcast::channel(16).0,
        )
    }

    fn vpc(stack: &str, id: &str, cidr: &str) -> Observed {
        Observed::new(VPC, stack, "vpc", id)
            .owner(Some("o".into()))
            .prop("cidr", cidr)
    }

    struct World {
        resources: Mutex<Vec<Observed>>,
        reads: AtomicU32,
    }

    impl World {
        fn new(r: Vec<Observed>) -> Self {
            World {
                resources: Mutex::new(r),
                reads: AtomicU32::new(0),
            }
        }

        async fn read(&self, _: BTreeSet<String>) -> Result<Vec<Observed>, ()> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.resources.lock().unwrap().clone())
        }
    }

    #[tokio::test]
    async fn one_read_serves_every_steady_stack_until_it_is_too_old() {
        let world = World::new(vec![vpc("a", "vpc-1", "10.0.0.0/16"), vpc("b", "vpc-2", "10.1.0.0/16")]);
        let shared = shared(200);
        for stack in ["a", "b", "a", "c"] {
            let o = shared
                .for_stack(stack, &[], |n| world.read(n))
                .await
                .unwrap()
                .expect("served from the snapshot");
            let n = o.by_kind.get(&VPC).map_or(0, Vec::len);
            assert_eq!(n, usize::from(stack != "c"), "{stack}");
        }
        assert_eq!(world.reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        shared.for_stack("a", &[], |n| world.read(n)).await.unwrap();
        assert_eq!(world.reads.load(Ordering::SeqCst), 2);
        assert_eq!(shared.refreshes(), 2);
    }

    #[tokio::test]
    async fn a_stack_that_wrote_is_read_alone_until_a_later_snapshot_covers_it() {
        let world = World::new(vec![vpc("a", "vpc-1", "10.0.0.0/16")]);
        let shared = shared(200);
        assert!(shared.for_stack("a", &[], |n| world.read(n)).await.unwrap().is_some());
        shared.wrote("a");
        // The snapshot predates the write: the stack reads alone, the others are still served.
        assert!(shared.for_stack("a", &[], |n| world.read(n)).await.unwrap().is_none());
        assert!(shared.for_stack("b", &[], |n| world.read(n)).await.unwrap().is_some());
        assert_eq!(world.reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(shared.for_stack("a", &[], |n| world.read(n)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_stack_needing_an_extra_place_gets_a_snapshot_that_read_it() {
        let world = World::new(vec![]);
        let shared = shared(60_000);
        shared.for_stack("a", &[], |n| world.read(n)).await.unwrap();
        let seen = Mutex::new(BTreeSet::new());
        let served = shared
            .for_stack("b", &["Z1".to_owned()], |n| {
                *seen.lock().unwrap() = n.clone();
                world.read(n)
            })
            .await
            .unwrap();
        assert!(served.is_some());
        assert!(seen.lock().unwrap().contains("Z1"));
        assert_eq!(world.reads.load(Ordering::SeqCst), 2);
        // Covered now: no more reads for it.
        shared.for_stack("b", &["Z1".to_owned()], |n| world.read(n)).await.unwrap();
        assert_eq!(world.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn drift_of_a_stack_that_wrote_nothing_is_announced() {
        let world = World::new(vec![vpc("a", "vpc-1", "10.0.0.0/16"), vpc("b", "vpc-2", "10.1.0.0/16")]);
        let (tx, mut drift) = broadcast::channel(16);
        let shared = SharedObservation::new(Duration::from_millis(100), tx);
        shared.for_stack("a", &[], |n| world.read(n)).await.unwrap();
        shared.for_stack("b", &[], |n| world.read(n)).await.unwrap();
        // Somebody changes a's VPC outside the operator; b changes through its own write.
        {
            let mut r = world.resources.lock().unwrap();
            r[0] = vpc("a", "vpc-1", "10.9.0.0/16");
            r[1] = vpc("b", "vpc-2", "10.8.0.0/16");
        }
        shared.wrote("b");
        tokio::time::sleep(Duration::from_millis(150)).await;
        shared.for_stack("a", &[], |n| world.read(n)).await.unwrap();
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
        assert_eq!(shared.lookup("zone:example.com", fetch).await.unwrap(), "Z1");
        assert_eq!(shared.lookup("zone:example.com", fetch).await.unwrap(), "Z1");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(120)).await;
        shared.lookup("zone:example.com", fetch).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
