//! The Kubernetes controller: thin. It watches WebStacks, keeps a finalizer, runs the same
//! engine as the CLI, and writes status and events. Everything else lives in [`crate::stack`].

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter as EventReporter};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use rand::Rng;
use serde_json::json;

use crate::api::{Phase, WebStack, WebStackStatus};
use crate::aws::Connect;
use crate::engine::{self, EventKind};
use crate::inputs::Inputs;
use crate::stack::{self, StackError};

/// The finalizer that keeps a WebStack until its AWS resources are gone.
pub const FINALIZER: &str = "webstack.io/cleanup";
/// The field manager and event reporter name.
pub const MANAGER: &str = "webstack-operator";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Stack(#[from] StackError),
    #[error("AWS resources of the stack remain: {0}")]
    CleanupIncomplete(String),
    #[error("AWS is still deleting: {0}")]
    CleanupPending(String),
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub connect: Connect,
    /// Time between reconciles of a Ready stack (drift detection), before jitter.
    pub resync: Duration,
    /// Time before a stack that is still converging is looked at again.
    pub retry: Duration,
}

/// Settings of `webstack run`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub resync: Duration,
    pub retry: Duration,
    pub concurrency: u16,
    /// Only this namespace, or all.
    pub namespace: Option<String>,
}

/// Runs the controller until the process is stopped.
pub async fn run(client: Client, settings: Settings, connect: Connect) {
    let stacks: Api<WebStack> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let recorder = Recorder::new(client.clone(), EventReporter::from(MANAGER));
    let ctx = Arc::new(Context {
        client,
        recorder,
        connect,
        resync: settings.resync,
        retry: settings.retry,
    });
    let config = kube::runtime::controller::Config::default().concurrency(settings.concurrency);
    Controller::new(stacks, watcher::Config::default())
        .with_config(config)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(stack = %obj, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "reconcile failed"),
            }
        })
        .await;
}

/// `d` plus up to a tenth of it, so that a thousand stacks do not resync in step.
fn jitter(d: Duration) -> Duration {
    let extra = d.as_millis() as u64 / 10;
    d + Duration::from_millis(rand::rng().random_range(0..=extra.max(1)))
}

async fn reconcile(
    ws: Arc<WebStack>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<Error>> {
    let ns = ws.namespace().unwrap_or_else(|| "default".into());
    let api: Api<WebStack> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, ws, |event| async {
        match event {
            Finalizer::Apply(ws) => apply(&ws, &ctx).await,
            Finalizer::Cleanup(ws) => cleanup(&ws, &ctx).await,
        }
    })
    .await
}

fn error_policy(
    ws: Arc<WebStack>,
    err: &kube::runtime::finalizer::Error<Error>,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(stack = %ws.name_any(), error = %err, "reconcile failed; retrying");
    Action::requeue(jitter(ctx.retry))
}

fn reference(ws: &WebStack) -> ObjectReference {
    ws.object_ref(&())
}

async fn publish(
    ctx: &Context,
    ws: &WebStack,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference(ws)).await {
        tracing::debug!(error = %e, "could not publish an event");
    }
}

async fn patch_status(ctx: &Context, ws: &WebStack, status: &WebStackStatus) -> Result<(), Error> {
    let api: Api<WebStack> = Api::namespaced(
        ctx.client.clone(),
        &ws.namespace().unwrap_or_else(|| "default".into()),
    );
    let patch = json!({ "status": status });
    api.patch_status(
        &ws.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// One event per resource the engine created, changed, deleted or failed on.
async fn publish_engine_events(ctx: &Context, ws: &WebStack, events: &[engine::Event]) {
    for e in events {
        let (type_, reason) = match e.what {
            EventKind::Created => (EventType::Normal, "Created"),
            EventKind::Updated => (EventType::Normal, "Updated"),
            EventKind::Replaced => (EventType::Normal, "Replaced"),
            EventKind::Deleted => (EventType::Normal, "Deleted"),
            EventKind::Released => (EventType::Normal, "Released"),
            EventKind::Failed => (EventType::Warning, "Failed"),
            EventKind::Waiting | EventKind::Retrying => continue,
        };
        let id = e.id.as_deref().unwrap_or("");
        let detail = if e.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", e.detail)
        };
        publish(
            ctx,
            ws,
            type_,
            reason,
            "Reconcile",
            format!("{} {} {id}{detail}", e.kind, e.role),
        )
        .await;
    }
}

/// Writes a failure that happened before or instead of an engine pass into status and an
/// event. A spec the user must fix waits for the next change; anything else is retried.
async fn report_failure(
    ctx: &Context,
    ws: &WebStack,
    err: &StackError,
    action: &str,
) -> Result<Action, Error> {
    let status = stack::error_status(ws, err, ws.status.as_ref());
    patch_status(ctx, ws, &status).await?;
    publish(
        ctx,
        ws,
        EventType::Warning,
        err.reason(),
        action,
        err.to_string(),
    )
    .await;
    Ok(if err.is_retryable() {
        Action::requeue(jitter(ctx.retry))
    } else {
        Action::await_change()
    })
}

/// The keys of the Kubernetes Secrets the stack reads, from its namespace. A Secret that is
/// not there is left out: preparing the stack then says which and waits for it.
async fn read_inputs(ws: &WebStack, ctx: &Context) -> Result<Inputs, Error> {
    let mut inputs = Inputs::default();
    let namespace = ws.namespace().unwrap_or_else(|| "default".into());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    for (_, r) in crate::inputs::needed(&ws.spec) {
        if let Some(secret) = secrets.get_opt(&r.name).await? {
            inputs.add_secret(&secret);
        }
    }
    Ok(inputs)
}

async fn apply(ws: &WebStack, ctx: &Context) -> Result<Action, Error> {
    let previous = ws.status.as_ref();
    let inputs = read_inputs(ws, ctx).await?;
    let prepared = match stack::prepare_with(ws.clone(), &ctx.connect, inputs).await {
        Ok(p) => p,
        Err(err) => return report_failure(ctx, ws, &err, "Validate").await,
    };
    match prepared.apply_once(&engine::Silent).await {
        Ok(outcome) => {
            publish_engine_events(ctx, ws, &outcome.events).await;
            let status = prepared.status(&outcome, previous);
            patch_status(ctx, ws, &status).await?;
            Ok(Action::requeue(jitter(next_look(
                &outcome, ctx.retry, ctx.resync,
            ))))
        }
        Err(e) => report_failure(ctx, ws, &e, "Reconcile").await,
    }
}

/// When to look at a stack again: soon while something settles or a failure may clear by
/// itself; at the resync interval once nothing more can happen without a change (Ready, a
/// tier this version does not build, a failure the user must fix).
fn next_look(outcome: &engine::ApplyOutcome, retry: Duration, resync: Duration) -> Duration {
    let retryable_failure = outcome.failures.iter().any(|f| f.retryable);
    if !outcome.pending.is_empty() || retryable_failure {
        retry
    } else {
        resync
    }
}

async fn cleanup(ws: &WebStack, ctx: &Context) -> Result<Action, Error> {
    let mut status = ws.status.clone().unwrap_or_default();
    if status.phase != Some(Phase::Deleting) {
        status.phase = Some(Phase::Deleting);
        patch_status(ctx, ws, &status).await?;
    }
    // The resources live where the status says the stack was built, whatever the spec says
    // now (a cluster that does not enforce the CRD's rules lets the region change).
    let mut target = ws.clone();
    if let Some(region) = status.region.clone() {
        target.spec.region = Some(region);
    }
    // Deletion finds resources by their tags; an invalid spec does not stop it.
    let outcome = match stack::prepare_to_destroy(target.clone(), &ctx.connect).await {
        Ok(p) => p.destroy_once(&engine::Silent).await?,
        Err(StackError::Invalid(_)) => stack::destroy_by_tags(&target, &ctx.connect).await?,
        Err(e) => return Err(e.into()),
    };
    let events: Vec<engine::Event> = outcome
        .deleted
        .iter()
        .map(|o| (EventKind::Deleted, o))
        .chain(outcome.released.iter().map(|o| (EventKind::Released, o)))
        .map(|(what, o)| engine::Event {
            what,
            kind: o.kind,
            role: o.role.clone(),
            id: Some(o.id.clone()),
            detail: String::new(),
        })
        .collect();
    publish_engine_events(ctx, ws, &events).await;
    if outcome.is_complete() {
        Ok(Action::await_change())
    } else if outcome.failures.is_empty() {
        // Deletions AWS is still carrying out: look again soon, without a warning.
        let pending: Vec<String> = outcome
            .pending
            .iter()
            .map(|o| format!("{} {}", o.kind, o.id))
            .collect();
        Err(Error::CleanupPending(pending.join(", ")))
    } else {
        let failures: Vec<String> = outcome
            .failures
            .iter()
            .map(|f| format!("{} {} ({}): {}", f.kind, f.role, f.id, f.error))
            .collect();
        publish(
            ctx,
            ws,
            EventType::Warning,
            "CleanupIncomplete",
            "Delete",
            failures.join("; "),
        )
        .await;
        Err(Error::CleanupIncomplete(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ApplyOutcome, Kind, NodeFailure, NodeId, PendingNode};

    #[test]
    fn only_what_can_still_change_by_itself_is_looked_at_soon() {
        let (retry, resync) = (Duration::from_secs(15), Duration::from_secs(300));
        let failure = |retryable| NodeFailure {
            node: NodeId::new(Kind("Vpc"), "vpc"),
            error: "x".into(),
            code: "X".into(),
            retryable,
        };
        // Ready, or Degraded with tiers this version does not build: nothing more to do.
        assert_eq!(next_look(&ApplyOutcome::default(), retry, resync), resync);
        let mut permanent = ApplyOutcome::default();
        permanent.failures.push(failure(false));
        assert_eq!(next_look(&permanent, retry, resync), resync);
        let mut throttled = ApplyOutcome::default();
        throttled.failures.push(failure(true));
        assert_eq!(next_look(&throttled, retry, resync), retry);
        let mut settling = ApplyOutcome::default();
        let node = NodeId::new(Kind("DbInstance"), "database");
        settling.pending.insert(
            node.clone(),
            PendingNode {
                node,
                id: "db-1".into(),
                state: "creating".into(),
                props: Default::default(),
            },
        );
        assert_eq!(next_look(&settling, retry, resync), retry);
    }
}
