//! The reconciles under way: what each one is, how its end is logged (the record of who
//! worked on a stack when), the shards that let this process start and continue them, and the
//! drain that lets them finish when the process stops.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::{AbortHandle, JoinSet};

use super::leases::{Ownership, Shards};
use super::queue::Urgency;
use super::{shards, Error, Key, Next};

/// The outcome of one reconcile task.
pub(super) struct Ended {
    pub(super) key: Key,
    pub(super) urgency: Urgency,
    pub(super) started: SystemTime,
    pub(super) took: Duration,
    pub(super) result: Result<Next, Error>,
}

/// A reconcile under way.
pub(super) struct Running {
    pub(super) key: Key,
    /// Its shard (a digest of the key), worked out once.
    pub(super) shard: u32,
    pub(super) urgency: Urgency,
    pub(super) started: SystemTime,
    pub(super) abort: AbortHandle,
}

pub(super) fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn stack_of(key: &Key) -> String {
    format!("{}/{}", key.0, key.1)
}

/// The record of a reconcile's end: with its start, it tells who worked on a stack when.
pub(super) fn log_end(key: &Key, started: SystemTime, error: Option<&Error>) {
    tracing::debug!(
        stack = %stack_of(key),
        started_ms = millis(started),
        ended_ms = millis(SystemTime::now()),
        result = error.map_or("ok", Error::reason),
        "reconcile ended"
    );
}

/// A reconcile stopped before its end.
pub(super) fn log_stopped(r: &Running, why: &str) {
    tracing::warn!(
        stack = %stack_of(&r.key),
        started_ms = millis(r.started),
        ended_ms = millis(SystemTime::now()),
        why,
        "reconcile stopped"
    );
}

/// Which stacks this process works on: every one, or those of the shards it holds.
pub(super) struct Assignment {
    pub(super) shards: Option<Shards>,
    pub(super) count: u32,
    pub(super) current: Ownership,
}

impl Assignment {
    pub(super) fn shard(&self, key: &Key) -> u32 {
        shards::shard_of(&stack_of(key), self.count)
    }

    pub(super) fn may_start(&self, key: &Key) -> bool {
        self.shards.is_none() || self.current.may_start(self.shard(key), SystemTime::now())
    }

    pub(super) fn may_continue(&self, shard: u32) -> bool {
        self.shards.is_none() || self.current.may_continue(shard, SystemTime::now())
    }

    /// Resolves when the held shards change (never without shards).
    pub(super) async fn changed(&mut self) -> Ownership {
        match self.shards.as_mut() {
            Some(s) => {
                if s.ownership.changed().await.is_err() {
                    futures::future::pending::<()>().await;
                }
                s.ownership.borrow_and_update().clone()
            }
            None => futures::future::pending().await,
        }
    }

    /// Tells the lease side which ownership this loop has applied and which shards still have
    /// reconciles running.
    pub(super) fn report_busy(&self, running: &HashMap<tokio::task::Id, Running>) {
        if let Some(s) = &self.shards {
            let busy = (
                self.current.generation,
                running.values().map(|r| r.shard).collect(),
            );
            s.busy.send_if_modified(|b| {
                let changed = *b != busy;
                *b = busy;
                changed
            });
        }
    }

    /// The earliest instant a running reconcile must have stopped by.
    pub(super) fn earliest_deadline(
        &self,
        running: &HashMap<tokio::task::Id, Running>,
    ) -> Option<Instant> {
        self.shards.as_ref()?;
        let deadline = running
            .values()
            .filter(|r| !r.abort.is_finished())
            .filter_map(|r| self.current.held.get(&r.shard))
            .min()?;
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Some(Instant::now() + left)
    }

    /// Stops the reconciles of shards this replica may no longer work on.
    pub(super) fn stop_expired(&self, running: &HashMap<tokio::task::Id, Running>) {
        for r in running.values() {
            if !self.may_continue(r.shard) {
                r.abort.abort();
            }
        }
    }
}

/// Lets the reconciles under way finish when the process stops: the leases still hold
/// meanwhile, and one whose shard is lost stops; after `grace`, the rest are stopped.
pub(super) async fn drain(
    running: &mut JoinSet<Ended>,
    under_way: &mut HashMap<tokio::task::Id, Running>,
    assignment: &mut Assignment,
    grace: Duration,
) {
    tracing::info!(
        running = running.len(),
        "stopping: letting reconciles under way finish"
    );
    // The leases still hold while reconciles finish: one whose shard is lost meanwhile stops.
    let grace_ends = Instant::now() + grace;
    while !running.is_empty() {
        let wake = assignment
            .earliest_deadline(under_way)
            .map_or(grace_ends, |d| d.min(grace_ends));
        tokio::select! {
            ended = running.join_next_with_id() => match ended {
                Some(Ok((id, ended))) => {
                    under_way.remove(&id);
                    log_end(&ended.key, ended.started, ended.result.as_ref().err());
                }
                Some(Err(e)) => {
                    if let Some(r) = under_way.remove(&e.id()) {
                        log_stopped(&r, "the process stops");
                    }
                }
                None => break,
            },
            owned = assignment.changed() => {
                assignment.current = owned;
                assignment.stop_expired(under_way);
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= grace_ends {
                    tracing::warn!("reconciles still under way after the grace period; stopping them");
                    running.abort_all();
                } else {
                    assignment.stop_expired(under_way);
                }
            }
        }
    }
}
