//! What the CLI and the controller share: from a WebStack to a scope, a desired graph, an apply
//! until Ready, and the status that reports it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::api::validate::{self, ValidationErrors};
use crate::api::{WebStack, WebStackStatus};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::{
    self, alarms, backend, cache, cdn, certificates, database, dns, keys, logs, network, notify,
    registry, secrets, storage, Connect, ConnectError, Scope, StackRef,
};
use crate::engine::{
    ApplyOutcome, DestroyOutcome, Engine, EngineError, Event, EventKind, Graph, Node, NodeId,
    Observation, PendingNode, Plan, Prop, Reporter, StackKey,
};
use crate::inputs::Inputs;
pub use status::{error_status, failure_summary, status_from};

mod status;

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
    /// A Kubernetes Secret the spec reads is not there (yet): the stack waits for it.
    #[error("{0}")]
    MissingInput(ValidationErrors),
    /// The stack names an IAM role its namespace may not use.
    #[error("{0}")]
    RoleNotAllowed(ValidationErrors),
}

impl StackError {
    /// Whether trying again later can help (as opposed to a spec the user must change).
    pub fn is_retryable(&self) -> bool {
        match self {
            StackError::Aws(e) => e.is_retryable(),
            StackError::Engine(e) => e.is_retryable(),
            StackError::NotReady(_) | StackError::MissingInput(_) => true,
            StackError::Invalid(_) | StackError::Connect(_) | StackError::RoleNotAllowed(_) => {
                false
            }
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
            StackError::MissingInput(_) => "SecretNotFound",
            StackError::RoleNotAllowed(_) => "RoleNotAllowed",
        }
    }
}

/// Everything needed to work on one stack.
pub struct Prepared {
    pub stack: WebStack,
    pub scope: Scope,
    /// The observation shared with every stack of the same account and region, when the
    /// caller shares one (the controller).
    pub shared: Option<std::sync::Arc<crate::engine::SharedObservation>>,
    pub engine: Engine<Scope>,
    pub zones: Vec<String>,
    pub graph: Graph,
    /// The stack's in-cluster workloads are built too (by the controller, after the AWS
    /// pass): its status does not list them as not built.
    pub cluster: bool,
}

/// Resource families a read of every stack reads at once.
const SHARED_READS_AT_ONCE: usize = 4;

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

/// The desired graph of every tier. Pure: the same stack, zones and images give the same
/// graph. `images` are the AMI ids the spec's SSM parameters name now ([`images`]).
pub fn desired_graph(
    stack: &WebStack,
    region: &str,
    zones: &[String],
    images: &BTreeMap<String, String>,
    inputs: &Inputs,
    existing_zone: Option<&str>,
) -> Result<Graph, StackError> {
    let spec = &stack.spec;
    let name = stack.metadata.name.as_deref().unwrap_or_default();
    let me = stack_ref(stack);
    let mut nodes = network::desired(
        name,
        region,
        &effective_network(spec),
        zones,
        &backend::access(spec),
    );
    let subnets = |half: &str| -> Vec<NodeId> {
        zones
            .iter()
            .map(|az| NodeId::new(network::SUBNET, format!("{half}-{az}")))
            .collect()
    };
    let public = subnets("public");
    let private = match spec.network.private_subnets {
        Some(_) => subnets("private"),
        None => Vec::new(),
    };
    // Data lives in the private subnets; a stack without them keeps it in the public ones,
    // never publicly accessible.
    let data_subnets = if private.is_empty() {
        public.clone()
    } else {
        private.clone()
    };
    let cache = cache::desired(
        &me,
        spec,
        data_subnets.clone(),
        NodeId::new(network::SECURITY_GROUP, network::CACHE_SG),
    );
    let database = database::desired(
        &me,
        spec,
        data_subnets,
        NodeId::new(network::SECURITY_GROUP, network::DATABASE_SG),
    );
    let mut wiring = backend::Wiring {
        vpc: Some(NodeId::new(network::VPC, "vpc")),
        public_subnets: public,
        private_subnets: private,
        images: images.clone(),
        ..Default::default()
    };
    if let Some(instance) = database.iter().find(|n| n.id.kind == database::DB_INSTANCE) {
        let attr = |a: &str| Prop::Attr(instance.id.clone(), a.to_owned());
        wiring
            .environment
            .insert("DATABASE_HOST".into(), attr("endpoint"));
        wiring
            .environment
            .insert("DATABASE_PORT".into(), attr("port"));
        wiring
            .environment
            .insert("DATABASE_SECRET_ARN".into(), attr("secretArn"));
        wiring.secrets.push(attr("secretArn"));
    }
    nodes.extend(database);
    if let Some(value) = crate::inputs::external_database(spec, inputs) {
        // Reached by ARN with the tier's own role; the value itself never enters the graph.
        let external = secrets::external_database(&me, spec, value);
        let arn = Prop::Attr(external.id.clone(), "arn".into());
        wiring
            .environment
            .insert("DATABASE_SECRET_ARN".into(), arn.clone());
        wiring.secrets.push(arn);
        nodes.push(external);
    }
    if !cache.is_empty() {
        let attr = |a: &str| Prop::Attr(cache::group_id(), a.to_owned());
        wiring
            .environment
            .insert("CACHE_HOST".into(), attr("endpoint"));
        wiring.environment.insert("CACHE_PORT".into(), attr("port"));
    }
    nodes.extend(cache);
    for s in secrets::desired(&me, spec) {
        let arn = Prop::Attr(s.id.clone(), "arn".into());
        wiring
            .environment
            .insert("JWT_SECRET_ARN".into(), arn.clone());
        wiring.secrets.push(arn);
        nodes.push(s);
    }
    for r in registry::desired(&me, spec) {
        wiring
            .repositories
            .push(Prop::Attr(r.id.clone(), "arn".into()));
        wiring
            .repository_uris
            .insert(r.id.role.clone(), Prop::Attr(r.id.clone(), "uri".into()));
        nodes.push(r);
    }
    let buckets = storage::desired(&me, spec);
    for b in buckets.iter().filter(|b| b.id.role != storage::FRONTEND) {
        let attr = |a: &str| Prop::Attr(b.id.clone(), a.to_owned());
        let name = b.id.role.trim_start_matches("data-");
        wiring.environment.insert(
            format!("BUCKET_{}", name.to_ascii_uppercase().replace('-', "_")),
            attr("name"),
        );
        wiring.buckets.push((attr("arn"), attr("objects")));
    }
    let mut served: Vec<String> = backend::ec2_tiers(spec)
        .filter_map(|t| t.load_balancer.certificate.clone())
        .collect();
    // CloudFront reads its certificate in us-east-1: a stack elsewhere has a second one there.
    let cdn_certificate = match spec.cdn.as_ref().and_then(|c| c.certificate.clone()) {
        Some(name) if region == aws::GLOBAL_REGION => {
            served.push(name.clone());
            Some(certificates::id(&name))
        }
        Some(name) => {
            nodes.extend(certificates::desired_global(
                &me,
                spec,
                std::slice::from_ref(&name),
            ));
            Some(certificates::global_id(&name))
        }
        None => None,
    };
    let edge = cdn::desired(&me, spec, cdn_certificate.as_ref());
    let distribution = edge.iter().any(|n| n.id == cdn::id()).then(cdn::id);
    nodes.extend(edge);
    nodes.extend(storage::policies(
        &buckets,
        &cdn::served_buckets(spec),
        distribution.as_ref(),
    ));
    nodes.extend(buckets);
    served.sort();
    served.dedup();
    let certificates = certificates::desired(&me, spec, &served);
    wiring.certificates = certificates
        .iter()
        .map(|n| (n.id.role.clone(), n.id.clone()))
        .collect();
    nodes.extend(certificates);
    let covered = |kind| {
        nodes
            .iter()
            .filter(move |n| n.id.kind == kind)
            .filter_map(|n| {
                let c = spec.certificates.iter().find(|c| c.name == n.id.role)?;
                let mut names = vec![c.domain.clone()];
                names.extend(c.subject_alternative_names.iter().cloned());
                Some((n.id.clone(), names))
            })
    };
    let targets = dns::Targets {
        cdn: distribution.clone(),
        certificates: covered(certificates::CERTIFICATE)
            .chain(covered(certificates::CDN_CERTIFICATE))
            .collect(),
    };
    nodes.extend(dns::desired(&me, spec, existing_zone, &targets));
    let tiers: Vec<String> = backend::ec2_tiers(spec).map(|t| t.name.clone()).collect();
    for group in logs::desired(&me, spec, &tiers) {
        let name = group.props["name"].clone();
        if let Prop::Value(serde_json::Value::String(name)) = name {
            wiring
                .log_groups
                .insert(group.id.role.clone(), (group.id.clone(), name));
        }
        nodes.push(group);
    }
    let mut watched = alarms::Watched {
        database: nodes
            .iter()
            .find(|n| n.id.kind == database::DB_INSTANCE)
            .map(|n| n.id.clone()),
        cache: nodes
            .iter()
            .find(|n| n.id == cache::group_id())
            .map(|n| n.id.clone()),
        cdn: nodes
            .iter()
            .find(|n| n.id == cdn::id())
            .map(|n| n.id.clone()),
        ..Default::default()
    };
    for topic in notify::desired(&me, spec) {
        watched.topic = Some(topic.id.clone());
        nodes.push(topic);
    }
    let cdn_alarms = spec
        .monitoring
        .iter()
        .flat_map(|m| m.alarms.iter())
        .any(|a| a.metric == crate::api::AlarmMetric::Cdn5xxRate);
    if cdn_alarms && region != aws::GLOBAL_REGION {
        let mut topic = None;
        for t in notify::desired_global(&me, spec) {
            topic = Some(t.id.clone());
            nodes.push(t);
        }
        watched.cdn_elsewhere = Some(topic);
    }
    nodes.extend(alarms::desired(&me, spec, &watched));
    wiring.memory_watched = alarms::memory_watched(spec);
    nodes.extend(backend::desired(&me, region, spec, &wiring));
    for key in keys::desired(&me, spec) {
        encrypt_with(&mut nodes, &key.id);
        nodes.push(key);
    }
    Graph::new(nodes).map_err(|e| StackError::Engine(e.into()))
}

/// Data at rest under the stack's own key: the database, the cache, secrets, log groups,
/// buckets that ask for KMS, and the instances' volumes (in their launch template's data).
fn encrypt_with(nodes: &mut [Node], key: &NodeId) {
    let arn = || Prop::Attr(key.clone(), "arn".into());
    for n in nodes.iter_mut() {
        let kind = n.id.kind;
        let kms_bucket =
            kind == storage::BUCKET && n.props.get("encryption") == Some(&Prop::from("aws:kms"));
        if kms_bucket
            || [
                database::DB_INSTANCE,
                cache::REPLICATION_GROUP,
                secrets::SECRET,
                logs::LOG_GROUP,
            ]
            .contains(&kind)
        {
            n.props.insert("kmsKey".into(), arn());
        } else if kind == backend::LAUNCH_TEMPLATE {
            if let Some(Prop::Map(data)) = n.props.get_mut("data") {
                data.insert("kmsKey".into(), arn());
            }
        }
    }
}

/// The image ids the spec's SSM parameters name now, read in one call per ten parameters at
/// every reconcile: a newly published image becomes a new template version.
pub async fn images(
    scope: &Scope,
    stack: &WebStack,
) -> Result<BTreeMap<String, String>, StackError> {
    let wanted = image_parameters(stack);
    let mut out = BTreeMap::new();
    for chunk in wanted.chunks(10) {
        let names: Vec<String> = chunk.iter().map(|(n, _)| n.clone()).collect();
        let read = scope
            .api
            .call("ssm", "GetParameters", Effect::Read, || {
                scope
                    .ssm
                    .get_parameters()
                    .set_names(Some(names.clone()))
                    .send()
            })
            .await?;
        for p in read.parameters() {
            if let (Some(n), Some(v)) = (p.name(), p.value()) {
                out.insert(n.to_owned(), v.to_owned());
            }
        }
        if let Some(missing) = read.invalid_parameters().first() {
            let field = chunk
                .iter()
                .find(|(n, _)| n == missing)
                .map(|(_, f)| f.as_str())
                .unwrap_or("spec.backend.tiers");
            return Err(ValidationErrors::single(
                field,
                format!(
                    "the SSM parameter {missing} does not exist in {}",
                    scope.region
                ),
            )
            .into());
        }
    }
    Ok(out)
}

/// The SSM parameters the spec's EC2 tiers take their images from, each with its field.
fn image_parameters(stack: &WebStack) -> Vec<(String, String)> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (i, t) in stack
        .spec
        .backend
        .iter()
        .flat_map(|b| b.tiers.iter())
        .enumerate()
    {
        let Some(ec2) = t
            .ec2
            .as_ref()
            .filter(|_| t.runtime == crate::api::Runtime::Ec2)
        else {
            continue;
        };
        if let (None, Some(p)) = (&ec2.image.ami_id, &ec2.image.ssm_parameter) {
            if !wanted.iter().any(|(w, _)| w == p) {
                wanted.push((
                    p.clone(),
                    format!("spec.backend.tiers[{i}].ec2.image.ssmParameter"),
                ));
            }
        }
    }
    wanted
}

/// The network as the tiers need it: a database's and a cache's security groups, on their
/// engines' ports, whether or not the network section names those ports.
pub fn effective_network(spec: &crate::api::WebStackSpec) -> crate::api::NetworkSpec {
    let mut net = spec.network.clone();
    let groups = &mut net.security_groups;
    if let Some(rds) = spec
        .database
        .as_ref()
        .filter(|d| d.kind == crate::api::DatabaseKind::Rds)
        .and_then(|d| d.rds.as_ref())
    {
        groups.database_port.get_or_insert(rds.engine.port());
    }
    if spec.cache.is_some() {
        groups.cache_port.get_or_insert(6379);
    }
    net
}

/// The stack's id in the `webstack.io/stack` tag: `namespace/name`.
pub fn stack_id(stack: &WebStack) -> String {
    stack_ref(stack).id()
}

/// The stack's identity for AWS: namespace, name and owner.
fn stack_ref(stack: &WebStack) -> StackRef {
    StackRef::new(
        stack.metadata.namespace.as_deref().unwrap_or("default"),
        stack.metadata.name.as_deref().unwrap_or_default(),
        stack.metadata.uid.as_deref(),
    )
}

/// Connects to AWS for a stack: its region, credentials, call layer and identity.
async fn connect_scope(stack: &WebStack, connect: &Connect) -> Result<Scope, StackError> {
    let region = validate::declared_region(&stack.spec);
    let (config, api) = connect
        .connect_as(region.as_deref(), stack.spec.assume_role.as_ref())
        .await?;
    Ok(Scope::new(
        stack_ref(stack),
        &config,
        api,
        stack.spec.tags.clone(),
    ))
}

/// Validates the stack (no AWS call on failure), then connects and computes its graph.
pub async fn prepare(stack: WebStack, connect: &Connect) -> Result<Prepared, StackError> {
    prepare_with(stack, connect, Inputs::default()).await
}

/// [`prepare`] for a stack that reads values from Kubernetes Secrets: a value it needs and
/// was not given is refused like an invalid field, before any AWS call.
pub async fn prepare_with(
    stack: WebStack,
    connect: &Connect,
    inputs: Inputs,
) -> Result<Prepared, StackError> {
    let namespace = stack.metadata.namespace.as_deref().unwrap_or("default");
    validate::validate(&stack)?;
    inputs
        .check(&stack.spec, namespace)
        .map_err(StackError::MissingInput)?;
    prepare_checked(stack, connect, inputs, false).await
}

/// [`prepare`] for deleting the stack: what it reads from Kubernetes Secrets is not needed.
pub async fn prepare_to_destroy(
    stack: WebStack,
    connect: &Connect,
) -> Result<Prepared, StackError> {
    validate::validate(&stack)?;
    prepare_checked(stack, connect, Inputs::default(), true).await
}

async fn prepare_checked(
    stack: WebStack,
    connect: &Connect,
    inputs: Inputs,
    destroying: bool,
) -> Result<Prepared, StackError> {
    let mut scope = connect_scope(&stack, connect).await?;
    scope.inputs = std::sync::Arc::new(inputs);
    // Per account: the role's, or the operator's own.
    let account = match &stack.spec.assume_role {
        Some(r) => r.role_arn.as_str(),
        None => scope.api.account(),
    };
    let shared = connect
        .sharing
        .as_ref()
        .map(|s| s.of(account, &scope.region));
    if let Some(d) = stack.spec.dns.as_ref().filter(|d| !d.create_zone) {
        scope.existing_zone = existing_zone(&scope, shared.as_deref(), &d.zone).await?;
        if scope.existing_zone.is_none() && !destroying {
            return Err(ValidationErrors::single(
                "spec.dns.zone",
                format!(
                    "this AWS account has no public hosted zone {}: create it and point the domain's registrar at its name servers, or set spec.dns.createZone: true",
                    d.zone
                ),
            )
            .into());
        }
    }
    validate::check_region_move(&stack, &scope.region)?;
    let zones = zones(&scope, &stack).await?;
    let images = match &shared {
        Some(shared) => {
            let names: Vec<String> = image_parameters(&stack)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let key = format!("images:{}", names.join(","));
            let value = shared
                .lookup(&key, || async {
                    let found = images(&scope, &stack).await?;
                    Ok::<_, StackError>(serde_json::to_value(found).unwrap_or_default())
                })
                .await?;
            serde_json::from_value(value).unwrap_or_default()
        }
        None => images(&scope, &stack).await?,
    };
    let graph = desired_graph(
        &stack,
        &scope.region,
        &zones,
        &images,
        &scope.inputs,
        scope.existing_zone.as_deref(),
    )?;
    Ok(Prepared {
        stack,
        scope,
        shared,
        engine: aws::engine(),
        zones,
        graph,
        cluster: false,
    })
}

/// The id of the existing zone `name`, read at most once per maximum age of the shared
/// observation when there is one.
async fn existing_zone(
    scope: &Scope,
    shared: Option<&crate::engine::SharedObservation>,
    name: &str,
) -> Result<Option<String>, StackError> {
    let Some(shared) = shared else {
        return Ok(dns::existing_zone(scope, name).await?);
    };
    let found = shared
        .lookup(&format!("zone:{name}"), || async {
            Ok::<_, AwsError>(serde_json::Value::from(
                dns::existing_zone(scope, name).await?,
            ))
        })
        .await?;
    Ok(found.as_str().map(str::to_owned))
}

/// Deletes (or, with `Retain`, releases) what a stack owns, found by its tags alone: for a
/// stack whose spec is no longer valid.
pub async fn destroy_by_tags(
    stack: &WebStack,
    connect: &Connect,
) -> Result<DestroyOutcome, StackError> {
    let mut scope = connect_scope(stack, connect).await?;
    // Records in an existing zone are found by reading that zone.
    if let Some(d) = stack.spec.dns.as_ref().filter(|d| !d.create_zone) {
        scope.existing_zone = dns::existing_zone(&scope, &d.zone).await?;
    }
    let retain = stack.spec.deletion_policy == crate::api::DeletionPolicy::Retain;
    Ok(aws::engine()
        .destroy(
            &scope,
            &scope.stack.key(),
            None,
            retain,
            &crate::engine::Silent,
        )
        .await?)
}

/// The tier of the in-cluster workloads, in conditions (`WorkloadsReady`).
pub const WORKLOADS: &str = "Workloads";

/// The tiers of a spec that this version of the operator does not build yet, with the field
/// that declares each. In-cluster workloads are built only by the controller (`cluster`); the
/// CLI lists them under `Workloads`.
pub fn unsupported_tiers(stack: &WebStack, cluster: bool) -> Vec<(&'static str, String)> {
    let s = &stack.spec;
    let mut out = Vec::new();
    // A frontend on S3 is the storage area's, one of kind Tier a backend tier, one in the
    // cluster the controller's.
    let frontend = !cluster
        && s.frontend
            .as_ref()
            .is_some_and(|f| f.kind == crate::api::FrontendKind::InCluster);
    for (present, tier, field) in [
        (frontend, WORKLOADS, "spec.frontend"),
        (!s.tables.is_empty(), "Tables", "spec.tables"),
        (
            s.cdn.as_ref().is_some_and(|c| {
                std::iter::once(&c.default_origin)
                    .chain(c.behaviors.iter().map(|b| &b.origin))
                    .any(|o| o == "http-api")
            }),
            "Cdn",
            "spec.cdn",
        ),
        (
            s.dns
                .as_ref()
                .is_some_and(|d| d.records.iter().any(|r| r.target == "http-api")),
            "Dns",
            "spec.dns",
        ),
        (
            s.identity
                .as_ref()
                .is_some_and(|i| i.kind == crate::api::IdentityKind::Cognito),
            "Identity",
            "spec.identity",
        ),
        (!s.functions.is_empty(), "Functions", "spec.functions"),
        (s.http_api.is_some(), "HttpApi", "spec.httpApi"),
        (s.pipeline.is_some(), "Pipeline", "spec.pipeline"),
    ] {
        if present {
            out.push((tier, field.to_owned()));
        }
    }
    for (i, t) in s.backend.iter().flat_map(|b| b.tiers.iter()).enumerate() {
        match t.runtime {
            crate::api::Runtime::Ec2 => {}
            crate::api::Runtime::InCluster if cluster => {}
            crate::api::Runtime::InCluster => {
                out.push((WORKLOADS, format!("spec.backend.tiers[{i}].runtime")))
            }
            crate::api::Runtime::Fargate => {
                out.push(("Backend", format!("spec.backend.tiers[{i}].runtime")))
            }
        }
    }
    out.extend(alarms::unsupported(s));
    let served: Vec<&String> = backend::ec2_tiers(s)
        .filter_map(|t| t.load_balancer.certificate.as_ref())
        .chain(s.cdn.iter().filter_map(|c| c.certificate.as_ref()))
        .collect();
    for (i, c) in s.certificates.iter().enumerate() {
        if !served.contains(&&c.name) {
            out.push(("Certificates", format!("spec.certificates[{i}]")));
        }
    }
    out
}

/// A pending resource as a progress line.
fn report_pending(reporter: &dyn Reporter, p: &PendingNode, elapsed: Duration) {
    reporter.report(Event {
        what: EventKind::Waiting,
        kind: p.node.kind,
        role: p.node.role.clone(),
        id: Some(p.id.clone()),
        detail: format!("{}, {}s", p.state, elapsed.as_secs()),
    });
}

impl Prepared {
    pub fn stack_id(&self) -> String {
        self.scope.stack.id()
    }

    /// The stack as the engine knows it: its tag and its owner.
    pub fn key(&self) -> StackKey {
        self.scope.stack.key()
    }

    pub async fn observe(&self) -> Result<Observation, StackError> {
        Ok(self
            .engine
            .observe_stack(&self.scope, &self.stack_id())
            .await?)
    }

    pub async fn plan(&self) -> Result<Plan, StackError> {
        let observation = self.observe().await?;
        Ok(self.engine.plan(&self.graph, &observation, &self.key()))
    }

    /// One apply pass. With a shared observation, the stack reads nothing of its own: a pass
    /// that changed anything (or left something to wait for or retry) has the stack wait, next
    /// time, for a read of every stack begun after this pass.
    pub async fn apply_once(&self, reporter: &dyn Reporter) -> Result<ApplyOutcome, StackError> {
        let observation = self.shared_observation().await?;
        let out = self
            .engine
            .apply(&self.scope, &self.key(), &self.graph, observation, reporter)
            .await;
        if let Some(shared) = &self.shared {
            let quiet = out
                .as_ref()
                .is_ok_and(|o| o.is_ready() && o.events.is_empty() && o.deleted.is_empty());
            if !quiet {
                shared.wrote(&self.stack_id());
            }
        }
        Ok(out?)
    }

    /// The stack's share of the shared observation, or `None` without one (it reads alone).
    async fn shared_observation(&self) -> Result<Option<Observation>, StackError> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let needs: Vec<String> = self.scope.existing_zone.iter().cloned().collect();
        let mut every = self.scope.clone();
        let observation = shared
            .for_stack(&self.stack_id(), &needs, move |zones| async move {
                every.observed_zones = zones.into_iter().collect();
                aws::engine()
                    .observe_at_most(
                        &every,
                        &crate::engine::Selector::AllStacks,
                        SHARED_READS_AT_ONCE,
                    )
                    .await
            })
            .await?;
        Ok(Some(observation))
    }

    /// Applies passes until the stack is Ready, a permanent error occurs, or `timeout` passes.
    /// Between passes, each resource still settling is reported with the time it has taken.
    pub async fn apply_until_ready(
        &self,
        timeout: Duration,
        reporter: &dyn Reporter,
    ) -> Result<ApplyOutcome, StackError> {
        let started = Instant::now();
        let mut since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.apply_once(reporter).await {
                Ok(o) if o.is_ready() => return Ok(o),
                Ok(o) if !o.is_retryable() => {
                    return Err(StackError::NotReady(failure_summary(&o)))
                }
                Ok(o) if started.elapsed() >= timeout => {
                    return Err(StackError::NotReady(format!(
                        "gave up after {:?}: {}",
                        timeout,
                        failure_summary(&o)
                    )))
                }
                Ok(o) => {
                    for p in o.pending.values() {
                        let first = *since.entry(p.id.clone()).or_insert_with(Instant::now);
                        report_pending(reporter, p, first.elapsed());
                    }
                    if o.is_settling() {
                        backoff = backoff.min(Duration::from_secs(5));
                    }
                }
                Err(e) if e.is_retryable() && started.elapsed() < timeout => {
                    tracing::debug!(error = %e, "observation failed; retrying");
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// One destroy pass (or, with `deletionPolicy: Retain`, release).
    pub async fn destroy_once(
        &self,
        reporter: &dyn Reporter,
    ) -> Result<DestroyOutcome, StackError> {
        let retain = self.stack.spec.deletion_policy == crate::api::DeletionPolicy::Retain;
        Ok(self
            .engine
            .destroy(
                &self.scope,
                &self.key(),
                Some(&self.graph),
                retain,
                reporter,
            )
            .await?)
    }

    /// Destroy passes until everything is gone, a permanent error occurs, or `timeout` passes;
    /// deletions that take a while are polled between passes.
    pub async fn destroy_until_gone(
        &self,
        timeout: Duration,
        reporter: &dyn Reporter,
    ) -> Result<DestroyOutcome, StackError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(500);
        loop {
            let out = self.destroy_once(reporter).await?;
            let permanent = out.failures.iter().any(|f| !f.retryable);
            if out.is_complete() || permanent || started.elapsed() >= timeout {
                return Ok(out);
            }
            for o in &out.pending {
                reporter.report(Event {
                    what: EventKind::Waiting,
                    kind: o.kind,
                    role: o.role.clone(),
                    id: Some(o.id.clone()),
                    detail: format!("deleting, {}s", started.elapsed().as_secs()),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(15));
        }
    }

    /// The database password, for a connection Secret that asks for it.
    pub async fn database_password(&self, arn: &str) -> Result<String, StackError> {
        Ok(aws::secrets::database_password(&self.scope, arn).await?)
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
            self.cluster,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(file: &str) -> WebStack {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file);
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// In-cluster tiers are built by the controller; the CLI names each under `Workloads`.
    #[test]
    fn in_cluster_tiers_are_the_controllers_to_build() {
        let stack = example("in-cluster.yaml");
        assert!(unsupported_tiers(&stack, true).is_empty());
        assert_eq!(
            unsupported_tiers(&stack, false),
            vec![
                (WORKLOADS, "spec.frontend".to_owned()),
                (WORKLOADS, "spec.backend.tiers[0].runtime".to_owned()),
            ]
        );
    }

    /// The application tier, buckets and the CDN are built in full: what the four reference
    /// examples still miss is DNS and the CDN's alarm, nothing else.
    #[test]
    fn the_reference_examples_miss_only_dns_and_the_cdn_alarm() {
        for file in [
            "starttech.yaml",
            "multi-az-mysql.yaml",
            "stockholm-two-tier.yaml",
            "tekamolo.yaml",
        ] {
            for (tier, field) in &unsupported_tiers(&example(file), false) {
                assert!(
                    *tier == "Dns" || field.starts_with("spec.monitoring.alarms"),
                    "{file}: {tier} ({field})"
                );
            }
        }
        assert!(unsupported_tiers(&example("starttech.yaml"), false).is_empty());
        assert!(unsupported_tiers(&example("multi-az-mysql.yaml"), false).is_empty());
        // The fifth waits for the serverless tier as well.
        let serverless = unsupported_tiers(&example("fargate-serverless.yaml"), false);
        assert!(serverless.iter().any(|(t, _)| *t == "Functions"));
    }
}
