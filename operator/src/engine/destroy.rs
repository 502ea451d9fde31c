//! Deletion: in reverse dependency order, each resource once nothing depends on it; what
//! AWS deletes only after a while is reported pending instead of waited for.

use std::collections::{BTreeMap, HashMap};

use super::apply::NodeError;
use super::dag::{self, Outcome};
use super::model::{Kind, NodeId, Observed, Readiness, StackKey};
use super::outcome::{DeleteFailure, DestroyOutcome, EngineError, EventKind, Recorder, Reporter};
use super::plan::Graph;
use super::settle::settle_gone;
use super::Engine;
use crate::aws::error::{AwsError, ErrorClass};

/// What a round of deletions did.
#[derive(Default)]
pub(super) struct Removed {
    pub deleted: Vec<Observed>,
    pub pending: Vec<Observed>,
    pub failures: Vec<DeleteFailure>,
}

impl<S: Send + Sync> Engine<S> {
    /// Deletes one resource, retrying while others still depend on it; a deletion that takes
    /// effect only after a while is polled briefly and then reported pending.
    async fn remove(&self, scope: &S, o: &Observed, rec: &Recorder<'_>) -> Result<(), NodeError> {
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
        // A deletion accepted in an earlier pass: only look whether it finished.
        let already_deleting = matches!(o.readiness, Readiness::Deleting(_));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match already_deleting {
                true => Ok(()),
                false => handler.delete(scope, o).await,
            };
            let result = match result {
                Ok(()) if handler.settles() => {
                    match settle_gone(&self.wait, scope, handler, o).await {
                        Ok(true) => Ok(()),
                        Ok(false) => return Err(NodeError::Pending(o.clone())),
                        Err(e) => Err(e),
                    }
                }
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
                    return Err(NodeError::Aws(e));
                }
            }
        }
    }

    /// Deletes resources in reverse dependency order.
    pub(super) async fn remove_all(
        &self,
        scope: &S,
        resources: &[Observed],
        graph: &Graph,
        matched: &BTreeMap<NodeId, Observed>,
        rec: &Recorder<'_>,
    ) -> Removed {
        let order = super::plan::deletion_graph(resources, graph, matched);
        let keys: Vec<String> = resources.iter().map(super::plan::deletion_key).collect();
        let by_id: HashMap<&str, &Observed> = keys
            .iter()
            .map(String::as_str)
            .zip(resources.iter())
            .collect();
        let outcomes = dag::run(&order, self.concurrency, |id: String| {
            let o = by_id[id.as_str()];
            async move { self.remove(scope, o, rec).await.map(|()| o.clone()) }
        })
        .await;
        let mut out = Removed::default();
        let failure = |o: &Observed, error: String, retryable: bool| DeleteFailure {
            kind: o.kind,
            role: o.role.clone(),
            id: o.id.clone(),
            error,
            retryable,
        };
        match outcomes {
            Ok(outcomes) => {
                for (id, outcome) in outcomes {
                    let o = by_id[id.as_str()];
                    match outcome {
                        Outcome::Done(o) => out.deleted.push(o),
                        Outcome::Failed(NodeError::Pending(o)) => out.pending.push(o),
                        Outcome::Failed(NodeError::Aws(e)) => {
                            out.failures
                                .push(failure(o, e.to_string(), e.is_retryable()))
                        }
                        Outcome::Blocked(by) => out.failures.push(failure(
                            o,
                            format!("waits for {by} to be deleted"),
                            true,
                        )),
                    }
                }
            }
            Err(cycle) => out.failures.push(DeleteFailure {
                kind: Kind("Unknown"),
                role: "-".into(),
                id: "-".into(),
                error: cycle.to_string(),
                retryable: false,
            }),
        }
        out.deleted
            .sort_by(|a, b| (a.kind, &a.role).cmp(&(b.kind, &b.role)));
        out.failures.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Deletes everything the stack's owner owns (or, with `retain`, releases it: the
    /// resources stay and lose the stack's ownership tags). Resources with the stack's name
    /// that another owner created are left alone. `graph`, when known, orders deletions beyond
    /// what the resources' own references say.
    pub async fn destroy(
        &self,
        scope: &S,
        stack: &StackKey,
        graph: Option<&Graph>,
        retain: bool,
        reporter: &dyn Reporter,
    ) -> Result<DestroyOutcome, EngineError> {
        let observation = self.observe_stack(scope, &stack.id).await?;
        let rec = Recorder::new(reporter);
        let empty = Graph::default();
        let graph = graph.unwrap_or(&empty);
        let mut out = DestroyOutcome::default();
        let (resources, foreign): (Vec<Observed>, Vec<Observed>) = observation
            .all()
            .filter(|o| !matches!(o.readiness, Readiness::Gone(_)))
            .cloned()
            .partition(|o| stack.owns(o));
        out.foreign = foreign;
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
                            rec.emit(EventKind::Released, o.kind, &o.role, Some(&o.id), "");
                        }
                        out.released.extend(items);
                    }
                    Err(e) => out.failures.extend(items.iter().map(|o| DeleteFailure {
                        kind,
                        role: o.role.clone(),
                        id: o.id.clone(),
                        error: e.to_string(),
                        retryable: e.is_retryable(),
                    })),
                }
            }
            return Ok(out);
        }
        let matched = self.plan(graph, &observation, stack).matched;
        let removed = self
            .remove_all(scope, &resources, graph, &matched, &rec)
            .await;
        out.deleted = removed.deleted;
        out.pending = removed.pending;
        out.failures = removed.failures;
        Ok(out)
    }
}
