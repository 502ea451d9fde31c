//! The reconcile engine: observe (batched, by tag), compare, act, record. It walks a graph of
//! resource nodes and knows nothing of VPCs or buckets; the area modules supply a [`Handler`]
//! per kind and an [`Observer`] per family of kinds.

pub mod dag;
pub mod model;
pub mod plan;
pub mod provider;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aws::error::{AwsError, ErrorClass};
pub use dag::Outcome;
pub use model::{FieldChange, Kind, Node, NodeId, Observed, Prop, Readiness, Resolved};
pub use plan::{Action, Graph, KindRules, Observation, Plan, PlannedChange};
pub use provider::{Handler, Observer, Selector};

/// How long and how often the engine waits for resources that settle asynchronously.
#[derive(Clone, Debug)]
pub struct WaitPolicy {
    pub first_poll: Duration,
    pub max_poll: Duration,
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            first_poll: Duration::from_secs(2),
            max_poll: Duration::from_secs(20),
            timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// What happened to one resource, for progress output and Kubernetes events.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub what: EventKind,
    pub kind: Kind,
    pub role: String,
    pub id: Option<String>,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
    Released,
    Waiting,
    Retrying,
    Failed,
}

/// Receives events while the engine works.
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

/// Why the engine could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("observing {kinds} failed: {source}")]
    Observe { kinds: String, source: AwsError },
    #[error("{}", refusal_message(.0))]
    Refused(Vec<PlannedChange>),
    #[error("the desired graph is invalid: {0}")]
    Graph(#[from] plan::GraphError),
    #[error("no handler for resource kind {0}")]
    NoHandler(Kind),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Observe { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

fn refusal_message(refused: &[PlannedChange]) -> String {
    let parts: Vec<String> = refused
        .iter()
        .flat_map(|c| {
            c.changes.iter().map(move |f| {
                format!(
                    "{} {} ({}): {} cannot be changed in place (is {}, wanted {})",
                    c.kind,
                    c.role,
                    c.id.as_deref().unwrap_or("-"),
                    f.field,
                    f.before,
                    f.after
                )
            })
        })
        .collect();
    format!(
        "refused to replace existing resources: {}",
        parts.join("; ")
    )
}

/// A node that did not converge.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeFailure {
    pub node: NodeId,
    pub error: String,
    pub code: String,
    pub retryable: bool,
}

/// The result of one apply pass.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyOutcome {
    /// Every desired node that exists, as last seen.
    pub resources: BTreeMap<NodeId, Observed>,
    pub failures: Vec<NodeFailure>,
    /// Nodes not attempted because a dependency failed: node -> the failed dependency.
    pub blocked: BTreeMap<NodeId, String>,
    /// Resources that no longer belong to the stack and were deleted.
    pub deleted: Vec<Observed>,
    /// Events of this pass, in order.
    pub events: Vec<Event>,
}

impl ApplyOutcome {
    pub fn is_ready(&self) -> bool {
        self.failures.is_empty() && self.blocked.is_empty()
    }

    pub fn is_retryable(&self) -> bool {
        self.failures.iter().all(|f| f.retryable)
    }
}

/// The result of a destroy pass.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestroyOutcome {
    pub deleted: Vec<Observed>,
    pub released: Vec<Observed>,
    pub failures: Vec<(String, String, bool)>,
}

impl DestroyOutcome {
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Collects events and forwards them.
struct Recorder<'a> {
    inner: &'a dyn Reporter,
    events: Mutex<Vec<Event>>,
}

impl Recorder<'_> {
    fn emit(
        &self,
        what: EventKind,
        kind: Kind,
        role: &str,
        id: Option<&str>,
        detail: impl Into<String>,
    ) {
        let event = Event {
            what,
            kind,
            role: role.to_owned(),
            id: id.map(str::to_owned),
            detail: detail.into(),
        };
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
        self.inner.report(event);
    }
}

/// State shared by the nodes of one apply pass.
struct Pass<'a> {
    ids: Mutex<HashMap<NodeId, String>>,
    observation: Mutex<Observation>,
    claimed: Mutex<BTreeSet<(Kind, String)>>,
    recorder: Recorder<'a>,
}

/// The engine: handlers per kind, observers per family, and how hard to push.
pub struct Engine<S> {
    handlers: BTreeMap<Kind, Arc<dyn Handler<S>>>,
    observers: Vec<Arc<dyn Observer<S>>>,
    /// Nodes worked on at once.
    pub concurrency: usize,
    pub wait: WaitPolicy,
    /// Attempts per node within one pass, for retryable failures.
    pub node_attempts: u32,
    pub node_backoff: Duration,
}

impl<S: Send + Sync> Engine<S> {
    pub fn new() -> Self {
        Engine {
            handlers: BTreeMap::new(),
            observers: Vec::new(),
            concurrency: 8,
            wait: WaitPolicy::default(),
            node_attempts: 6,
            node_backoff: Duration::from_millis(500),
        }
    }

    pub fn handler(mut self, h: impl Handler<S> + 'static) -> Self {
        self.handlers.insert(h.kind(), Arc::new(h));
        self
    }

    pub fn observer(mut self, o: impl Observer<S> + 'static) -> Self {
        self.observers.push(Arc::new(o));
        self
    }

    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.handlers.keys().copied()
    }

    pub fn rules(&self) -> BTreeMap<Kind, KindRules> {
        self.handlers
            .iter()
            .map(|(k, h)| {
                (
                    *k,
                    KindRules {
                        mutable: h.mutable(),
                        identity: h.identity(),
                    },
                )
            })
            .collect()
    }

    fn handler_for(&self, kind: Kind) -> Result<&Arc<dyn Handler<S>>, EngineError> {
        self.handlers.get(&kind).ok_or(EngineError::NoHandler(kind))
    }

    /// Observes every family once, all at the same time.
    pub async fn observe(
        &self,
        scope: &S,
        selector: &Selector,
    ) -> Result<Vec<Observed>, EngineError> {
        let reads = self.observers.iter().map(|o| async move {
            o.observe(scope, selector)
                .await
                .map_err(|source| EngineError::Observe {
                    kinds: o.kinds().iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
                    source,
                })
        });
        let mut out = Vec::new();
        for result in futures::future::join_all(reads).await {
            out.extend(result?.into_iter().filter(|o| selector.admits(&o.stack)));
        }
        Ok(out)
    }

    /// One observation for one stack.
    pub async fn observe_stack(&self, scope: &S, stack: &str) -> Result<Observation, EngineError> {
        let all = self
            .observe(scope, &Selector::Stack(stack.to_owned()))
            .await?;
        Ok(Observation::from_resources(all))
    }

    /// One observation per stack, from one read per family for all of them.
    pub async fn observe_all_stacks(
        &self,
        scope: &S,
    ) -> Result<BTreeMap<String, Observation>, EngineError> {
        let all = self.observe(scope, &Selector::AllStacks).await?;
        let mut by_stack: BTreeMap<String, Vec<Observed>> = BTreeMap::new();
        for o in all {
            by_stack.entry(o.stack.clone()).or_default().push(o);
        }
        Ok(by_stack
            .into_iter()
            .map(|(k, v)| (k, Observation::from_resources(v)))
            .collect())
    }

    pub fn plan(&self, graph: &Graph, observation: &Observation) -> Plan {
        plan::plan(graph, observation, &self.rules())
    }

    async fn reobserve(&self, scope: &S, stack: &str, kind: Kind, pass: &Pass<'_>) {
        let Some(observer) = self.observers.iter().find(|o| o.kinds().contains(&kind)) else {
            return;
        };
        match observer
            .observe(scope, &Selector::Stack(stack.to_owned()))
            .await
        {
            Ok(found) => {
                let found = found.into_iter().filter(|o| o.stack == stack).collect();
                pass.observation
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(observer.kinds(), found);
            }
            Err(e) => tracing::debug!(%kind, error = %e, "re-observation failed"),
        }
    }

    /// Waits until `current` is ready, re-reading it with a growing interval.
    async fn wait_ready(
        &self,
        scope: &S,
        handler: &dyn Handler<S>,
        mut current: Observed,
        rec: &Recorder<'_>,
    ) -> Result<Observed, AwsError> {
        let started = Instant::now();
        let mut poll = self.wait.first_poll;
        loop {
            match &current.readiness {
                Readiness::Ready => return Ok(current),
                Readiness::Gone(state) | Readiness::Deleting(state) => {
                    return Err(AwsError::new(
                        "engine",
                        "Wait",
                        "ResourceGone",
                        format!("{} {} went to state {state}", current.kind, current.id),
                        ErrorClass::Ambiguous,
                    ))
                }
                Readiness::Pending(state) => {
                    if started.elapsed() >= self.wait.timeout {
                        return Err(AwsError::new(
                            "engine",
                            "Wait",
                            "NotSettled",
                            format!(
                                "{} {} still {state} after {:?}",
                                current.kind, current.id, self.wait.timeout
                            ),
                            ErrorClass::DependencyViolation,
                        ));
                    }
                    rec.emit(
                        EventKind::Waiting,
                        current.kind,
                        &current.role,
                        Some(&current.id),
                        state.clone(),
                    );
                }
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(self.wait.max_poll);
            current = handler.refresh(scope, &current).await?.ok_or_else(|| {
                AwsError::new(
                    "engine",
                    "Wait",
                    "ResourceGone",
                    format!("{} {} disappeared", current.kind, current.id),
                    ErrorClass::Ambiguous,
                )
            })?;
        }
    }

    /// Waits until a deleted resource is gone.
    async fn wait_gone(
        &self,
        scope: &S,
        handler: &dyn Handler<S>,
        current: &Observed,
    ) -> Result<(), AwsError> {
        let started = Instant::now();
        let mut poll = self.wait.first_poll;
        loop {
            match handler.refresh(scope, current).await {
                Ok(None) => return Ok(()),
                Ok(Some(o)) if matches!(o.readiness, Readiness::Gone(_)) => return Ok(()),
                Ok(Some(_)) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            }
            if started.elapsed() >= self.wait.timeout {
                return Err(AwsError::new(
                    "engine",
                    "Wait",
                    "NotDeleted",
                    format!(
                        "{} {} still exists after {:?}",
                        current.kind, current.id, self.wait.timeout
                    ),
                    ErrorClass::DependencyViolation,
                ));
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(self.wait.max_poll);
        }
    }

    fn claim(&self, pass: &Pass<'_>, resolved: &Resolved, rules: &KindRules) -> Option<Observed> {
        let observation = pass.observation.lock().unwrap_or_else(|e| e.into_inner());
        let mut claimed = pass.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let found = observation
            .by_kind
            .get(&resolved.id.kind)
            .into_iter()
            .flatten()
            .filter(|o| !claimed.contains(&(o.kind, o.id.clone())))
            .find(|o| plan::matches(resolved, o, rules))
            .cloned();
        if let Some(o) = &found {
            claimed.insert((o.kind, o.id.clone()));
        }
        found
    }

    fn unclaim(&self, pass: &Pass<'_>, o: &Observed) {
        pass.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(o.kind, o.id.clone()));
    }

    /// Brings one node to its desired state: update what matches, create what is missing.
    async fn converge(
        &self,
        scope: &S,
        stack: &str,
        node: &Node,
        pass: &Pass<'_>,
    ) -> Result<Observed, AwsError> {
        let handler = self
            .handlers
            .get(&node.id.kind)
            .expect("checked before the pass")
            .as_ref();
        let rules = KindRules {
            mutable: handler.mutable(),
            identity: handler.identity(),
        };
        let rec = &pass.recorder;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ids = pass.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let (resolved, _) = plan::resolve(node, &ids);
            let current = self.claim(pass, &resolved, &rules);
            let result = match &current {
                Some(cur) => {
                    let diff = plan::changes(&resolved, cur);
                    if diff.is_empty() {
                        Ok(cur.clone())
                    } else if let Some(f) = diff
                        .iter()
                        .find(|c| !rules.mutable.contains(&c.field.as_str()))
                    {
                        Err(AwsError::new(
                            "engine",
                            "Plan",
                            "ReplacementRefused",
                            format!(
                                "{}: {} cannot be changed in place (is {}, wanted {})",
                                node.id, f.field, f.before, f.after
                            ),
                            ErrorClass::Permanent,
                        ))
                    } else {
                        handler
                            .update(scope, &resolved, cur, &diff)
                            .await
                            .map(|()| {
                                let detail = diff
                                    .iter()
                                    .map(|c| format!("{}: {} -> {}", c.field, c.before, c.after))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                rec.emit(
                                    EventKind::Updated,
                                    node.id.kind,
                                    &node.id.role,
                                    Some(&cur.id),
                                    detail,
                                );
                                let mut updated = cur.clone();
                                for c in diff {
                                    updated.props.insert(c.field, c.after);
                                }
                                updated
                            })
                    }
                }
                None => handler.create(scope, &resolved).await.inspect(|created| {
                    rec.emit(
                        EventKind::Created,
                        node.id.kind,
                        &node.id.role,
                        Some(&created.id),
                        String::new(),
                    );
                }),
            };
            let result = match result {
                Ok(o) => self.wait_ready(scope, handler, o, rec).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(o) => {
                    pass.ids
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(node.id.clone(), o.id.clone());
                    // What this pass created is the stack's too: a later re-observation must not
                    // take it for an orphan.
                    pass.claimed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((o.kind, o.id.clone()));
                    return Ok(o);
                }
                Err(e) if e.is_retryable() && attempt < self.node_attempts => {
                    rec.emit(
                        EventKind::Retrying,
                        node.id.kind,
                        &node.id.role,
                        current.as_ref().map(|c| c.id.as_str()),
                        e.to_string(),
                    );
                    if let Some(cur) = &current {
                        self.unclaim(pass, cur);
                    }
                    tokio::time::sleep(self.node_backoff * attempt).await;
                    if !e.not_executed() {
                        // The call may have taken effect: look again before acting again.
                        self.reobserve(scope, stack, node.id.kind, pass).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes one resource, retrying while others still depend on it, then waits until it is gone.
    async fn remove(&self, scope: &S, o: &Observed, rec: &Recorder<'_>) -> Result<(), AwsError> {
        let handler = self
            .handlers
            .get(&o.kind)
            .ok_or_else(|| {
                AwsError::new(
                    "engine",
                    "Delete",
                    "NoHandler",
                    format!("no handler for {}", o.kind),
                    ErrorClass::Permanent,
                )
            })?
            .as_ref();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match handler.delete(scope, o).await {
                Ok(()) if handler.settles() => self.wait_gone(scope, handler, o).await,
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    rec.emit(
                        EventKind::Deleted,
                        o.kind,
                        &o.role,
                        Some(&o.id),
                        String::new(),
                    );
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < self.node_attempts * 2 => {
                    rec.emit(
                        EventKind::Retrying,
                        o.kind,
                        &o.role,
                        Some(&o.id),
                        e.to_string(),
                    );
                    tokio::time::sleep(self.node_backoff * attempt).await;
                }
                Err(e) => {
                    rec.emit(
                        EventKind::Failed,
                        o.kind,
                        &o.role,
                        Some(&o.id),
                        e.to_string(),
                    );
                    return Err(e);
                }
            }
        }
    }

    /// Deletes resources in reverse dependency order; returns what was deleted and what failed.
    async fn remove_all(
        &self,
        scope: &S,
        resources: &[Observed],
        graph: &Graph,
        matched: &BTreeMap<NodeId, Observed>,
        rec: &Recorder<'_>,
    ) -> (Vec<Observed>, Vec<(String, String, bool)>) {
        let order = plan::deletion_graph(resources, graph, matched);
        let by_id: HashMap<&str, &Observed> =
            resources.iter().map(|o| (o.id.as_str(), o)).collect();
        let outcomes = dag::run(&order, self.concurrency, |id: String| {
            let o = by_id[id.as_str()];
            async move { self.remove(scope, o, rec).await.map(|()| o.clone()) }
        })
        .await;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        match outcomes {
            Ok(outcomes) => {
                for (id, outcome) in outcomes {
                    match outcome {
                        Outcome::Done(o) => deleted.push(o),
                        Outcome::Failed(e) => failures.push((id, e.to_string(), e.is_retryable())),
                        Outcome::Blocked(by) => {
                            failures.push((id, format!("waits for {by} to be deleted"), true))
                        }
                    }
                }
            }
            Err(cycle) => failures.push(("-".into(), cycle.to_string(), false)),
        }
        deleted.sort_by(|a, b| (a.kind, &a.role).cmp(&(b.kind, &b.role)));
        (deleted, failures)
    }

    /// One apply pass: plan against `observation` (or a fresh one), refuse replacements, then
    /// converge every node in dependency order and delete what the stack no longer wants.
    pub async fn apply(
        &self,
        scope: &S,
        stack: &str,
        graph: &Graph,
        observation: Option<Observation>,
        reporter: &dyn Reporter,
    ) -> Result<ApplyOutcome, EngineError> {
        for kind in graph.kinds() {
            self.handler_for(kind)?;
        }
        let observation = match observation {
            Some(o) => o,
            None => self.observe_stack(scope, stack).await?,
        };
        let planned = self.plan(graph, &observation);
        let refused: Vec<PlannedChange> = planned.refused().cloned().collect();
        if !refused.is_empty() {
            return Err(EngineError::Refused(refused));
        }
        let pass = Pass {
            ids: Mutex::new(HashMap::new()),
            observation: Mutex::new(observation),
            claimed: Mutex::new(BTreeSet::new()),
            recorder: Recorder {
                inner: reporter,
                events: Mutex::new(Vec::new()),
            },
        };
        let outcomes = dag::run(&graph.dependencies(), self.concurrency, |id: NodeId| {
            let node = &graph.nodes[&id];
            let pass = &pass;
            async move { self.converge(scope, stack, node, pass).await }
        })
        .await
        .map_err(|e| EngineError::Graph(e.into()))?;
        let mut out = ApplyOutcome::default();
        for (id, outcome) in outcomes {
            match outcome {
                Outcome::Done(o) => {
                    out.resources.insert(id, o);
                }
                Outcome::Failed(e) => {
                    pass.recorder
                        .emit(EventKind::Failed, id.kind, &id.role, None, e.to_string());
                    out.failures.push(NodeFailure {
                        node: id,
                        retryable: e.is_retryable(),
                        code: e.code.clone(),
                        error: e.to_string(),
                    });
                }
                Outcome::Blocked(by) => {
                    out.blocked.insert(id, by);
                }
            }
        }
        out.failures.sort_by(|a, b| a.node.cmp(&b.node));
        // Only once everything desired converged: what is left over can go.
        if out.is_ready() {
            let observation = pass
                .observation
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let claimed = pass
                .claimed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let orphans: Vec<Observed> = observation
                .live()
                .filter(|o| !claimed.contains(&(o.kind, o.id.clone())))
                .cloned()
                .collect();
            if !orphans.is_empty() {
                let (deleted, failures) = self
                    .remove_all(scope, &orphans, graph, &BTreeMap::new(), &pass.recorder)
                    .await;
                out.deleted = deleted;
                for (id, error, retryable) in failures {
                    let o = orphans.iter().find(|o| o.id == id);
                    out.failures.push(NodeFailure {
                        node: o
                            .map(|o| NodeId::new(o.kind, o.role.clone()))
                            .unwrap_or_else(|| NodeId::new(Kind("Unknown"), id)),
                        code: if retryable {
                            "DeleteRetry".into()
                        } else {
                            "DeleteFailed".into()
                        },
                        error,
                        retryable,
                    });
                }
            }
        }
        out.events = pass
            .recorder
            .events
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        Ok(out)
    }

    /// Deletes everything the stack owns (or, with `retain`, releases it: the resources stay and
    /// lose the stack's ownership tag). `graph`, when known, orders deletions beyond what the
    /// resources' own references say.
    pub async fn destroy(
        &self,
        scope: &S,
        stack: &str,
        graph: Option<&Graph>,
        retain: bool,
        reporter: &dyn Reporter,
    ) -> Result<DestroyOutcome, EngineError> {
        let observation = self.observe_stack(scope, stack).await?;
        let rec = Recorder {
            inner: reporter,
            events: Mutex::new(Vec::new()),
        };
        let empty = Graph::default();
        let graph = graph.unwrap_or(&empty);
        let mut out = DestroyOutcome::default();
        let resources: Vec<Observed> = observation
            .all()
            .filter(|o| !matches!(o.readiness, Readiness::Gone(_)))
            .cloned()
            .collect();
        if retain {
            let mut by_kind: BTreeMap<Kind, Vec<Observed>> = BTreeMap::new();
            for o in resources {
                by_kind.entry(o.kind).or_default().push(o);
            }
            for (kind, items) in by_kind {
                let handler = self.handler_for(kind)?;
                match handler.release(scope, &items).await {
                    Ok(()) => {
                        for o in &items {
                            rec.emit(
                                EventKind::Released,
                                o.kind,
                                &o.role,
                                Some(&o.id),
                                String::new(),
                            );
                        }
                        out.released.extend(items);
                    }
                    Err(e) => {
                        out.failures
                            .push((kind.to_string(), e.to_string(), e.is_retryable()))
                    }
                }
            }
            return Ok(out);
        }
        let matched = self.plan(graph, &observation).matched;
        let (deleted, failures) = self
            .remove_all(scope, &resources, graph, &matched, &rec)
            .await;
        out.deleted = deleted;
        out.failures = failures;
        Ok(out)
    }
}

impl<S: Send + Sync> Default for Engine<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
