//! Resources that take effect only after a while (a NAT gateway, a database, a distribution).
//! A pass polls them briefly, so that what settles in seconds needs no second pass, and then
//! moves on: what is still settling is reported as pending, and a later pass picks it up. No
//! pass waits for minutes.

use std::time::{Duration, Instant};

use super::model::{Observed, Readiness};
use super::outcome::{EventKind, Recorder};
use super::provider::Handler;
use crate::aws::error::{AwsError, ErrorClass};

/// How long and how often a pass polls a settling resource.
#[derive(Clone, Debug)]
pub struct WaitPolicy {
    pub first_poll: Duration,
    pub max_poll: Duration,
    /// How long one pass polls a resource before it reports it pending and moves on.
    pub in_pass: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            // What settles in a second (a certificate AWS issues at once, a load balancer
            // already active) costs one more read instead of seconds.
            first_poll: Duration::from_millis(500),
            max_poll: Duration::from_secs(10),
            in_pass: Duration::from_secs(20),
        }
    }
}

/// Where a resource stands after a pass polled it.
pub(super) enum Settled {
    Ready(Observed),
    /// Still settling when the pass's polling budget ran out.
    Pending(Observed),
}

fn gone(current: &Observed, state: &str) -> AwsError {
    AwsError::new(
        "engine",
        "Wait",
        "ResourceGone",
        format!("{} {} went to state {state}", current.kind, current.id),
        ErrorClass::Ambiguous,
    )
}

/// Polls `current` until it is ready or the pass's budget runs out.
pub(super) async fn settle<S: Send + Sync>(
    policy: &WaitPolicy,
    scope: &S,
    handler: &dyn Handler<S>,
    mut current: Observed,
    rec: &Recorder<'_>,
) -> Result<Settled, AwsError> {
    let started = Instant::now();
    let mut poll = policy.first_poll;
    loop {
        match &current.readiness {
            Readiness::Ready => return Ok(Settled::Ready(current)),
            Readiness::Gone(state) | Readiness::Deleting(state) => {
                return Err(gone(&current, state))
            }
            Readiness::Pending(state) => {
                if started.elapsed() + poll > policy.in_pass {
                    return Ok(Settled::Pending(current));
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
        poll = (poll * 2).min(policy.max_poll);
        current = match handler.refresh(scope, &current).await? {
            Some(o) => o,
            None => return Err(gone(&current, "deleted")),
        };
    }
}

/// Polls a deleted resource until it is gone (`true`) or the pass's budget runs out (`false`).
pub(super) async fn settle_gone<S: Send + Sync>(
    policy: &WaitPolicy,
    scope: &S,
    handler: &dyn Handler<S>,
    current: &Observed,
) -> Result<bool, AwsError> {
    let started = Instant::now();
    let mut poll = policy.first_poll;
    loop {
        match handler.refresh(scope, current).await {
            Ok(None) => return Ok(true),
            Ok(Some(o)) if matches!(o.readiness, Readiness::Gone(_)) => return Ok(true),
            Ok(Some(_)) => {}
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e),
        }
        if started.elapsed() + poll > policy.in_pass {
            return Ok(false);
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(policy.max_poll);
    }
}
