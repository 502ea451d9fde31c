//! Writes a stack's in-cluster objects (server-side apply under the operator's field
//! manager), deletes the ones it no longer declares, and everything at the stack's deletion.

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;

use super::desired::{connection_secret, stack_selector, Desired, Settings};
use super::{ObjectKind, MANAGED_BY};
use crate::api::WebStack;

/// How long what the API server offers is believed before it is asked again.
const DISCOVERY_AGE: Duration = Duration::from_secs(300);

/// The objects a pass deleted.
pub type Deleted = Vec<(ObjectKind, String)>;

/// The cluster the stacks' objects go to.
pub struct Cluster {
    client: Client,
    ingress_class: Option<String>,
    autoscaling_v2: Mutex<Option<(Instant, bool)>>,
}

impl Cluster {
    pub fn new(client: Client, ingress_class: Option<String>) -> Self {
        Cluster {
            client,
            ingress_class,
            autoscaling_v2: Mutex::new(None),
        }
    }

    /// What the desired objects depend on: the ingress class, and whether the API server
    /// serves `autoscaling/v2` (asked only when a stack wants an autoscaler, then believed
    /// for a few minutes).
    pub async fn settings(&self, wants_autoscaling: bool) -> Result<Settings, kube::Error> {
        let autoscaling_v2 = if wants_autoscaling {
            self.serves_autoscaling_v2().await?
        } else {
            true
        };
        Ok(Settings {
            ingress_class: self.ingress_class.clone(),
            autoscaling_v2,
        })
    }

    async fn serves_autoscaling_v2(&self) -> Result<bool, kube::Error> {
        let mut known = self.autoscaling_v2.lock().await;
        if let Some((at, served)) = *known {
            if at.elapsed() < DISCOVERY_AGE {
                return Ok(served);
            }
        }
        let served = match self.client.list_api_group_resources("autoscaling/v2").await {
            Ok(list) => list
                .resources
                .iter()
                .any(|r| r.name == "horizontalpodautoscalers"),
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(e) => return Err(e),
        };
        *known = Some((Instant::now(), served));
        Ok(served)
    }

    fn api(&self, stack: &WebStack, kind: ObjectKind) -> Api<DynamicObject> {
        let ns = stack.namespace().unwrap_or_else(|| "default".into());
        Api::namespaced_with(self.client.clone(), &ns, &kind.resource())
    }

    /// Applies every desired object (the operator's name is the field manager); with
    /// `prune`, then deletes the stack's objects that are no longer desired.
    pub async fn apply(
        &self,
        stack: &WebStack,
        desired: &Desired,
        settings: &Settings,
        prune: bool,
    ) -> Result<Deleted, kube::Error> {
        let params = PatchParams::apply(MANAGED_BY).force();
        for o in &desired.objects {
            self.api(stack, o.kind)
                .patch(&o.name, &params, &Patch::Apply(&o.body))
                .await?;
        }
        if !prune {
            return Ok(Deleted::new());
        }
        self.prune(stack, desired, settings).await
    }

    /// Deletes every object of the stack: at its deletion (there may be no garbage
    /// collector to follow the owner references).
    pub async fn delete_all(&self, stack: &WebStack) -> Result<Deleted, kube::Error> {
        // Whatever the cluster serves: an autoscaler made while it served v2 goes too.
        let settings = Settings {
            autoscaling_v2: self.serves_autoscaling_v2().await?,
            ..Settings::default()
        };
        self.prune(stack, &Desired::default(), &settings).await
    }

    /// Deletes the objects of the stack (by its labels and owner reference) that `desired`
    /// does not hold.
    async fn prune(
        &self,
        stack: &WebStack,
        desired: &Desired,
        settings: &Settings,
    ) -> Result<Deleted, kube::Error> {
        let uid = stack.uid().unwrap_or_default();
        let mut deleted = Vec::new();
        for kind in ObjectKind::ALL {
            if kind == ObjectKind::HorizontalPodAutoscaler && !settings.autoscaling_v2 {
                continue;
            }
            let api = self.api(stack, kind);
            // Secrets are never listed (the operator may only read the ones it names).
            let found = if kind == ObjectKind::Secret {
                api.get_metadata_opt(&connection_secret(stack))
                    .await?
                    .into_iter()
                    .map(|m| m.metadata)
                    .collect::<Vec<_>>()
            } else {
                api.list_metadata(&ListParams::default().labels(&stack_selector(stack)))
                    .await?
                    .items
                    .into_iter()
                    .map(|m| m.metadata)
                    .collect()
            };
            for meta in found {
                let name = meta.name.clone().unwrap_or_default();
                let ours = meta
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid && r.controller == Some(true));
                if !ours || desired.contains(kind, &name) {
                    continue;
                }
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => deleted.push((kind, name)),
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(deleted)
    }
}
