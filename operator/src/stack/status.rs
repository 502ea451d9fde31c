//! The status a pass amounts to: phase, `Ready` and per-tier conditions, outputs, inventory,
//! and what is still settling.

use std::collections::BTreeMap;

use super::{network, unsupported_tiers, StackError};
use crate::api::{
    Condition, InventoryItem, Outputs, PendingResource, Phase, WebStack, WebStackStatus,
};
use crate::engine::{ApplyOutcome, NodeId};

/// The tier a resource kind belongs to, for its `<Tier>Ready` condition.
fn tier_of(id: &NodeId) -> &'static str {
    if id.kind == crate::aws::secrets::SECRET && id.role == crate::aws::secrets::EXTERNAL_DATABASE {
        return "Database";
    }
    if crate::aws::storage::KINDS.contains(&id.kind) {
        return match id.role == crate::aws::storage::FRONTEND {
            true => "Frontend",
            false => "Storage",
        };
    }
    use crate::aws::{
        alarms, backend, cache, cdn, certificates, database, dns, keys, logs, notify, registry,
        secrets,
    };
    [
        (logs::KINDS, "Monitoring"),
        (alarms::KINDS, "Monitoring"),
        (notify::KINDS, "Monitoring"),
        (keys::KINDS, "Encryption"),
        (secrets::KINDS, "Identity"),
        (cache::KINDS, "Cache"),
        (database::KINDS, "Database"),
        (registry::KINDS, "Registry"),
        (backend::KINDS, "Backend"),
        (certificates::KINDS, "Certificates"),
        (cdn::KINDS, "Cdn"),
        (dns::KINDS, "Dns"),
    ]
    .into_iter()
    .find(|(kinds, _)| kinds.contains(&id.kind))
    .map(|(_, tier)| tier)
    .unwrap_or("Network")
}

/// Each backend tier's load balancer and group, once they exist.
fn tier_outputs(
    stack: &WebStack,
    outcome: &ApplyOutcome,
) -> BTreeMap<String, crate::api::TierOutputs> {
    use crate::aws::backend::{AUTO_SCALING_GROUP, LOAD_BALANCER};
    crate::aws::backend::ec2_tiers(&stack.spec)
        .filter_map(|t| {
            let get = |kind| outcome.resources.get(&NodeId::new(kind, t.name.as_str()));
            let lb = get(LOAD_BALANCER)?;
            let group = get(AUTO_SCALING_GROUP);
            Some((
                t.name.clone(),
                crate::api::TierOutputs {
                    load_balancer_dns: lb.str("dnsName").unwrap_or_default().to_owned(),
                    scheme: lb.str("scheme").unwrap_or_default().to_owned(),
                    auto_scaling_group: group.map(|g| g.id.clone()).unwrap_or_default(),
                    public_ip: outcome
                        .resources
                        .get(&NodeId::new(
                            crate::aws::network::ELASTIC_IP,
                            format!("{}{}", t.name, crate::aws::network::INSTANCE_SUFFIX),
                        ))
                        .and_then(|a| a.str("publicIp"))
                        .map(str::to_owned),
                    template_version: group
                        .and_then(|g| g.props.get("templateVersion"))
                        .and_then(|v| v.as_i64()),
                },
            ))
        })
        .collect()
}

/// The database's outputs, once the instance exists.
fn database_outputs(outcome: &ApplyOutcome) -> Option<crate::api::DatabaseOutputs> {
    let o = outcome
        .resources
        .iter()
        .find(|(id, _)| id.kind == crate::aws::database::DB_INSTANCE)?
        .1;
    Some(crate::api::DatabaseOutputs {
        endpoint: o.str("endpoint").unwrap_or_default().to_owned(),
        port: o.props.get("port").and_then(|v| v.as_i64()).unwrap_or(0),
        secret_arn: o.str("secretArn").unwrap_or_default().to_owned(),
        identifier: o.id.clone(),
    })
}

/// One line per failure, for conditions and errors.
pub fn failure_summary(o: &ApplyOutcome) -> String {
    let mut parts: Vec<String> = o
        .failures
        .iter()
        .map(|f| format!("{}: {}", f.node, f.error))
        .collect();
    if !o.pending.is_empty() {
        let pending: Vec<String> = o
            .pending
            .values()
            .map(|p| format!("{} {} {}", p.node, p.id, p.state))
            .collect();
        parts.push(format!("still settling: {}", pending.join(", ")));
    }
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

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

/// Pending resources, each keeping the time a previous status first saw it.
fn pending(outcome: &ApplyOutcome, previous: Option<&WebStackStatus>) -> Vec<PendingResource> {
    let before: BTreeMap<&str, &str> = previous
        .into_iter()
        .flat_map(|p| p.pending.iter())
        .map(|p| (p.id.as_str(), p.since.as_str()))
        .collect();
    outcome
        .pending
        .values()
        .map(|p| PendingResource {
            kind: p.node.kind.to_string(),
            role: p.node.role.clone(),
            id: p.id.clone(),
            state: p.state.clone(),
            since: before
                .get(p.id.as_str())
                .map(|s| (*s).to_owned())
                .unwrap_or_else(now),
        })
        .collect()
}

/// Builds the status: phase, `Ready` and per-tier conditions, outputs and inventory.
pub fn status_from(
    stack: &WebStack,
    region: &str,
    zones: &[String],
    outcome: &ApplyOutcome,
    previous: Option<&WebStackStatus>,
    cluster: bool,
) -> WebStackStatus {
    let generation = stack.metadata.generation;
    let unsupported = unsupported_tiers(stack, cluster);
    let converged = outcome.is_ready();
    let ready = converged && unsupported.is_empty();
    let mut tiers: BTreeMap<&'static str, Vec<String>> = BTreeMap::from([("Network", Vec::new())]);
    if stack
        .spec
        .database
        .as_ref()
        .is_some_and(|d| d.kind == crate::api::DatabaseKind::Rds)
    {
        tiers.insert("Database", Vec::new());
    }
    if stack.spec.encryption.customer_managed_key {
        tiers.insert("Encryption", Vec::new());
    }
    if !crate::inputs::needed(&stack.spec).is_empty() {
        tiers.insert("Database", Vec::new());
    }
    if crate::aws::backend::ec2_tiers(&stack.spec).next().is_some() {
        tiers.insert("Backend", Vec::new());
        tiers.insert("Monitoring", Vec::new());
    }
    if stack
        .spec
        .monitoring
        .as_ref()
        .is_some_and(|m| !m.alarms.is_empty() || !m.notify.is_empty())
    {
        tiers.insert("Monitoring", Vec::new());
    }
    if !stack.spec.repositories.is_empty() {
        tiers.insert("Registry", Vec::new());
    }
    if stack.spec.cache.is_some() {
        tiers.insert("Cache", Vec::new());
    }
    if stack
        .spec
        .identity
        .as_ref()
        .is_some_and(|i| i.kind == crate::api::IdentityKind::Jwt)
    {
        tiers.insert("Identity", Vec::new());
    }
    if crate::aws::backend::ec2_tiers(&stack.spec).any(|t| t.load_balancer.certificate.is_some())
        || stack
            .spec
            .cdn
            .as_ref()
            .is_some_and(|c| c.certificate.is_some())
    {
        tiers.insert("Certificates", Vec::new());
    }
    if stack
        .spec
        .frontend
        .as_ref()
        .is_some_and(|f| f.kind == crate::api::FrontendKind::S3)
    {
        tiers.insert("Frontend", Vec::new());
    }
    if !stack.spec.buckets.is_empty() {
        tiers.insert("Storage", Vec::new());
    }
    if stack.spec.cdn.is_some() {
        tiers.insert("Cdn", Vec::new());
    }
    if stack.spec.dns.is_some() {
        tiers.insert("Dns", Vec::new());
    }
    // Problems of the tiers built, and the parts of them not built yet.
    let mut not_built: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut parts_not_built: BTreeMap<&str, usize> = BTreeMap::new();
    for (tier, field) in &unsupported {
        match tiers.get_mut(tier) {
            Some(problems) => {
                problems.push(format!(
                    "{field} is declared, but this operator version does not build it yet"
                ));
                *parts_not_built.entry(tier).or_default() += 1;
            }
            None => not_built.entry(tier).or_default().push(field),
        }
    }
    for f in &outcome.failures {
        tiers
            .entry(tier_of(&f.node))
            .or_default()
            .push(format!("{}: {}", f.node, f.error));
    }
    for p in outcome.pending.values() {
        tiers
            .entry(tier_of(&p.node))
            .or_default()
            .push(format!("{} {} is {}", p.node, p.id, p.state));
    }
    for (id, by) in &outcome.blocked {
        tiers
            .entry(tier_of(id))
            .or_default()
            .push(format!("{id} waits for {by}"));
    }
    let mut notes = Vec::new();
    if !outcome.kept.is_empty() {
        let kept: Vec<String> = outcome
            .kept
            .iter()
            .map(|o| format!("{} {} ({})", o.kind, o.role, o.id))
            .collect();
        notes.push(format!(
            "kept, as they hold data, though the spec no longer declares them: {} (deleted with the stack)",
            kept.join(", ")
        ));
    }
    if !outcome.foreign.is_empty() {
        let owners: std::collections::BTreeSet<&str> = outcome
            .foreign
            .iter()
            .filter_map(|o| o.owner.as_deref())
            .collect();
        notes.push(format!(
            "{} AWS resources carry this stack's name but belong to another owner ({}): another cluster or a CLI manages a stack of the same name in this account; they are left alone",
            outcome.foreign.len(),
            owners.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut conditions = Vec::new();
    let summary = failure_summary(outcome);
    let (reason, mut message) = if ready {
        (
            "Reconciled",
            format!(
                "{} AWS resources are in the desired state",
                outcome.resources.len()
            ),
        )
    } else if converged {
        let fields: Vec<&str> = unsupported.iter().map(|(_, f)| f.as_str()).collect();
        (
            "TiersNotSupported",
            format!(
                "the tiers built so far are in the desired state ({} AWS resources); this operator version does not build {} yet, and created nothing for them",
                outcome.resources.len(),
                fields.join(", ")
            ),
        )
    } else if outcome.is_settling() || outcome.is_retryable() {
        ("Provisioning", summary)
    } else {
        ("AwsError", summary)
    };
    for n in notes {
        message.push_str("; ");
        message.push_str(&n);
    }
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
        let only_parts_not_built = parts_not_built.get(tier) == Some(&problems.len());
        let (reason, message) = if ok {
            ("Reconciled", String::new())
        } else if only_parts_not_built {
            ("NotYetSupported", problems.join("; "))
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
    for (tier, fields) in &not_built {
        let type_ = format!("{tier}Ready");
        let field = fields.join(", ");
        let (reason, message) = if *tier == super::WORKLOADS {
            ("BuiltInCluster", format!("{field} runs in a Kubernetes cluster: the operator there builds it; this pass built only what lives on AWS"))
        } else {
            ("NotYetSupported", format!("{field} is declared, but this operator version does not build the {tier} tier yet; nothing was created for it"))
        };
        conditions.push(Condition::new(
            &type_,
            false,
            reason,
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
        } else if outcome.is_settling() || outcome.is_retryable() {
            Phase::Provisioning
        } else {
            Phase::Failed
        }),
        conditions,
        outputs: Some(Outputs {
            url: site_url(stack, outcome),
            buckets: outcome
                .resources
                .iter()
                .filter(|(id, _)| id.kind == crate::aws::storage::BUCKET)
                .map(|(id, o)| {
                    let name = id.role.strip_prefix("data-").unwrap_or(&id.role);
                    (name.to_owned(), o.id.clone())
                })
                .collect(),
            cdn: outcome
                .resources
                .get(&crate::aws::cdn::id())
                .map(|d| crate::api::CdnOutputs {
                    distribution_id: d.id.clone(),
                    domain_name: d.str("domainName").unwrap_or_default().to_owned(),
                    status: d.str("status").unwrap_or_default().to_owned(),
                }),
            dns: dns_outputs(stack, outcome),
            validation_records: validation_records(stack, outcome),
            network: Some(network::outputs(&outcome.resources, zones)),
            database: database_outputs(outcome),
            tiers: tier_outputs(stack, outcome),
            jwt_secret_arn: outcome
                .resources
                .get(&crate::aws::secrets::jwt_id())
                .map(|s| s.id.clone()),
            cache: outcome
                .resources
                .get(&crate::aws::cache::group_id())
                .map(|g| crate::api::CacheOutputs {
                    endpoint: g.str("endpoint").unwrap_or_default().to_owned(),
                    port: g.props.get("port").and_then(|v| v.as_i64()).unwrap_or(0),
                }),
            repositories: outcome
                .resources
                .iter()
                .filter(|(id, _)| id.kind == crate::aws::registry::REPOSITORY)
                .map(|(id, o)| (id.role.clone(), o.str("uri").unwrap_or_default().to_owned()))
                .collect(),
        }),
        inventory,
        pending: pending(outcome, previous),
    }
}

/// Where users reach the stack: `https://` and the CDN's first alias, or its own domain.
fn site_url(stack: &WebStack, outcome: &ApplyOutcome) -> Option<String> {
    let d = outcome.resources.get(&crate::aws::cdn::id())?;
    let host = stack
        .spec
        .cdn
        .as_ref()
        .and_then(|c| c.aliases.first().cloned())
        .or_else(|| d.str("domainName").map(str::to_owned))?;
    Some(format!("https://{host}"))
}

/// The stack's zone: its own (with the name servers to give the registrar) or the one the
/// spec names.
fn dns_outputs(stack: &WebStack, outcome: &ApplyOutcome) -> Option<crate::api::DnsOutputs> {
    stack.spec.dns.as_ref()?;
    if let Some(z) = outcome.resources.get(&crate::aws::dns::zone_id()) {
        let servers = z
            .props
            .get("nameServers")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        return Some(crate::api::DnsOutputs {
            zone_id: z.id.clone(),
            name_servers: servers,
        });
    }
    outcome
        .resources
        .iter()
        .find(|(id, _)| id.kind == crate::aws::dns::RECORD)
        .and_then(|(_, r)| r.str("zone"))
        .map(|zone| crate::api::DnsOutputs {
            zone_id: zone.to_owned(),
            name_servers: Vec::new(),
        })
}

/// The records that validate the certificates of a stack without DNS of its own.
fn validation_records(
    stack: &WebStack,
    outcome: &ApplyOutcome,
) -> Vec<crate::api::ValidationRecord> {
    use crate::aws::certificates::{validation_attribute, CDN_CERTIFICATE, CERTIFICATE};
    if stack.spec.dns.is_some() {
        return Vec::new();
    }
    let mut out: Vec<crate::api::ValidationRecord> = Vec::new();
    let ready = outcome.resources.iter().map(|(id, o)| (id, &o.props));
    let pending = outcome.pending.iter().map(|(id, p)| (id, &p.props));
    for (id, props) in ready.chain(pending) {
        if id.kind != CERTIFICATE && id.kind != CDN_CERTIFICATE {
            continue;
        }
        let get = |k: &str| props.get(k).and_then(|v| v.as_str());
        let Some(spec) = stack.spec.certificates.iter().find(|c| c.name == id.role) else {
            continue;
        };
        for domain in std::iter::once(&spec.domain).chain(&spec.subject_alternative_names) {
            let name = get(&validation_attribute(domain, "name"));
            let value = get(&validation_attribute(domain, "value"));
            if let (Some(name), Some(value)) = (name, value) {
                if !out.iter().any(|r| r.name == name && r.value == value) {
                    out.push(crate::api::ValidationRecord {
                        certificate: spec.name.clone(),
                        domain: domain.clone(),
                        name: name.to_owned(),
                        value: value.to_owned(),
                    });
                }
            }
        }
    }
    out
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
