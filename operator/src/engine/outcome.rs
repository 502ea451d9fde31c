//! What the engine reports: events while it works, and the outcome of an apply or destroy
//! pass (what exists, what is still settling, what failed, what was deleted or kept).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use super::model::{Kind, NodeId, Observed};
use super::plan::{self, PlannedChange};
use crate::aws::error::AwsError;

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
    /// A new resource replaces one AWS cannot change in place; the old one goes once nothing
    /// uses it.
    Replaced,
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

/// A resource that exists but is still settling (an RDS instance `creating`, a distribution
/// `InProgress`); what depends on it waits for a later pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PendingNode {
    pub node: NodeId,
    pub id: String,
    /// The state AWS reports, such as `creating`.
    pub state: String,
    /// What AWS already reports of it (a certificate's validation records).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, serde_json::Value>,
}

/// The result of one apply pass.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyOutcome {
    /// Every desired node that exists and is ready, as last seen.
    pub resources: BTreeMap<NodeId, Observed>,
    /// Desired nodes that exist but are still settling.
    pub pending: BTreeMap<NodeId, PendingNode>,
    pub failures: Vec<NodeFailure>,
    /// Nodes not attempted because a dependency failed or is still settling: node -> that
    /// dependency.
    pub blocked: BTreeMap<NodeId, String>,
    /// Resources that no longer belong to the stack and were deleted.
    pub deleted: Vec<Observed>,
    /// Resources the spec no longer declares that hold data (a database, a bucket, a table):
    /// never deleted by a change of the graph, only by deleting the stack.
    pub kept: Vec<Observed>,
    /// Resources tagged with this stack's name whose owner tag names another owner (another
    /// cluster, or the CLI): left alone.
    pub foreign: Vec<Observed>,
    /// Events of this pass, in order.
    pub events: Vec<Event>,
}

impl ApplyOutcome {
    pub fn is_ready(&self) -> bool {
        self.failures.is_empty() && self.blocked.is_empty() && self.pending.is_empty()
    }

    /// Nothing failed; some resources are still settling (and what depends on them waits).
    pub fn is_settling(&self) -> bool {
        self.failures.is_empty() && !self.pending.is_empty()
    }

    pub fn is_retryable(&self) -> bool {
        self.failures.iter().all(|f| f.retryable)
    }
}

/// A resource that could not be deleted (or released).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeleteFailure {
    pub kind: Kind,
    pub role: String,
    pub id: String,
    pub error: String,
    pub retryable: bool,
}

/// The result of a destroy pass.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestroyOutcome {
    pub deleted: Vec<Observed>,
    pub released: Vec<Observed>,
    /// Deletions AWS accepted that have not finished (a distribution being disabled, a
    /// database being deleted); what they depend on waits for a later pass.
    pub pending: Vec<Observed>,
    /// Resources with this stack's name that belong to another owner: left alone.
    pub foreign: Vec<Observed>,
    pub failures: Vec<DeleteFailure>,
}

impl DestroyOutcome {
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty() && self.pending.is_empty()
    }
}

/// Collects events and forwards them.
pub(super) struct Recorder<'a> {
    pub inner: &'a dyn Reporter,
    pub events: Mutex<Vec<Event>>,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a dyn Reporter) -> Self {
        Recorder {
            inner,
            events: Mutex::new(Vec::new()),
        }
    }

    pub fn emit(
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

    pub fn into_events(self) -> Vec<Event> {
        self.events.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}
