//! One apply pass: plan against an observation, refuse what cannot change in place, converge
//! every node in dependency order (creating, updating or replacing), report what is still
//! settling, and delete what the stack no longer wants once everything else converged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use super::dag::{self, Outcome};
use super::model::{Kind, Node, NodeId, Observed, Resolved, StackKey};
use super::outcome::{
    ApplyOutcome, EngineError, EventKind, NodeFailure, PendingNode, Recorder, Reporter,
};
use super::plan::{self, Action, Graph, KindRules, Observation, PlannedChange};
use super::provider::Handler;
use super::settle::{settle, Settled};
use super::Engine;
use crate::aws::error::{AwsError, ErrorClass};

/// Why a node did not converge in this pass.
pub(super) enum NodeError {
    Aws(AwsError),
    /// It exists and is still settling; what depends on it waits for a later pass.
    Pending(Observed),
}

impl From<AwsError> for NodeError {
    fn from(e: AwsError) -> Self {
        NodeError::Aws(e)
    }
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Aws(e) => e.fmt(f),
            NodeError::Pending(o) => write!(f, "{} {} is still settling", o.kind, o.id),
        }
    }
}

/// State shared by the nodes of one apply pass.
struct Pass<'a> {
    /// Desired nodes that exist, as last seen: their ids and attributes resolve references.
    known: Mutex<HashMap<NodeId, Observed>>,
    observation: Mutex<Observation>,
    /// Resources a node of this pass stands for.
    claimed: Mutex<BTreeSet<(Kind, String)>>,
    /// Resources being replaced: never claimed again, deleted once the pass converged.
    replaced: Mutex<BTreeSet<(Kind, String)>>,
    recorder: Recorder<'a>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Send + Sync> Engine<S> {
    /// Reads a kind's family again after a call whose effect is unknown. The pass must see
    /// what that call did before it acts again: a failed read fails the node (to be retried
    /// by a later pass), it never leads to a second create.
    async fn reobserve(
        &self,
        scope: &S,
        stack: &StackKey,
        kind: Kind,
        pass: &Pass<'_>,
    ) -> Result<(), AwsError> {
        let Some(observer) = self.observers.iter().find(|o| o.kinds().contains(&kind)) else {
            return Ok(());
        };
        let selector = super::Selector::Stack(stack.id.clone());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match observer.observe(scope, &selector).await {
                Ok(found) => {
                    let found = found.into_iter().filter(|o| o.stack == stack.id).collect();
                    lock(&pass.observation).replace(observer.kinds(), found);
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < self.node_attempts => {
                    tracing::debug!(%kind, error = %e, "re-observation failed; trying again");
                    tokio::time::sleep(self.node_backoff * attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The live resource of the stack's owner that `resolved` describes, preferring one that
    /// already has the desired properties (after a crash mid-replacement both the old and the
    /// new resource carry the role).
    fn claim(
        &self,
        pass: &Pass<'_>,
        stack: &StackKey,
        resolved: &Resolved,
        rules: &KindRules,
    ) -> Option<Observed> {
        let observation = lock(&pass.observation);
        let mut claimed = lock(&pass.claimed);
        let replaced = lock(&pass.replaced);
        let found = observation
            .by_kind
            .get(&resolved.id.kind)
            .into_iter()
            .flatten()
            .filter(|o| {
                let key = (o.kind, o.id.clone());
                stack.owns(o) && !claimed.contains(&key) && !replaced.contains(&key)
            })
            .filter(|o| plan::matches(resolved, o, rules))
            .min_by_key(
                |o| match rules.action_for(&plan::changes(resolved, o, rules)) {
                    None => 0,
                    Some(Action::Update) => 1,
                    Some(_) => 2,
                },
            )
            .cloned();
        if let Some(o) = &found {
            claimed.insert((o.kind, o.id.clone()));
        }
        found
    }

    /// Creates, updates or replaces one node's resource, as its current state calls for.
    async fn act(
        &self,
        scope: &S,
        node: &Node,
        resolved: &Resolved,
        current: Option<&Observed>,
        pass: &Pass<'_>,
    ) -> Result<Observed, AwsError> {
        let handler = self.handler_of(node);
        let rules = &self.rules_of(handler);
        let rec = &pass.recorder;
        let Some(cur) = current else {
            let created = handler.create(scope, resolved).await?;
            rec.emit(
                EventKind::Created,
                node.id.kind,
                &node.id.role,
                Some(&created.id),
                String::new(),
            );
            return Ok(created);
        };
        let diff = plan::changes(resolved, cur, rules);
        match rules.action_for(&diff) {
            None => Ok(cur.clone()),
            Some(Action::Update) => {
                let after = handler.update(scope, resolved, cur, &diff).await?;
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
                Ok(after.unwrap_or_else(|| {
                    let mut updated = cur.clone();
                    for c in diff {
                        updated.props.insert(c.field, c.after);
                    }
                    updated
                }))
            }
            Some(Action::Replace) => {
                // The old resource stays until everything that used it moved to the new one:
                // it is deleted with the orphans, once the pass converged.
                {
                    let key = (cur.kind, cur.id.clone());
                    lock(&pass.claimed).remove(&key);
                    lock(&pass.replaced).insert(key);
                }
                let created = handler.create(scope, resolved).await?;
                let fields: Vec<&str> = diff.iter().map(|c| c.field.as_str()).collect();
                rec.emit(
                    EventKind::Replaced,
                    node.id.kind,
                    &node.id.role,
                    Some(&created.id),
                    format!("replaces {} ({})", cur.id, fields.join(", ")),
                );
                Ok(created)
            }
            Some(_) => {
                let f = diff
                    .iter()
                    .find(|c| !rules.mutable.contains(&c.field.as_str()))
                    .unwrap_or(&diff[0]);
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
            }
        }
    }

    /// Brings one node to its desired state, retrying what may clear by itself.
    async fn converge(
        &self,
        scope: &S,
        stack: &StackKey,
        node: &Node,
        pass: &Pass<'_>,
    ) -> Result<Observed, NodeError> {
        let handler = self.handler_of(node);
        let rules = self.rules_of(handler);
        let rec = &pass.recorder;
        let mut attempt = 0;
        self.await_early(node, pass).await;
        loop {
            attempt += 1;
            let known = lock(&pass.known).clone();
            let mut missing = plan::missing_attributes(node, &known);
            missing.extend(
                node.early
                    .iter()
                    .filter(|d| !known.contains_key(*d))
                    .map(|d| d.to_string()),
            );
            if !missing.is_empty() {
                // Its dependencies exist but AWS has not reported what it needs of them: a
                // later pass looks again.
                return Err(NodeError::Pending(
                    Observed::new(node.id.kind, stack.id.clone(), node.id.role.clone(), "")
                        .readiness(super::Readiness::Pending(format!(
                            "waiting for {}",
                            missing.join(", ")
                        ))),
                ));
            }
            let (resolved, _) = plan::resolve(node, &known);
            let current = self.claim(pass, stack, &resolved, &rules);
            let result = match self
                .act(scope, node, &resolved, current.as_ref(), pass)
                .await
            {
                Ok(o) => settle(&self.wait, scope, handler, o, rec).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(Settled::Ready(o)) => {
                    lock(&pass.known).insert(node.id.clone(), o.clone());
                    lock(&pass.claimed).insert((o.kind, o.id.clone()));
                    return Ok(o);
                }
                Ok(Settled::Pending(o)) => {
                    // Still the stack's: a later pass finds it by its tags and waits on. Its
                    // early dependents may go ahead with it.
                    lock(&pass.claimed).insert((o.kind, o.id.clone()));
                    lock(&pass.known).insert(node.id.clone(), o.clone());
                    return Err(NodeError::Pending(o));
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
                        lock(&pass.claimed).remove(&(cur.kind, cur.id.clone()));
                    }
                    tokio::time::sleep(self.node_backoff * attempt).await;
                    if !e.not_executed() {
                        // The call may have taken effect: look again before acting again.
                        self.reobserve(scope, stack, node.id.kind, pass).await?;
                    }
                }
                Err(e) => return Err(NodeError::Aws(e)),
            }
        }
    }

    /// Waits, within the pass's polling budget, until the node's early dependencies exist
    /// (created, or found settling); what is still missing then is reported by `converge`.
    async fn await_early(&self, node: &Node, pass: &Pass<'_>) {
        let started = std::time::Instant::now();
        while started.elapsed() < self.wait.in_pass {
            let present = {
                let known = lock(&pass.known);
                node.early.iter().all(|d| known.contains_key(d))
            };
            if present {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The handler of a node of the graph (every kind was checked before the pass).
    fn handler_of(&self, node: &Node) -> &dyn Handler<S> {
        self.handlers
            .get(&node.id.kind)
            .expect("checked before the pass")
            .as_ref()
    }

    pub(super) fn rules_of(&self, handler: &dyn Handler<S>) -> KindRules {
        KindRules {
            mutable: handler.mutable(),
            identity: handler.identity(),
            replacement: handler.replacement(),
            holds_data: handler.holds_data(),
            digested: handler.digested(),
        }
    }

    /// One apply pass: plan against `observation` (or a fresh one), refuse replacements AWS
    /// cannot make, then converge every node in dependency order and delete what the stack no
    /// longer wants. Resources still settling are reported pending, never waited for at length.
    pub async fn apply(
        &self,
        scope: &S,
        stack: &StackKey,
        graph: &Graph,
        observation: Option<Observation>,
        reporter: &dyn Reporter,
    ) -> Result<ApplyOutcome, EngineError> {
        for kind in graph.kinds() {
            self.handler_for(kind)?;
        }
        let observation = match observation {
            Some(o) => o,
            None => self.observe_stack(scope, &stack.id).await?,
        };
        let planned = self.plan(graph, &observation, stack);
        let refused: Vec<PlannedChange> = planned.refused().cloned().collect();
        if !refused.is_empty() {
            return Err(EngineError::Refused(refused));
        }
        let pass = Pass {
            known: Mutex::new(HashMap::new()),
            observation: Mutex::new(observation),
            claimed: Mutex::new(BTreeSet::new()),
            replaced: Mutex::new(BTreeSet::new()),
            recorder: Recorder::new(reporter),
        };
        let outcomes = dag::run(
            &graph.ready_dependencies(),
            self.concurrency,
            |id: NodeId| {
                let node = &graph.nodes[&id];
                let pass = &pass;
                async move { self.converge(scope, stack, node, pass).await }
            },
        )
        .await
        .map_err(|e| EngineError::Graph(e.into()))?;
        let mut out = ApplyOutcome::default();
        for (id, outcome) in outcomes {
            match outcome {
                Outcome::Done(o) => {
                    out.resources.insert(id, o);
                }
                Outcome::Failed(NodeError::Pending(o)) => {
                    let state = match &o.readiness {
                        super::Readiness::Pending(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    out.pending.insert(
                        id.clone(),
                        PendingNode {
                            node: id,
                            id: o.id,
                            state,
                            props: o.props,
                        },
                    );
                }
                Outcome::Failed(NodeError::Aws(e)) => {
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
        let observation = lock(&pass.observation).clone();
        out.foreign = observation
            .live()
            .filter(|o| !stack.owns(o))
            .cloned()
            .collect();
        // Only once everything desired converged: what is left over can go.
        if out.is_ready() {
            self.sweep(scope, graph, stack, &observation, &pass, &mut out)
                .await;
        }
        out.events = pass.recorder.into_events();
        Ok(out)
    }

    /// Deletes the stack's resources no node claimed (replaced ones included), except those
    /// that hold data: they are kept until the stack itself is deleted.
    async fn sweep(
        &self,
        scope: &S,
        graph: &Graph,
        stack: &StackKey,
        observation: &Observation,
        pass: &Pass<'_>,
        out: &mut ApplyOutcome,
    ) {
        let claimed = lock(&pass.claimed).clone();
        // Deletions under way (a distribution disabled in an earlier pass) are carried on.
        let (kept, orphans): (Vec<Observed>, Vec<Observed>) = observation
            .all()
            .filter(|o| !matches!(o.readiness, super::Readiness::Gone(_)))
            .filter(|o| stack.owns(o) && !claimed.contains(&(o.kind, o.id.clone())))
            .cloned()
            .partition(|o| self.handlers.get(&o.kind).is_some_and(|h| h.holds_data()));
        out.kept = kept;
        if orphans.is_empty() {
            return;
        }
        let removed = self
            .remove_all(scope, &orphans, graph, &BTreeMap::new(), &pass.recorder)
            .await;
        out.deleted = removed.deleted;
        for o in removed.pending {
            let node = NodeId::new(o.kind, o.role.clone());
            out.pending.insert(
                node.clone(),
                PendingNode {
                    node,
                    id: o.id.clone(),
                    state: "deleting".into(),
                    props: Default::default(),
                },
            );
        }
        for f in removed.failures {
            out.failures.push(NodeFailure {
                node: NodeId::new(f.kind, f.role),
                code: if f.retryable {
                    "DeleteRetry".into()
                } else {
                    "DeleteFailed".into()
                },
                error: f.error,
                retryable: f.retryable,
            });
        }
    }
}
