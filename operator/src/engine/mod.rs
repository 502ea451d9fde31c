//! The reconcile engine: observe (batched, by tag), compare, act, record. It walks a graph of
//! resource nodes and knows nothing of VPCs or buckets; the area modules supply a [`Handler`]
//! per kind and an [`Observer`] per family of kinds.

mod apply;
pub mod dag;
mod destroy;
pub mod model;
pub mod outcome;
pub mod plan;
pub mod provider;
mod settle;
pub mod shared;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use dag::Outcome;
pub use model::{FieldChange, Kind, Node, NodeId, Observed, Prop, Readiness, Resolved, StackKey};
pub use outcome::{
    ApplyOutcome, DeleteFailure, DestroyOutcome, EngineError, Event, EventKind, NodeFailure,
    PendingNode, Reporter, Silent,
};
pub use plan::{digest, Action, Graph, KindRules, Observation, Plan, PlannedChange};
pub use provider::{Handler, Observer, Replacement, Selector};
pub use settle::WaitPolicy;
pub use shared::SharedObservation;

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
            .map(|(k, h)| (*k, self.rules_of(h.as_ref())))
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
        self.observe_at_most(scope, selector, self.observers.len().max(1))
            .await
    }

    /// Observes every family once, `at_once` families at a time: a read of every stack leaves
    /// room for the calls of stacks being built.
    pub async fn observe_at_most(
        &self,
        scope: &S,
        selector: &Selector,
        at_once: usize,
    ) -> Result<Vec<Observed>, EngineError> {
        use futures::future::BoxFuture;
        use futures::StreamExt;
        // Boxed, so that the stream of reads is `Send` for any lifetime of the borrows.
        let reads: Vec<BoxFuture<'_, Result<Vec<Observed>, EngineError>>> = self
            .observers
            .iter()
            .map(|o| -> BoxFuture<'_, Result<Vec<Observed>, EngineError>> {
                Box::pin(async move {
                    o.observe(scope, selector)
                        .await
                        .map_err(|source| EngineError::Observe {
                            kinds: o.kinds().iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
                            source,
                        })
                })
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(reads)
            .buffer_unordered(at_once.max(1))
            .collect()
            .await;
        let mut out = Vec::new();
        for result in results {
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

    pub fn plan(&self, graph: &Graph, observation: &Observation, stack: &StackKey) -> Plan {
        plan::plan(graph, observation, &self.rules(), stack)
    }
}

impl<S: Send + Sync> Default for Engine<S> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
