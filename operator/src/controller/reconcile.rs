//! One reconcile of one WebStack: the finalizer, the engine pass (the same engine as the CLI),
//! status and events.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::metrics::Metrics;
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
}

impl Error {
    /// The CamelCase reason it is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesError",
            Error::Stack(e) => e.reason(),
            Error::CleanupIncomplete(_) => "CleanupIncomplete",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub connect: Connect,
    pub metrics: Arc<Metrics>,
    /// The roles each namespace's stacks may assume.
    pub roles: crate::roles::RoleMap,
    /// Where the stacks' in-cluster objects go.
    pub cluster: crate::workloads::Cluster,
}

/// When to look at a stack again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// At the resync interval: nothing more happens without a change (Ready, a tier this
    /// version does not build, a failure the user must fix).
    Resync,
    /// Soon: something settles on AWS, or a failure may clear by itself.
    Retry,
    /// Only when the object changes (its finalizer was just added, or it is gone).
    Change,
}

/// One reconcile: keeps the finalizer, applies the spec, or deletes what the stack owns once
/// the object is being deleted and then lets it go.
pub async fn reconcile(ws: Arc<WebStack>, ctx: &Context) -> Result<Next, Error> {
    let ns = ws.namespace().unwrap_or_else(|| "default".into());
    let api: Api<WebStack> = Api::namespaced(ctx.client.clone(), &ns);
    let has_finalizer = ws.finalizers().iter().any(|f| f == FINALIZER);
    // A role the namespace may not use is never assumed, not even to delete.
    let refused = ctx
        .roles
        .check(&ws)
        .map_err(StackError::RoleNotAllowed)
        .err();
    if ws.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Next::Change);
        }
        if let Some(err) = refused {
            let built = ws.status.as_ref().is_some_and(|s| !s.inventory.is_empty());
            if !built {
                // Nothing was ever built with it: nothing to delete.
                remove_finalizer(&api, &ws).await?;
                return Ok(Next::Change);
            }
            return report_failure(ctx, &ws, &err, "Delete").await;
        }
        let next = cleanup(&ws, ctx).await?;
        if next == Next::Change {
            remove_finalizer(&api, &ws).await?;
        }
        return Ok(next);
    }
    if !has_finalizer {
        add_finalizer(&api, &ws).await?;
        return Ok(Next::Change);
    }
    if let Some(err) = refused {
        return report_failure(ctx, &ws, &err, "Validate").await;
    }
    apply(&ws, ctx).await
}

/// Adds the finalizer, on the condition that the list is still what this reconcile saw.
async fn add_finalizer(api: &Api<WebStack>, ws: &WebStack) -> Result<(), Error> {
    let current = ws.finalizers();
    let patch = if current.is_empty() {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ])
    };
    patch_finalizers(api, ws, patch).await
}

async fn remove_finalizer(api: &Api<WebStack>, ws: &WebStack) -> Result<(), Error> {
    let current = ws.finalizers();
    let Some(i) = current.iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let patch = json!([
        {"op": "test", "path": "/metadata/finalizers", "value": current},
        {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
    ]);
    patch_finalizers(api, ws, patch).await
}

async fn patch_finalizers(
    api: &Api<WebStack>,
    ws: &WebStack,
    patch: serde_json::Value,
) -> Result<(), Error> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
    match api
        .patch(
            &ws.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Gone already, or changed since this reconcile read it: the next event brings it.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 422 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn reference(ws: &WebStack) -> ObjectReference {
    ws.object_ref(&())
}

pub(super) async fn publish(
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
) -> Result<Next, Error> {
    let status = stack::error_status(ws, err, ws.status.as_ref());
    if ws.status.as_ref() != Some(&status) {
        patch_status(ctx, ws, &status).await?;
    }
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
        Next::Retry
    } else {
        Next::Change
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

async fn apply(ws: &WebStack, ctx: &Context) -> Result<Next, Error> {
    let previous = ws.status.as_ref();
    let inputs = read_inputs(ws, ctx).await?;
    let mut prepared = match stack::prepare_with(ws.clone(), &ctx.connect, inputs).await {
        Ok(p) => p,
        Err(err) => return report_failure(ctx, ws, &err, "Validate").await,
    };
    prepared.cluster = true;
    match prepared.apply_once(&engine::Silent).await {
        Ok(outcome) => {
            publish_engine_events(ctx, ws, &outcome.events).await;
            ctx.metrics
                .pending(&prepared.stack_id(), outcome.pending.len());
            let mut status = prepared.status(&outcome, previous);
            let in_cluster = super::in_cluster::apply(ws, ctx, &prepared, &mut status).await;
            // An unchanged status is not written again: a thousand Ready stacks cost the API
            // server nothing at resync.
            if previous != Some(&status) {
                patch_status(ctx, ws, &status).await?;
            }
            Ok(match (next_look(&outcome), in_cluster) {
                (Next::Retry, _) | (_, Next::Retry) => Next::Retry,
                (next, _) => next,
            })
        }
        Err(e) => report_failure(ctx, ws, &e, "Reconcile").await,
    }
}

/// When to look at a stack again: soon while something settles or a failure may clear by
/// itself; at the resync interval once nothing more can happen without a change (Ready, a
/// tier this version does not build, a failure the user must fix).
fn next_look(outcome: &engine::ApplyOutcome) -> Next {
    let retryable_failure = outcome.failures.iter().any(|f| f.retryable);
    if !outcome.pending.is_empty() || retryable_failure {
        Next::Retry
    } else {
        Next::Resync
    }
}

async fn cleanup(ws: &WebStack, ctx: &Context) -> Result<Next, Error> {
    let mut status = ws.status.clone().unwrap_or_default();
    if status.phase != Some(Phase::Deleting) {
        status.phase = Some(Phase::Deleting);
        patch_status(ctx, ws, &status).await?;
    }
    // What runs in the cluster goes first: it uses what is about to be deleted on AWS.
    super::in_cluster::delete(ws, ctx).await?;
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
        if let Some(sharing) = &ctx.connect.sharing {
            sharing.forget(&stack::stack_id(ws));
        }
        Ok(Next::Change)
    } else if outcome.failures.is_empty() {
        // Deletions AWS is still carrying out: look again soon, without a warning.
        let pending: Vec<String> = outcome
            .pending
            .iter()
            .map(|o| format!("{} {}", o.kind, o.id))
            .collect();
        tracing::debug!(stack = %ws.name_any(), pending = %pending.join(", "), "AWS is still deleting");
        Ok(Next::Retry)
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
        let failure = |retryable| NodeFailure {
            node: NodeId::new(Kind("Vpc"), "vpc"),
            error: "x".into(),
            code: "X".into(),
            retryable,
        };
        // Ready, or Degraded with tiers this version does not build: nothing more to do.
        assert_eq!(next_look(&ApplyOutcome::default()), Next::Resync);
        let mut permanent = ApplyOutcome::default();
        permanent.failures.push(failure(false));
        assert_eq!(next_look(&permanent), Next::Resync);
        let mut throttled = ApplyOutcome::default();
        throttled.failures.push(failure(true));
        assert_eq!(next_look(&throttled), Next::Retry);
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
        assert_eq!(next_look(&settling), Next::Retry);
    }
}
