//! The reconcile's in-cluster step: after the AWS pass (whose outputs they carry), the
//! stack's workloads, endpoints ConfigMap and connection Secret; at deletion, before the AWS
//! resources go, the same objects.

use kube::runtime::events::EventType;
use kube::ResourceExt;

use super::reconcile::{publish, Context, Error, Next};
use crate::api::{WebStack, WebStackStatus};
use crate::stack::Prepared;
use crate::workloads::{self, Outcome};

/// Applies what the stack wants in the cluster and records it in `status`.
pub async fn apply(
    ws: &WebStack,
    ctx: &Context,
    prepared: &Prepared,
    status: &mut WebStackStatus,
) -> Next {
    let previous = ws.status.as_ref();
    let generation = ws.metadata.generation;
    // A stack that never had anything in the cluster costs the API server nothing.
    if !workloads::concerns(ws) {
        return Next::Resync;
    }
    let outcome = match pass(ws, ctx, prepared, status, previous).await {
        Ok(outcome) => outcome,
        Err(message) => {
            publish(
                ctx,
                ws,
                EventType::Warning,
                "WorkloadsFailed",
                "Reconcile",
                message.clone(),
            )
            .await;
            Outcome::Failed(message)
        }
    };
    workloads::record(status, &outcome, generation, previous);
    match outcome {
        Outcome::Failed(_) => Next::Retry,
        _ => Next::Resync,
    }
}

async fn pass(
    ws: &WebStack,
    ctx: &Context,
    prepared: &Prepared,
    status: &WebStackStatus,
    previous: Option<&WebStackStatus>,
) -> Result<Outcome, String> {
    let settings = ctx
        .cluster
        .settings(workloads::desired::wants_autoscaling(ws))
        .await
        .map_err(|e| format!("cannot ask the API server what it serves: {e}"))?;
    let arn = status
        .outputs
        .as_ref()
        .and_then(|o| o.database.as_ref())
        .map(|d| d.secret_arn.as_str());
    let password = match arn {
        Some(arn) if ws.spec.connection_secret.include_password => Some(
            prepared
                .database_password(arn)
                .await
                .map_err(|e| format!("spec.connectionSecret.includePassword: {e}"))?,
        ),
        _ => None,
    };
    let desired = workloads::desired(ws, status.outputs.as_ref(), password.as_deref(), &settings);
    let prune = workloads::needs_prune(previous, ws.metadata.generation);
    let deleted = ctx
        .cluster
        .apply(ws, &desired, &settings, prune)
        .await
        .map_err(|e| format!("Kubernetes API: {e}"))?;
    publish_deleted(ctx, ws, &deleted, "Reconcile", ": no longer declared").await;
    Ok(if desired.is_empty() {
        Outcome::Nothing
    } else {
        Outcome::Applied {
            objects: desired.objects.len(),
            shortfalls: desired.shortfalls,
        }
    })
}

/// Deletes the stack's objects in the cluster, at its deletion.
pub async fn delete(ws: &WebStack, ctx: &Context) -> Result<(), Error> {
    if !workloads::concerns(ws) {
        return Ok(());
    }
    let deleted = ctx.cluster.delete_all(ws).await?;
    publish_deleted(ctx, ws, &deleted, "Delete", "").await;
    if !deleted.is_empty() {
        tracing::debug!(stack = %ws.name_any(), deleted = deleted.len(), "deleted the stack's objects in the cluster");
    }
    Ok(())
}

/// One event per object deleted.
async fn publish_deleted(
    ctx: &Context,
    ws: &WebStack,
    deleted: &workloads::Deleted,
    action: &str,
    why: &str,
) {
    for (kind, name) in deleted {
        let note = format!("{kind} {name}{why}");
        publish(ctx, ws, EventType::Normal, "Deleted", action, note).await;
    }
}
