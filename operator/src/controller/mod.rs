//! The Kubernetes controller: thin. It watches WebStacks, decides which to reconcile next
//! ([`queue`]), runs the same engine as the CLI ([`reconcile`]) with one AWS observation per
//! account and region shared by every stack, and serves metrics and probes ([`serve`]). With
//! several replicas, each works on the stacks of the shards whose Leases it holds
//! ([`shards`], [`leases`]; the reconciles under way and the shutdown drain: `running`). After
//! the AWS pass, a stack's objects in the cluster are applied (`in_cluster`, [`crate::workloads`]).

mod in_cluster;
pub mod leases;
pub mod metrics;
pub mod queue;
mod reconcile;
mod running;
pub mod serve;
pub mod shards;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter as EventReporter};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use rand::Rng;
use tokio::task::JoinSet;

use crate::api::WebStack;
use crate::aws::Connect;
use crate::engine::shared::{in_lane, Lane, Sharing};
use leases::{LeaseSettings, Ownership, Shards};
pub use metrics::Metrics;
use queue::{Urgency, WorkQueue};
pub use reconcile::{Context, Error, Next, FINALIZER, MANAGER};
use running::{log_end, log_stopped, millis, stack_of, Assignment, Ended, Running};

/// Settings of `webstack run`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Time between reconciles of a Ready stack (drift detection), before jitter; also the
    /// longest a shared AWS observation serves before it is read again.
    pub resync: Duration,
    /// Time before a stack that is still converging is looked at again.
    pub retry: Duration,
    /// Reconciles at once.
    pub concurrency: u16,
    /// Only this namespace, or all.
    pub namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub metrics_address: Option<SocketAddr>,
    /// How long reconciles under way may take to finish once the process is told to stop.
    pub grace: Duration,
    /// The IAM roles each namespace's stacks may assume.
    pub roles: crate::roles::RoleMap,
    /// Shard Leases, when several replicas (or a replica and its successor) share the work;
    /// without them this process reconciles every stack.
    pub leases: Option<LeaseSettings>,
    /// The IngressClass of in-cluster workloads whose spec names none.
    pub ingress_class: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resync: Duration::from_secs(300),
            retry: Duration::from_secs(15),
            concurrency: 4,
            namespace: None,
            metrics_address: None,
            grace: Duration::from_secs(20),
            roles: Default::default(),
            leases: None,
            ingress_class: None,
        }
    }
}

/// Why the controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// `d` plus up to a tenth of it, so that a thousand stacks do not resync in step.
fn jitter(d: Duration) -> Duration {
    let extra = d.as_millis() as u64 / 10;
    d + Duration::from_millis(rand::rng().random_range(0..=extra.max(1)))
}

/// A stack in the queue: namespace and name.
type Key = (String, String);

fn key_of(ws: &WebStack) -> Key {
    (
        ws.namespace().unwrap_or_else(|| "default".into()),
        ws.name_any(),
    )
}

/// What about an object makes it worth a reconcile when it changes: not its status (the
/// controller's own writes), but its spec, identity, finalizers and deletion.
fn trigger_of(ws: &WebStack) -> (Option<String>, Option<i64>, bool, Vec<String>) {
    (
        ws.metadata.uid.clone(),
        ws.metadata.generation,
        ws.metadata.deletion_timestamp.is_some(),
        ws.finalizers().to_vec(),
    )
}

/// Resolves when the process is told to stop (SIGTERM or SIGINT).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the controller until the process is told to stop; reconciles under way are given the
/// grace period to finish.
pub async fn run(client: Client, settings: Settings, connect: Connect) -> Result<(), RunError> {
    run_until(client, settings, connect, stop_signal()).await
}

/// [`run`], until `stop` resolves.
pub async fn run_until(
    client: Client,
    settings: Settings,
    connect: Connect,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let sharing = Arc::new(Sharing::new(settings.resync));
    let mut connect = connect;
    connect.sharing = Some(sharing.clone());
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(serve::Health::default());
    let mut server = None;
    if let Some(address) = settings.metrics_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| RunError::Metrics { address, source })?;
        if let Ok(bound) = listener.local_addr() {
            tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
        }
        let render = {
            let (metrics, connect, sharing) = (metrics.clone(), connect.clone(), sharing.clone());
            Arc::new(move || {
                metrics.aws_calls(&connect.call_counts());
                for (scope, shared) in sharing.all() {
                    let scope = short_scope(&scope);
                    metrics.observation(
                        &scope,
                        shared.age().map(|a| a.as_secs_f64()),
                        shared.refreshes(),
                        shared.last_read().map(|d| d.as_secs_f64()),
                    );
                }
                metrics.render()
            })
        };
        server = Some(tokio::spawn(serve::serve(listener, health.clone(), render)));
    }
    let stacks: Api<WebStack> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), EventReporter::from(MANAGER)),
        cluster: crate::workloads::Cluster::new(client.clone(), settings.ingress_class.clone()),
        client,
        connect,
        metrics: metrics.clone(),
        roles: settings.roles.clone(),
    });
    let mut events = watcher(stacks).boxed();
    let mut drift = sharing.subscribe();
    let mut queue: WorkQueue<Key> = WorkQueue::default();
    let mut store: HashMap<Key, Arc<WebStack>> = HashMap::new();
    let mut relisted: Option<HashSet<Key>> = None;
    let mut running: JoinSet<Ended> = JoinSet::new();
    let mut under_way: HashMap<tokio::task::Id, Running> = HashMap::new();
    let mut assignment = Assignment {
        count: settings.leases.as_ref().map_or(1, |l| l.shards.max(1)),
        shards: settings
            .leases
            .clone()
            .map(|l| Shards::start(ctx.client.clone(), l)),
        current: Ownership::default(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut resyncs_running = 0usize;
    let mut owned_count: ((usize, u64), usize) = ((usize::MAX, 0), 0);
    tokio::pin!(stop);
    loop {
        health.turned();
        let now = Instant::now();
        while queue.running() < usize::from(settings.concurrency) {
            // Resyncs take at most a quarter of the slots: the rest (and the CPU) stays free
            // for stacks somebody waits for.
            let resyncs = resyncs_running < resync_slots(settings.concurrency);
            let Some((key, urgency)) = queue.next_of(now, resyncs) else {
                break;
            };
            if urgency == Urgency::Resync {
                resyncs_running += 1;
            }
            let ws = match store.get(&key) {
                Some(ws) if assignment.may_start(&key) => ws.clone(),
                _ => {
                    if urgency == Urgency::Resync {
                        resyncs_running -= 1;
                    }
                    queue.done(&key);
                    continue;
                }
            };
            let ctx = ctx.clone();
            let started = SystemTime::now();
            tracing::debug!(stack = %stack_of(&key), started_ms = millis(started), "reconcile started");
            let task_key = key.clone();
            let abort = running.spawn(async move {
                let clock = Instant::now();
                let result = match urgency {
                    // A stack somebody waits for: its AWS calls go before background reads.
                    Urgency::Now => in_lane(Lane::Urgent, reconcile::reconcile(ws, &ctx)).await,
                    Urgency::Resync => reconcile::reconcile(ws, &ctx).await,
                };
                Ended {
                    key: task_key,
                    urgency,
                    started,
                    took: clock.elapsed(),
                    result,
                }
            });
            under_way.insert(
                abort.id(),
                Running {
                    shard: assignment.shard(&key),
                    key,
                    urgency,
                    started,
                    abort,
                },
            );
            assignment.report_busy(&under_way);
        }
        let (now_depth, resync_depth) = queue.depth();
        metrics.queue(now_depth, resync_depth, queue.running());
        // The stacks this replica owns, counted again only when the number of stacks or the
        // held shards change (a digest per stack: not on every turn of the loop; the shards'
        // generation moves with every renewal, so a same-size change shows within seconds).
        let census = (store.len(), assignment.current.generation);
        if owned_count.0 != census {
            let n = match assignment.shards {
                None => store.len(),
                Some(_) => store.keys().filter(|k| assignment.may_start(k)).count(),
            };
            owned_count = (census, n);
        }
        metrics.stacks(store.len(), owned_count.1);
        // With every resync slot taken, only urgent work (or a reconcile ending) wakes the loop.
        let wake = queue.next_due_of(resyncs_running < resync_slots(settings.concurrency));
        let deadline = assignment.earliest_deadline(&under_way);
        tokio::select! {
            _ = &mut stop => break,
            event = events.next() => match event {
                Some(Ok(event)) => on_event(
                    event,
                    &mut store,
                    &mut queue,
                    &mut relisted,
                    &sharing,
                    &health,
                    &assignment,
                ),
                Some(Err(e)) => tracing::warn!(error = %e, "watching WebStacks failed; retrying"),
                None => break,
            },
            changed = drift.recv() => {
                if let Ok(stack) = changed {
                    if let Some((ns, name)) = stack.split_once('/') {
                        let key = (ns.to_owned(), name.to_owned());
                        if store.contains_key(&key) && assignment.may_start(&key) {
                            tracing::info!(stack = %stack, "AWS resources changed outside the operator; reconciling");
                            queue.schedule(key, Urgency::Now, Instant::now());
                        }
                    }
                }
            }
            Some(ended) = running.join_next_with_id(), if !running.is_empty() => {
                let id = match &ended {
                    Ok((id, _)) => *id,
                    Err(e) => e.id(),
                };
                if let Some(r) = under_way.remove(&id) {
                    if r.urgency == Urgency::Resync {
                        resyncs_running = resyncs_running.saturating_sub(1);
                    }
                    match ended {
                        Ok((_, ended)) => on_ended(ended, &mut queue, &settings, &metrics),
                        Err(_) => {
                            log_stopped(&r, "this replica no longer holds the stack's shard");
                            queue.done(&r.key);
                        }
                    }
                }
                assignment.report_busy(&under_way);
            }
            owned = assignment.changed() => {
                on_ownership(owned, &mut assignment, &store, &mut queue, &sharing);
                assignment.stop_expired(&under_way);
                assignment.report_busy(&under_way);
            }
            // A lease not renewed in time: its reconciles stop before another replica may
            // take it.
            _ = sleep_until(deadline) => {
                assignment.stop_expired(&under_way);
            }
            _ = sleep_until(wake), if wake.is_some() => {}
            _ = tick.tick() => {}
        }
    }
    running::drain(
        &mut running,
        &mut under_way,
        &mut assignment,
        settings.grace,
    )
    .await;
    if let Some(s) = assignment.shards.take() {
        s.stop().await;
    }
    if let Some(s) = server {
        s.abort();
    }
    Ok(())
}

/// The held shards changed: stacks of shards taken over are reconciled at once (after a read
/// begun after the take-over), and queued work of shards no longer held is dropped.
fn on_ownership(
    owned: Ownership,
    assignment: &mut Assignment,
    store: &HashMap<Key, Arc<WebStack>>,
    queue: &mut WorkQueue<Key>,
    sharing: &Sharing,
) {
    let workable = |a: &Assignment| -> Vec<bool> {
        let now = SystemTime::now();
        (0..a.count).map(|s| a.current.may_start(s, now)).collect()
    };
    let before = workable(assignment);
    assignment.current = owned;
    let after = workable(assignment);
    if before != after {
        for key in store.keys() {
            let shard = assignment.shard(key) as usize;
            if after[shard] && !before[shard] {
                sharing.taken_over(&stack_of(key));
                queue.schedule(key.clone(), Urgency::Now, Instant::now());
            } else if !after[shard] {
                queue.remove(key);
            }
        }
    }
}

/// Reconciles of Ready stacks at once: a quarter of the slots, at least one.
fn resync_slots(concurrency: u16) -> usize {
    (usize::from(concurrency) / 4).max(1)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => futures::future::pending().await,
    }
}

/// The watch of WebStacks, with the runtime's backoff when the API server fails.
fn watcher(
    api: Api<WebStack>,
) -> impl futures::Stream<Item = Result<WatchEvent<WebStack>, watcher::Error>> {
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .map_err(|e| {
            tracing::debug!(error = %e, "watch error");
            e
        })
}

/// `account/region` with the account shortened to a digest: labels never carry a key id.
fn short_scope(scope: &str) -> String {
    match scope.split_once('/') {
        Some((account, region)) => {
            format!("{}/{region}", &crate::aws::hex_digest(account)[..8])
        }
        None => scope.to_owned(),
    }
}

fn on_event(
    event: WatchEvent<WebStack>,
    store: &mut HashMap<Key, Arc<WebStack>>,
    queue: &mut WorkQueue<Key>,
    relisted: &mut Option<HashSet<Key>>,
    sharing: &Sharing,
    health: &serve::Health,
    assignment: &Assignment,
) {
    let mut seen = |ws: WebStack, queue: &mut WorkQueue<Key>| {
        let key = key_of(&ws);
        let wanted = assignment.may_start(&key)
            && store
                .get(&key)
                .is_none_or(|old| trigger_of(old) != trigger_of(&ws));
        store.insert(key.clone(), Arc::new(ws));
        if wanted {
            queue.schedule(key.clone(), Urgency::Now, Instant::now());
        }
        key
    };
    match event {
        WatchEvent::Apply(ws) => {
            seen(ws, queue);
        }
        WatchEvent::Delete(ws) => {
            let key = key_of(&ws);
            store.remove(&key);
            queue.remove(&key);
            sharing.forget(&stack_of(&key));
        }
        WatchEvent::Init => *relisted = Some(HashSet::new()),
        WatchEvent::InitApply(ws) => {
            let key = seen(ws, queue);
            if let Some(r) = relisted.as_mut() {
                r.insert(key);
            }
        }
        WatchEvent::InitDone => {
            // Objects deleted while the watch was down are gone from the new list.
            if let Some(listed) = relisted.take() {
                let gone: Vec<Key> = store
                    .keys()
                    .filter(|k| !listed.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    store.remove(&key);
                    queue.remove(&key);
                }
            }
            health.set_ready(true);
        }
    }
}

fn on_ended(ended: Ended, queue: &mut WorkQueue<Key>, settings: &Settings, metrics: &Metrics) {
    let urgency = match ended.urgency {
        Urgency::Now => "now",
        Urgency::Resync => "resync",
    };
    let stack = stack_of(&ended.key);
    let error = ended.result.as_ref().err().map(Error::reason);
    log_end(&ended.key, ended.started, ended.result.as_ref().err());
    metrics.reconciled(urgency, ended.took.as_secs_f64(), error);
    queue.done(&ended.key);
    let now = Instant::now();
    match ended.result {
        Ok(Next::Resync) => {
            tracing::debug!(%stack, took = ?ended.took, "reconciled");
            queue.schedule(ended.key, Urgency::Resync, now + jitter(settings.resync));
        }
        Ok(Next::Retry) => {
            queue.schedule(ended.key, Urgency::Now, now + jitter(settings.retry));
        }
        Ok(Next::Change) => {}
        Err(e) => {
            tracing::warn!(%stack, error = %e, "reconcile failed; retrying");
            queue.schedule(ended.key, Urgency::Now, now + jitter(settings.retry));
        }
    }
}
