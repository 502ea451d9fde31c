//! The shard Leases at work: this replica's member Lease, a holder task per shard it takes
//! (kube-lease-manager renews it), and a watch of the Leases in the operator's namespace that
//! feeds [`shards::decide`]. The controller learns which shards it may work on through
//! [`Ownership`], and says which shards still have reconciles running, so that a shard is
//! given up only once its work has stopped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::shards::{self, LeaseView, View};

/// How this replica takes part in sharding.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The namespace of the Leases (the operator's own).
    pub namespace: String,
    /// This replica's name among the others (its pod name).
    pub identity: String,
    /// How many shards the stacks fall into; one is plain leader election.
    pub shards: u32,
    /// How long a Lease holds without renewal.
    pub duration: Duration,
}

impl LeaseSettings {
    /// Renewals start this long before expiry: half the duration, so that a late renewal has
    /// a quarter of it before work stops.
    fn grace(&self) -> u64 {
        (self.duration.as_secs() / 2).max(1)
    }

    /// Work on a shard stops this long before its lease expires: a quarter of the duration.
    pub fn margin(&self) -> Duration {
        self.duration / 4
    }

    fn manager(&self, client: &Client, name: &str) -> LeaseManagerBuilder {
        LeaseManagerBuilder::new(client.clone(), name)
            .with_namespace(self.namespace.clone())
            .with_identity(self.identity.clone())
            .with_duration(self.duration.as_secs().max(2))
            .with_grace(self.grace())
    }
}

/// The shards this replica holds, as the controller needs them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ownership {
    /// Counts the changes, so that the controller can say which one it has applied.
    pub generation: u64,
    /// Each held shard with the instant work on it must have stopped by.
    pub held: BTreeMap<u32, SystemTime>,
    /// Held shards being given up: no new work starts on them.
    pub releasing: BTreeSet<u32>,
}

impl Ownership {
    /// New work on the shard may start.
    pub fn may_start(&self, shard: u32, now: SystemTime) -> bool {
        !self.releasing.contains(&shard) && self.may_continue(shard, now)
    }

    /// Work under way on the shard may go on.
    pub fn may_continue(&self, shard: u32, now: SystemTime) -> bool {
        self.held
            .get(&shard)
            .is_some_and(|deadline| now < *deadline)
    }
}

/// What the controller reports: the generation of [`Ownership`] it has applied, and the shards
/// with reconciles running.
pub type Busy = (u64, BTreeSet<u32>);

/// The running leases of this replica.
pub struct Shards {
    pub ownership: watch::Receiver<Ownership>,
    pub busy: watch::Sender<Busy>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Shards {
    pub fn start(client: Client, settings: LeaseSettings) -> Shards {
        let (ownership_tx, ownership) = watch::channel(Ownership::default());
        let (busy, busy_rx) = watch::channel((0, BTreeSet::new()));
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(client, settings, ownership_tx, busy_rx, stop_rx));
        Shards {
            ownership,
            busy,
            stop: Some(stop),
            task,
        }
    }

    /// Gives every lease up (the controller has stopped working), so that other replicas take
    /// the shards at once rather than after the lease duration.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("shard leases not all released within 5 s; they will expire");
            self.task.abort();
        }
    }
}

async fn run(
    client: Client,
    settings: LeaseSettings,
    ownership: watch::Sender<Ownership>,
    mut busy: watch::Receiver<Busy>,
    mut stop: oneshot::Receiver<()>,
) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let me = settings.identity.clone();
    let member = hold(
        client.clone(),
        settings.clone(),
        shards::member_lease(&settings.identity),
    );
    let mut events = watcher::watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut leases: BTreeMap<String, LeaseView> = BTreeMap::new();
    let mut relisted: Option<BTreeMap<String, LeaseView>> = None;
    let mut holders: HashMap<u32, Holder> = HashMap::new();
    // Shards being given up, with the generation that first told the controller so.
    let mut releasing: BTreeMap<u32, u64> = BTreeMap::new();
    let mut generation = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_cleanup = SystemTime::now();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            event = events.next() => match event {
                Some(Ok(Event::Apply(l))) | Some(Ok(Event::InitApply(l))) => {
                    let view = LeaseView::of(&l);
                    match relisted.as_mut() {
                        Some(r) => r.insert(l.name_any(), view),
                        None => leases.insert(l.name_any(), view),
                    };
                }
                Some(Ok(Event::Delete(l))) => {
                    leases.remove(&l.name_any());
                }
                Some(Ok(Event::Init)) => relisted = Some(BTreeMap::new()),
                Some(Ok(Event::InitDone)) => {
                    if let Some(r) = relisted.take() {
                        leases = r;
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "watching leases failed; retrying"),
                None => break,
            },
            _ = busy.changed() => {}
            _ = tick.tick() => {}
        }
        let now = SystemTime::now();
        // A shard given back counts as held until the Leases show it is no longer ours, so
        // that it is not taken again meanwhile.
        holders.retain(|s, h| {
            !h.task.is_finished()
                || (h.release.is_none()
                    && leases
                        .get(&shards::shard_lease(*s))
                        .and_then(|l| l.holder_at(now))
                        == Some(me.as_str()))
        });
        let holding: BTreeSet<u32> = holders.keys().copied().collect();
        let decision = shards::decide(&View {
            me: &me,
            shards: settings.shards,
            leases: &leases,
            holding: &holding,
            now,
            margin: settings.margin(),
        });
        for s in &decision.cancel {
            holders.remove(s);
        }
        for &s in &decision.acquire {
            holders
                .entry(s)
                .or_insert_with(|| hold(client.clone(), settings.clone(), shards::shard_lease(s)));
        }
        // A shard stays marked while it is still to be given up (or already is); one whose
        // release is no longer wanted, before it was asked for, is worked on again.
        let sent = |s: &u32| holders.get(s).is_some_and(|h| h.release.is_none());
        releasing.retain(|s, _| {
            decision.held.contains_key(s) && (decision.release.contains(s) || sent(s))
        });
        for &s in &decision.release {
            releasing.entry(s).or_insert(generation + 1);
        }
        // Give a shard up once the controller has applied the ownership that marked it (so it
        // starts nothing more there) and has nothing running on it.
        let (applied, running) = busy.borrow().clone();
        for (s, marked) in &releasing {
            if applied >= *marked
                && !running.contains(s)
                && holders.get_mut(s).is_some_and(Holder::release)
            {
                tracing::info!(
                    shard = s,
                    members = decision.members,
                    share = decision.share,
                    "giving up a shard"
                );
            }
        }
        let mut now_owned = Ownership {
            generation,
            held: decision.held,
            releasing: releasing.keys().copied().collect(),
        };
        ownership.send_if_modified(|o| {
            if o.held.keys().ne(now_owned.held.keys()) {
                let held: Vec<u32> = now_owned.held.keys().copied().collect();
                tracing::info!(shards = ?held, members = decision.members, "shards held");
            }
            // Deadlines move on with every renewal: the controller gets each one.
            let changed = (&o.held, &o.releasing) != (&now_owned.held, &now_owned.releasing);
            if changed {
                generation += 1;
                now_owned.generation = generation;
                *o = now_owned;
            }
            changed
        });
        if now
            .duration_since(last_cleanup)
            .is_ok_and(|d| d > settings.duration)
        {
            last_cleanup = now;
            for (name, version) in shards::stale_members(&me, &leases, now, settings.duration * 10)
            {
                tracing::info!(lease = %name, "deleting the member lease of a replica long gone");
                // Only as it was seen: a replica that came back under the same name keeps it.
                let api = api.clone();
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        resource_version: version,
                        uid: None,
                    }),
                    ..Default::default()
                };
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(10), api.delete(&name, &params))
                            .await;
                });
            }
        }
    }
    // Stopping: no more work anywhere, then every lease goes back at once (the member Lease
    // too, so that the others' shares grow without waiting for it to expire).
    ownership.send_replace(Ownership::default());
    let mut all: Vec<Holder> = holders.into_values().collect();
    all.push(member);
    futures::future::join_all(all.iter_mut().map(Holder::give_up)).await;
}

/// A task holding one lease: renews it for as long as it runs, gives it up when told. Dropped,
/// it stops renewing (the lease then expires).
struct Holder {
    release: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Holder {
    /// Asks for the lease to be given back, without waiting.
    fn release(&mut self) -> bool {
        match self.release.take() {
            Some(r) => {
                let _ = r.send(());
                true
            }
            None => false,
        }
    }

    /// Gives the lease back and waits until it is.
    async fn give_up(&mut self) {
        self.release();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hold(client: Client, settings: LeaseSettings, name: String) -> Holder {
    let (release, rx) = oneshot::channel();
    Holder {
        task: tokio::spawn(keep(client, settings, name, rx)),
        release: Some(release),
    }
}

/// Takes the named lease as soon as it is free and renews it until `release` fires (then gives
/// it back). On an API error the manager is built anew: its first look tells whether the lease
/// is still this replica's.
async fn keep(
    client: Client,
    settings: LeaseSettings,
    name: String,
    mut release: oneshot::Receiver<()>,
) {
    loop {
        let manager: LeaseManager = tokio::select! {
            _ = &mut release => return give_back(&client, &settings, &name).await,
            built = settings.manager(&client, &name).build() => match built {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "cannot reach the lease; retrying");
                    tokio::select! {
                        _ = &mut release => return give_back(&client, &settings, &name).await,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        loop {
            tokio::select! {
                biased;
                _ = &mut release => {
                    if let Err(e) = manager.release().await {
                        tracing::warn!(lease = %name, error = %e, "cannot give the lease up; it will expire");
                    }
                    return;
                }
                changed = manager.changed() => match changed {
                    Ok(held) => tracing::debug!(lease = %name, held, "lease changed hands"),
                    Err(e) => {
                        tracing::warn!(lease = %name, error = %e, "renewing the lease failed; retrying");
                        break;
                    }
                },
            }
        }
        tokio::select! {
            _ = &mut release => return give_back(&client, &settings, &name).await,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Gives the lease back if it is still this replica's (asked while no manager was at hand).
async fn give_back(client: &Client, settings: &LeaseSettings, name: &str) {
    let attempt = async {
        if let Ok(manager) = settings.manager(client, name).build().await {
            if matches!(manager.changed().await, Ok(true)) {
                let _ = manager.release().await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), attempt).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_starts_only_on_held_shards_not_being_given_up_and_stops_at_the_deadline() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let o = Ownership {
            held: [
                (1, now + Duration::from_secs(5)),
                (2, now + Duration::from_secs(5)),
            ]
            .into(),
            releasing: [2].into(),
            ..Default::default()
        };
        assert!(o.may_start(1, now));
        assert!(!o.may_start(2, now), "being given up");
        assert!(o.may_continue(2, now), "but what runs may finish");
        assert!(!o.may_start(3, now));
        assert!(!o.may_continue(1, now + Duration::from_secs(5)));
    }
}
