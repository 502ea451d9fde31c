//! The controller's work queue: which stack to reconcile next.
//!
//! Two classes of work. `Now` is a new stack, a changed spec, a deletion, a stack that waits on
//! AWS or failed, or one whose resources drifted; `Resync` is the periodic look at a stack
//! that is Ready. Due work of the first class always goes first, and within a class the
//! earliest due goes first, so nothing is starved: a saturated controller reaches its Ready
//! stacks later than their resync interval (their resyncs stretch), but it reaches every
//! stack, in the order it fell due. A stack is never reconciled twice at once: work for a
//! stack that is running waits until it ends.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

/// How urgent a stack's next reconcile is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Urgency {
    Now,
    Resync,
}

#[derive(Clone, Copy, Debug)]
struct Due {
    urgency: Urgency,
    at: Instant,
    seq: u64,
}

/// The queue. `K` names a stack.
pub struct WorkQueue<K> {
    /// Queued work per class, earliest first (`seq` keeps equal times in arrival order).
    classes: [BTreeSet<(Instant, u64, K)>; 2],
    queued: HashMap<K, Due>,
    running: HashSet<K>,
    /// Work that arrived for a running stack: queued when that run ends.
    deferred: HashMap<K, (Urgency, Instant)>,
    seq: u64,
}

impl<K: Clone + Ord + Hash> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            classes: [BTreeSet::new(), BTreeSet::new()],
            queued: HashMap::new(),
            running: HashSet::new(),
            deferred: HashMap::new(),
            seq: 0,
        }
    }
}

fn class(u: Urgency) -> usize {
    match u {
        Urgency::Now => 0,
        Urgency::Resync => 1,
    }
}

/// Two requests for the same stack make one: the more urgent class, the earlier time.
fn merge(a: (Urgency, Instant), b: (Urgency, Instant)) -> (Urgency, Instant) {
    (a.0.min(b.0), a.1.min(b.1))
}

impl<K: Clone + Ord + Hash> WorkQueue<K> {
    /// Asks for a reconcile of `key` at `at` (merged with what is already asked for it).
    pub fn schedule(&mut self, key: K, urgency: Urgency, at: Instant) {
        if self.running.contains(&key) {
            let wanted = match self.deferred.get(&key) {
                Some(d) => merge(*d, (urgency, at)),
                None => (urgency, at),
            };
            self.deferred.insert(key, wanted);
            return;
        }
        let wanted = match self.unqueue(&key) {
            Some(d) => merge((d.urgency, d.at), (urgency, at)),
            None => (urgency, at),
        };
        self.seq += 1;
        let due = Due {
            urgency: wanted.0,
            at: wanted.1,
            seq: self.seq,
        };
        self.classes[class(due.urgency)].insert((due.at, due.seq, key.clone()));
        self.queued.insert(key, due);
    }

    fn unqueue(&mut self, key: &K) -> Option<Due> {
        let d = self.queued.remove(key)?;
        self.classes[class(d.urgency)].remove(&(d.at, d.seq, key.clone()));
        Some(d)
    }

    /// The stack to reconcile now, marked running; `None` when nothing is due.
    pub fn next(&mut self, now: Instant) -> Option<(K, Urgency)> {
        self.next_of(now, true)
    }

    /// [`WorkQueue::next`], with resyncs only when `resyncs` allows them.
    pub fn next_of(&mut self, now: Instant, resyncs: bool) -> Option<(K, Urgency)> {
        let classes = if resyncs { 2 } else { 1 };
        for c in self.classes.iter().take(classes) {
            if let Some((at, _, key)) = c.first() {
                if *at <= now {
                    let key = key.clone();
                    let due = self.unqueue(&key)?;
                    self.running.insert(key.clone());
                    return Some((key, due.urgency));
                }
            }
        }
        None
    }

    /// When the next queued work falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.next_due_of(true)
    }

    /// [`WorkQueue::next_due`], of urgent work only unless `resyncs`.
    pub fn next_due_of(&self, resyncs: bool) -> Option<Instant> {
        let classes = if resyncs { 2 } else { 1 };
        self.classes
            .iter()
            .take(classes)
            .filter_map(|c| c.first().map(|(at, _, _)| *at))
            .min()
    }

    /// The run of `key` ended: work that arrived meanwhile is queued.
    pub fn done(&mut self, key: &K) {
        self.running.remove(key);
        if let Some((urgency, at)) = self.deferred.remove(key) {
            self.schedule(key.clone(), urgency, at);
        }
    }

    /// The stack is gone (or no longer this process's): drop its queued work.
    pub fn remove(&mut self, key: &K) {
        self.unqueue(key);
        self.deferred.remove(key);
    }

    pub fn is_running(&self, key: &K) -> bool {
        self.running.contains(key)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Queued work, by class: `(now, resync)`.
    pub fn depth(&self) -> (usize, usize) {
        (self.classes[0].len(), self.classes[1].len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn urgent_work_goes_before_due_resyncs_and_each_class_in_due_order() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        for (i, name) in ["r1", "r2", "r3"].iter().enumerate() {
            q.schedule(name.to_string(), Urgency::Resync, secs(t0, i as u64));
        }
        q.schedule("new".to_string(), Urgency::Now, secs(t0, 5));
        q.schedule("failing".to_string(), Urgency::Now, secs(t0, 4));
        let now = secs(t0, 10);
        let order: Vec<String> = std::iter::from_fn(|| q.next(now).map(|(k, _)| k)).collect();
        assert_eq!(order, ["failing", "new", "r1", "r2", "r3"]);
    }

    #[test]
    fn nothing_is_handed_out_before_it_is_due() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        q.schedule("a", Urgency::Resync, secs(t0, 30));
        q.schedule("b", Urgency::Now, secs(t0, 15));
        assert_eq!(q.next(t0), None);
        assert_eq!(q.next_due(), Some(secs(t0, 15)));
        // A resync that is due goes while urgent work is not due yet.
        assert_eq!(q.next(secs(t0, 31)), Some(("b", Urgency::Now)));
        assert_eq!(q.next(secs(t0, 31)), Some(("a", Urgency::Resync)));
    }

    #[test]
    fn a_saturated_queue_stretches_resyncs_but_reaches_every_stack() {
        // Two workers, 40 Ready stacks resyncing every 30 s, each reconcile taking 2 s: the
        // queue never drains. Every stack is still reached, over and over, in turn.
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        for i in 0..40u64 {
            q.schedule(i, Urgency::Resync, secs(t0, i % 30));
        }
        let mut reached = HashMap::new();
        let mut now = t0;
        let mut running: Vec<(Instant, u64)> = Vec::new();
        let mut new_stack_reached = None;
        while now < secs(t0, 600) {
            if now == secs(t0, 300) {
                q.schedule(1000, Urgency::Now, now);
            }
            running.retain(|(end, k)| {
                if *end <= now {
                    q.done(k);
                    q.schedule(*k, Urgency::Resync, now + Duration::from_secs(30));
                    false
                } else {
                    true
                }
            });
            while running.len() < 2 {
                let Some((k, _)) = q.next(now) else { break };
                if k == 1000 {
                    new_stack_reached.get_or_insert(now);
                }
                *reached.entry(k).or_insert(0u32) += 1;
                running.push((now + Duration::from_secs(2), k));
            }
            now += Duration::from_secs(1);
        }
        let counts: Vec<u32> = (0..40)
            .map(|k| reached.get(&k).copied().unwrap_or(0))
            .collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(
            *min >= 10,
            "every stack is reconciled again and again: {counts:?}"
        );
        assert!(max - min <= 1, "in turn: {counts:?}");
        assert_eq!(
            new_stack_reached,
            Some(secs(t0, 300)),
            "a new stack goes first"
        );
    }

    #[test]
    fn a_running_stack_is_never_handed_out_twice_and_its_new_work_waits() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        q.schedule("a", Urgency::Resync, t0);
        assert_eq!(q.next(t0), Some(("a", Urgency::Resync)));
        q.schedule("a", Urgency::Now, t0);
        assert_eq!(q.next(t0), None);
        assert!(q.is_running(&"a"));
        q.done(&"a");
        assert_eq!(q.next(t0), Some(("a", Urgency::Now)));
    }

    #[test]
    fn resyncs_can_be_held_back_while_urgent_work_goes() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        q.schedule("ready", Urgency::Resync, t0);
        q.schedule("new", Urgency::Now, t0);
        assert_eq!(q.next_of(t0, false), Some(("new", Urgency::Now)));
        assert_eq!(q.next_of(t0, false), None);
        assert_eq!(q.next_of(t0, true), Some(("ready", Urgency::Resync)));
    }

    #[test]
    fn requests_merge_to_the_most_urgent_and_earliest() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        q.schedule("a", Urgency::Resync, secs(t0, 300));
        q.schedule("a", Urgency::Now, secs(t0, 1));
        q.schedule("a", Urgency::Resync, secs(t0, 600));
        assert_eq!(q.depth(), (1, 0));
        assert_eq!(q.next(secs(t0, 1)), Some(("a", Urgency::Now)));
        q.done(&"a");
        q.schedule("b", Urgency::Resync, t0);
        q.remove(&"b");
        assert_eq!(q.next(secs(t0, 1000)), None);
    }
}
