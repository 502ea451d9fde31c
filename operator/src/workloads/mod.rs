//! The stack's objects in its own namespace: a Deployment, Service, Ingress,
//! HorizontalPodAutoscaler and PodDisruptionBudget for every in-cluster workload, a ConfigMap
//! with the stack's URLs, and the connection Secret of its database and cache. They are
//! applied server-side under the operator's field manager, owned by the WebStack, and deleted
//! by the operator itself when the stack or the part of it goes.
//!
//! `desired` computes them without I/O; `apply` writes, prunes and deletes them.

pub mod apply;
pub mod desired;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::ApiResource;

pub use apply::{Cluster, Deleted};
pub use desired::{desired, has_any, Desired, Object, Settings, Shortfall};

/// The label naming the stack an object belongs to.
pub const STACK_LABEL: &str = "webstack.io/stack";
/// The label naming the part of the stack an object belongs to.
pub const COMPONENT_LABEL: &str = "webstack.io/component";
/// `app.kubernetes.io/managed-by` of every object the operator makes, and the field manager
/// it applies them under.
pub const MANAGED_BY: &str = "webstack-operator";

/// The kinds of objects a stack has in the cluster, in the order they are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    ConfigMap,
    Secret,
    Service,
    Deployment,
    Ingress,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::ConfigMap,
        ObjectKind::Secret,
        ObjectKind::Service,
        ObjectKind::Deployment,
        ObjectKind::Ingress,
        ObjectKind::HorizontalPodAutoscaler,
        ObjectKind::PodDisruptionBudget,
    ];

    pub fn resource(self) -> ApiResource {
        match self {
            ObjectKind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
            ObjectKind::Secret => ApiResource::erase::<Secret>(&()),
            ObjectKind::Service => ApiResource::erase::<Service>(&()),
            ObjectKind::Deployment => ApiResource::erase::<Deployment>(&()),
            ObjectKind::Ingress => ApiResource::erase::<Ingress>(&()),
            ObjectKind::HorizontalPodAutoscaler => {
                ApiResource::erase::<HorizontalPodAutoscaler>(&())
            }
            ObjectKind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
        }
    }

    pub fn api_version(self) -> String {
        self.resource().api_version
    }

    pub fn kind(self) -> String {
        self.resource().kind
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The condition type of the in-cluster objects.
pub const CONDITION: &str = "WorkloadsReady";

/// How a pass over a stack's in-cluster objects ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The stack wants nothing in the cluster (any objects it had are gone).
    Nothing,
    /// Every desired object is applied (and what is no longer desired deleted); the
    /// shortfalls say what the cluster could not give as declared.
    Applied {
        objects: usize,
        shortfalls: Vec<Shortfall>,
    },
    /// The API server refused or failed.
    Failed(String),
}

/// Whether the stack's objects must be looked for to delete those no longer desired: unless
/// a pass for this generation has finished (a failed pass, or one of an older spec, may have
/// left some behind; a crash before the status was written leaves the older generation).
pub fn needs_prune(previous: Option<&crate::api::WebStackStatus>, generation: Option<i64>) -> bool {
    let done = previous
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION))
        .is_some_and(|c| c.observed_generation == generation && c.reason != FAILED);
    !done
}

/// Whether the stack had in-cluster objects the last time it was looked at.
pub fn had_any(previous: Option<&crate::api::WebStackStatus>) -> bool {
    previous.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == CONDITION))
}

/// Whether the cluster is any concern of the stack's: it wants objects there, or had some.
pub fn concerns(stack: &crate::api::WebStack) -> bool {
    has_any(stack) || had_any(stack.status.as_ref())
}

const FAILED: &str = "KubernetesError";

/// Writes the outcome into the status: the `WorkloadsReady` condition, and a stack that was
/// Ready is no longer when its objects failed or fall short of the spec.
pub fn record(
    status: &mut crate::api::WebStackStatus,
    outcome: &Outcome,
    generation: Option<i64>,
    previous: Option<&crate::api::WebStackStatus>,
) {
    use crate::api::{Condition, Phase};
    status.conditions.retain(|c| c.type_ != CONDITION);
    let (ok, reason, message) = match outcome {
        Outcome::Nothing => return,
        Outcome::Applied {
            objects,
            shortfalls,
        } if shortfalls.is_empty() => (
            true,
            "Applied",
            format!("{objects} objects are applied in the stack's namespace"),
        ),
        Outcome::Applied { shortfalls, .. } => {
            let each: Vec<String> = shortfalls
                .iter()
                .map(|s| format!("{}: {}", s.field, s.message))
                .collect();
            (false, "AutoscalingUnavailable", each.join("; "))
        }
        Outcome::Failed(e) => (false, FAILED, e.clone()),
    };
    let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == CONDITION));
    status.conditions.push(Condition::new(
        CONDITION, ok, reason, &message, generation, before,
    ));
    if ok {
        return;
    }
    if let Some(ready) = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == "Ready" && c.status == "True")
    {
        let was = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"));
        *ready = Condition::new("Ready", false, reason, message, generation, was);
        status.phase = Some(Phase::Degraded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Condition, Phase, WebStackStatus};

    fn ready(generation: i64) -> WebStackStatus {
        WebStackStatus {
            phase: Some(Phase::Ready),
            conditions: vec![Condition::new(
                "Ready",
                true,
                "Reconciled",
                "",
                Some(generation),
                None,
            )],
            ..Default::default()
        }
    }

    fn condition<'a>(s: &'a WebStackStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn applied_objects_keep_the_stack_ready_and_a_shortfall_or_failure_degrades_it() {
        let mut s = ready(3);
        let applied = Outcome::Applied {
            objects: 11,
            shortfalls: vec![],
        };
        record(&mut s, &applied, Some(3), None);
        assert_eq!(condition(&s, CONDITION).status, "True");
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(s.phase, Some(Phase::Ready));
        assert!(!needs_prune(Some(&s), Some(3)));
        assert!(needs_prune(Some(&s), Some(4)));

        let mut short = ready(3);
        let shortfall = Outcome::Applied {
            objects: 9,
            shortfalls: vec![Shortfall {
                field: "spec.backend.tiers[0].scaling".into(),
                message: "the cluster does not serve autoscaling/v2".into(),
            }],
        };
        record(&mut short, &shortfall, Some(3), Some(&s));
        let c = condition(&short, CONDITION);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "AutoscalingUnavailable")
        );
        assert!(c.message.starts_with("spec.backend.tiers[0].scaling: "));
        assert_eq!(condition(&short, "Ready").status, "False");
        assert_eq!(short.phase, Some(Phase::Degraded));
        // A shortfall is a finished pass: no search for leftovers at every resync.
        assert!(!needs_prune(Some(&short), Some(3)));

        let mut failed = ready(3);
        record(
            &mut failed,
            &Outcome::Failed("forbidden".into()),
            Some(3),
            Some(&s),
        );
        assert_eq!(condition(&failed, CONDITION).reason, FAILED);
        assert_eq!(condition(&failed, "Ready").message, "forbidden");
        assert!(needs_prune(Some(&failed), Some(3)));
    }

    #[test]
    fn a_stack_with_nothing_in_the_cluster_has_no_condition_and_looks_for_nothing_again() {
        let mut s = ready(2);
        record(
            &mut s,
            &Outcome::Applied {
                objects: 1,
                shortfalls: vec![],
            },
            Some(2),
            None,
        );
        assert!(had_any(Some(&s)));
        let previous = s.clone();
        record(&mut s, &Outcome::Nothing, Some(3), Some(&previous));
        assert!(!had_any(Some(&s)));
        assert!(!had_any(None));
        assert!(needs_prune(None, Some(1)));
    }
}
