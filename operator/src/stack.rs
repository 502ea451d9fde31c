//! What the CLI and the controller share: from a WebStack to a scope, a desired graph, an apply
//! until Ready, and the status that reports it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::api::validate::{self, ValidationErrors};
use crate::api::{Condition, InventoryItem, Outputs, Phase, WebStack, WebStackStatus};
use crate::aws::client::{AwsApi, Effect};
use crate::aws::error::AwsError;
use crate::aws::{self, network, Connect, ConnectError, Scope, StackRef};
use crate::engine::{
    ApplyOutcome, DestroyOutcome, Engine, EngineError, Graph, NodeId, Observation, Plan, Reporter,
};

/// Why a stack could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("invalid WebStack: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the stack did not become ready: {0}")]
    NotReady(String),
}

impl StackError {
    /// Whether trying again later can help (as opposed to a spec the user must change).
    pub fn is_retryable(&self) -> bool {
        match self {
            StackError::Aws(e) => e.is_retryable(),
            StackError::Engine(e) => e.is_retryable(),
            StackError::NotReady(_) => true,
            StackError::Invalid(_) | StackError::Connect(_) => false,
        }
    }

    /// The CamelCase reason of the condition this error becomes.
    pub fn reason(&self) -> &'static str {
        match self {
            StackError::Invalid(_) => "InvalidSpec",
            StackError::Connect(_) => "AwsConfiguration",
            StackError::Aws(_) => "AwsError",
            StackError::Engine(EngineError::Refused(_)) => "ReplacementRefused",
            StackError::Engine(_) => "AwsError",
            StackError::NotReady(_) => "Provisioning",
        }
    }
}

/// Everything needed to work on one stack.
pub struct Prepared {
    pub stack: WebStack,
    pub scope: Scope,
    pub engine: Engine<Scope>,
    pub zones: Vec<String>,
    pub graph: Graph,
}

/// Zones of a region, read once per process.
fn zone_cache() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The zones the stack uses: the explicit list, or the first `azCount` the region offers.
pub async fn zones(scope: &Scope, stack: &WebStack) -> Result<Vec<String>, StackError> {
    let net = &stack.spec.network;
    if !net.availability_zones.is_empty() {
        return Ok(net.availability_zones.clone());
    }
    let count = net.az_count.unwrap_or(2) as usize;
    let cached = zone_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&scope.region)
        .cloned();
    let all = match cached {
        Some(z) => z,
        None => {
            let out = scope
                .api
                .call("ec2", "DescribeAvailabilityZones", Effect::Read, || {
                    scope
                        .ec2
                        .describe_availability_zones()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("zone-type")
                                .values("availability-zone")
                                .build(),
                        )
                        .send()
                })
                .await?;
            let mut names: Vec<String> = out
                .availability_zones()
                .iter()
                .filter_map(|z| z.zone_name().map(str::to_owned))
                .collect();
            names.sort();
            zone_cache()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(scope.region.clone(), names.clone());
            names
        }
    };
    if all.len() < count {
        return Err(ValidationErrors::single(
            "spec.network.azCount",
            format!(
                "region {} has only {} availability zones",
                scope.region,
                all.len()
            ),
        )
        .into());
    }
    Ok(all.into_iter().take(count).collect())
}

/// The desired graph of every tier. Pure: the same stack and zones give the same graph.
pub fn desired_graph(
    stack: &WebStack,
    region: &str,
    zones: &[String],
) -> Result<Graph, StackError> {
    let name = stack.metadata.name.as_deref().unwrap_or_default();
    let nodes = network::desired(name, region, &stack.spec.network, zones);
    Graph::new(nodes).map_err(|e| StackError::Engine(e.into()))
}

/// Connects to AWS for a stack: its region, credentials, call layer and identity.
async fn connect_scope(stack: &WebStack, connect: &Connect) -> Result<Scope, StackError> {
    let region = validate::declared_region(&stack.spec);
    let config = aws::load_config(region.as_deref(), connect).await?;
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let api = match connect.api.clone() {
        Some(a) => a,
        None => Arc::new(AwsApi::new(aws::account_key(&config).await?, region)),
    };
    let stack_ref = StackRef::new(
        stack.metadata.namespace.as_deref().unwrap_or("default"),
        stack.metadata.name.as_deref().unwrap_or_default(),
        stack.metadata.uid.as_deref(),
    );
    Ok(Scope::new(stack_ref, &config, api, stack.spec.tags.clone()))
}

/// Validates the stack (no AWS call on failure), then connects and computes its graph.
pub async fn prepare(stack: WebStack, connect: &Connect) -> Result<Prepared, StackError> {
    validate::validate(&stack)?;
    let scope = connect_scope(&stack, connect).await?;
    validate::check_region_move(&stack, &scope.region)?;
    let zones = zones(&scope, &stack).await?;
    let graph = desired_graph(&stack, &scope.region, &zones)?;
    Ok(Prepared {
        stack,
        scope,
        engine: aws::engine(),
        zones,
        graph,
    })
}

/// Deletes (or, with `Retain`, releases) what a stack owns, found by its tags alone: for a
/// stack whose spec is no longer valid.
pub async fn destroy_by_tags(
    stack: &WebStack,
    connect: &Connect,
) -> Result<DestroyOutcome, StackError> {
    let scope = connect_scope(stack, connect).await?;
    let retain = stack.spec.deletion_policy == crate::api::DeletionPolicy::Retain;
    Ok(aws::engine()
        .destroy(
            &scope,
            &scope.stack.id(),
            None,
            retain,
            &crate::engine::Silent,
        )
        .await?)
}

/// The tiers of a spec that this version of the operator does not build yet, with the field
/// that declares each.
pub fn unsupported_tiers(stack: &WebStack) -> Vec<(&'static str, &'static str)> {
    let s = &stack.spec;
    let mut out = Vec::new();
    let frontend = s
        .frontend
        .as_ref()
        .is_some_and(|f| f.kind != crate::api::FrontendKind::None);
    for (present, tier, field) in [
        (frontend, "Frontend", "spec.frontend"),
        (!s.buckets.is_empty(), "Storage", "spec.buckets"),
        (s.backend.is_some(), "Backend", "spec.backend"),
        (!s.repositories.is_empty(), "Registry", "spec.repositories"),
        (
            s.database
                .as_ref()
                .is_some_and(|d| d.kind == crate::api::DatabaseKind::Rds),
            "Database",
            "spec.database",
        ),
        (!s.tables.is_empty(), "Tables", "spec.tables"),
        (s.cache.is_some(), "Cache", "spec.cache"),
        (s.cdn.is_some(), "Cdn", "spec.cdn"),
        (s.dns.is_some(), "Dns", "spec.dns"),
        (
            !s.certificates.is_empty(),
            "Certificates",
            "spec.certificates",
        ),
        (s.identity.is_some(), "Identity", "spec.identity"),
        (!s.functions.is_empty(), "Functions", "spec.functions"),
        (s.http_api.is_some(), "HttpApi", "spec.httpApi"),
        (s.pipeline.is_some(), "Pipeline", "spec.pipeline"),
        (s.monitoring.is_some(), "Monitoring", "spec.monitoring"),
        (
            s.encryption.customer_managed_key,
            "Encryption",
            "spec.encryption",
        ),
    ] {
        if present {
            out.push((tier, field));
        }
    }
    out
}

impl Prepared {
    pub fn stack_id(&self) -> String {
        self.scope.stack.id()
    }

    pub async fn observe(&self) -> Result<Observation, StackError> {
        Ok(self
            .engine
            .observe_stack(&self.scope, &self.stack_id())
            .await?)
    }

    pub async fn plan(&self) -> Result<Plan, StackError> {
        let observation = self.observe().await?;
        Ok(self.engine.plan(&self.graph, &observation))
    }

    /// Applies passes until the stack is Ready, a permanent error occurs, or `timeout` passes.
    pub async fn apply_until_ready(
        &self,
        timeout: Duration,
        reporter: &dyn Reporter,
    ) -> Result<ApplyOutcome, StackError> {
        let started = Instant::now();
        let mut backoff = Duration::from_secs(1);
        loop {
            let outcome = self
                .engine
                .apply(&self.scope, &self.stack_id(), &self.graph, None, reporter)
                .await;
            match outcome {
                Ok(o) if o.is_ready() => return Ok(o),
                Ok(o) if !o.is_retryable() || started.elapsed() >= timeout => {
                    return Err(StackError::NotReady(failure_summary(&o)));
                }
                Ok(_) => {}
                Err(e) if e.is_retryable() && started.elapsed() < timeout => {
                    tracing::debug!(error = %e, "observation failed; retrying");
                }
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    pub async fn destroy(&self, reporter: &dyn Reporter) -> Result<DestroyOutcome, StackError> {
        let retain = self.stack.spec.deletion_policy == crate::api::DeletionPolicy::Retain;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let out = self
                .engine
                .destroy(
                    &self.scope,
                    &self.stack_id(),
                    Some(&self.graph),
                    retain,
                    reporter,
                )
                .await?;
            if out.is_complete() || attempts >= 5 || out.failures.iter().any(|f| !f.2) {
                return Ok(out);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// The status an apply outcome amounts to.
    pub fn status(
        &self,
        outcome: &ApplyOutcome,
        previous: Option<&WebStackStatus>,
    ) -> WebStackStatus {
        status_from(
            &self.stack,
            &self.scope.region,
            &self.zones,
            outcome,
            previous,
        )
    }
}

/// One line per failure, for conditions and errors.
pub fn failure_summary(o: &ApplyOutcome) -> String {
    let mut parts: Vec<String> = o
        .failures
        .iter()
        .map(|f| format!("{}: {}", f.node, f.error))
        .collect();
    if !o.blocked.is_empty() {
        parts.push(format!("{} resources wait for them", o.blocked.len()));
    }
    parts.join("; ")
}

fn previous_condition<'a>(
    previous: Option<&'a WebStackStatus>,
    type_: &str,
) -> Option<&'a Condition> {
    previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
}

/// Builds the status: phase, `Ready` and per-tier conditions, outputs and inventory.
pub fn status_from(
    stack: &WebStack,
    region: &str,
    zones: &[String],
    outcome: &ApplyOutcome,
    previous: Option<&WebStackStatus>,
) -> WebStackStatus {
    let generation = stack.metadata.generation;
    let unsupported = unsupported_tiers(stack);
    let converged = outcome.is_ready();
    let ready = converged && unsupported.is_empty();
    let tier_of = |id: &NodeId| -> &'static str {
        // Every kind built so far belongs to the network tier.
        let _ = id;
        "Network"
    };
    let mut tiers: BTreeMap<&'static str, Vec<String>> = BTreeMap::from([("Network", Vec::new())]);
    for f in &outcome.failures {
        tiers
            .entry(tier_of(&f.node))
            .or_default()
            .push(format!("{}: {}", f.node, f.error));
    }
    for (id, by) in &outcome.blocked {
        tiers
            .entry(tier_of(id))
            .or_default()
            .push(format!("{id} waits for {by}"));
    }
    let mut conditions = Vec::new();
    let summary = failure_summary(outcome);
    let (reason, message) = if ready {
        (
            "Reconciled",
            format!(
                "{} AWS resources are in the desired state",
                outcome.resources.len()
            ),
        )
    } else if converged {
        let fields: Vec<&str> = unsupported.iter().map(|(_, f)| *f).collect();
        (
            "TiersNotSupported",
            format!(
                "the network tier is in the desired state ({} AWS resources); this operator version does not build {} yet, and created nothing for them",
                outcome.resources.len(),
                fields.join(", ")
            ),
        )
    } else if outcome.is_retryable() {
        ("Provisioning", summary)
    } else {
        ("AwsError", summary)
    };
    conditions.push(Condition::new(
        "Ready",
        ready,
        reason,
        message,
        generation,
        previous_condition(previous, "Ready"),
    ));
    for (tier, problems) in tiers {
        let type_ = format!("{tier}Ready");
        let ok = problems.is_empty();
        let (reason, message) = if ok {
            ("Reconciled", String::new())
        } else {
            (reason, problems.join("; "))
        };
        conditions.push(Condition::new(
            &type_,
            ok,
            reason,
            message,
            generation,
            previous_condition(previous, &type_),
        ));
    }
    for (tier, field) in &unsupported {
        let type_ = format!("{tier}Ready");
        let message = format!("{field} is declared, but this operator version does not build the {tier} tier yet; nothing was created for it");
        conditions.push(Condition::new(
            &type_,
            false,
            "NotYetSupported",
            message,
            generation,
            previous_condition(previous, &type_),
        ));
    }
    let mut inventory: Vec<InventoryItem> = outcome
        .resources
        .iter()
        .map(|(id, o)| InventoryItem {
            kind: id.kind.to_string(),
            id: o.id.clone(),
            role: id.role.clone(),
        })
        .collect();
    inventory.sort();
    WebStackStatus {
        observed_generation: generation,
        region: Some(region.to_owned()),
        phase: Some(if ready {
            Phase::Ready
        } else if converged {
            Phase::Degraded
        } else if outcome.is_retryable() {
            Phase::Provisioning
        } else {
            Phase::Failed
        }),
        conditions,
        outputs: Some(Outputs {
            url: None,
            network: Some(network::outputs(&outcome.resources, zones)),
        }),
        inventory,
    }
}

/// The status of a stack that failed before any AWS work: `Ready=False` naming the problem.
pub fn error_status(
    stack: &WebStack,
    err: &StackError,
    previous: Option<&WebStackStatus>,
) -> WebStackStatus {
    let generation = stack.metadata.generation;
    let message = err.to_string();
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.phase = Some(if err.is_retryable() {
        Phase::Provisioning
    } else {
        Phase::Failed
    });
    let ready = Condition::new(
        "Ready",
        false,
        err.reason(),
        message,
        generation,
        previous_condition(previous, "Ready"),
    );
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.insert(0, ready);
    status
}
