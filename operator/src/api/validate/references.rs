//! Checks that span fields: names one part of the spec gives another (functions, tables,
//! tiers, buckets, certificates), domain names against the zone and the certificates, key
//! types of tables and their indexes, routes of the HTTP API. Each error names the exact field,
//! with its list index, where the CRD's own rule can only name the list.

use std::collections::BTreeMap;

use super::names::{check_domain_name, covers, in_zone};
use super::ValidationErrors;
use crate::api::{
    AlarmMetric, Authorization, DatabaseKind, FrontendKind, IdentityKind, SubnetPlacement,
    TableSpec, WebStackSpec,
};

/// Every cross-field rule of the spec, with indexed paths.
pub fn check(spec: &WebStackSpec, errors: &mut ValidationErrors) {
    unique_names(spec, errors);
    frontend_and_tiers(spec, errors);
    function_triggers(spec, errors);
    bucket_notifications(spec, errors);
    cdn_origins(spec, errors);
    certificates_and_names(spec, errors);
    dns_records(spec, errors);
    http_api(spec, errors);
    pipeline(spec, errors);
    alarms(spec, errors);
    for (i, t) in spec.tables.iter().enumerate() {
        table_key_types(t, &format!("spec.tables[{i}]"), errors);
    }
}

/// Reports the second and later uses of each name.
fn duplicates<'a>(
    names: impl Iterator<Item = (String, &'a str)>,
    what: &str,
    errors: &mut ValidationErrors,
) {
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    for (path, name) in names {
        match seen.get(name) {
            Some(first) => errors.add(
                path,
                format!("{what} {name:?} is used twice (also at {first})"),
            ),
            None => {
                seen.insert(name, path);
            }
        }
    }
}

fn unique_names(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let tiers = s.backend.iter().flat_map(|b| b.tiers.iter());
    duplicates(
        tiers
            .enumerate()
            .map(|(i, t)| (format!("spec.backend.tiers[{i}].name"), t.name.as_str())),
        "the tier name",
        errors,
    );
    duplicates(
        s.functions
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("spec.functions[{i}].name"), f.name.as_str())),
        "the function name",
        errors,
    );
    duplicates(
        s.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("spec.buckets[{i}].name"), b.name.as_str())),
        "the bucket name",
        errors,
    );
    duplicates(
        s.tables
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("spec.tables[{i}].name"), t.name.as_str())),
        "the table name",
        errors,
    );
    duplicates(
        s.repositories
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("spec.repositories[{i}].name"), r.name.as_str())),
        "the repository name",
        errors,
    );
    duplicates(
        s.certificates
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("spec.certificates[{i}].name"), c.name.as_str())),
        "the certificate name",
        errors,
    );
    for (i, t) in s.tables.iter().enumerate() {
        duplicates(
            t.indexes.iter().enumerate().map(|(j, x)| {
                (
                    format!("spec.tables[{i}].indexes[{j}].name"),
                    x.name.as_str(),
                )
            }),
            "the index name",
            errors,
        );
    }
    if let Some(cdn) = &s.cdn {
        duplicates(
            cdn.behaviors.iter().enumerate().map(|(i, b)| {
                (
                    format!("spec.cdn.behaviors[{i}].pathPattern"),
                    b.path_pattern.as_str(),
                )
            }),
            "the path pattern",
            errors,
        );
        duplicates(
            cdn.aliases
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("spec.cdn.aliases[{i}]"), a.as_str())),
            "the alias",
            errors,
        );
    }
    if let Some(m) = &s.monitoring {
        duplicates(
            m.alarms
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("spec.monitoring.alarms[{i}].name"), a.name.as_str())),
            "the alarm name",
            errors,
        );
    }
    if let Some(dns) = &s.dns {
        duplicates(
            dns.records
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("spec.dns.records[{i}].name"), r.name.as_str())),
            "the record name",
            errors,
        );
    }
}

fn has_tier(s: &WebStackSpec, name: &str) -> bool {
    s.backend
        .as_ref()
        .is_some_and(|b| b.tiers.iter().any(|t| t.name == name))
}

fn has_certificate(s: &WebStackSpec, name: &str) -> bool {
    s.certificates.iter().any(|c| c.name == name)
}

fn frontend_and_tiers(s: &WebStackSpec, errors: &mut ValidationErrors) {
    if let Some(f) = &s.frontend {
        if f.kind == FrontendKind::Tier {
            if let Some(t) = f.tier.as_deref().filter(|t| !has_tier(s, t)) {
                errors.add(
                    "spec.frontend.tier",
                    format!("{t:?} is not a tier of spec.backend.tiers"),
                );
            }
        }
    }
    let Some(backend) = &s.backend else { return };
    let in_cluster_frontend = s
        .frontend
        .as_ref()
        .is_some_and(|f| f.kind == FrontendKind::InCluster);
    for (i, t) in backend.tiers.iter().enumerate() {
        let p = format!("spec.backend.tiers[{i}]");
        if in_cluster_frontend && t.name == crate::workloads::desired::FRONTEND {
            errors.add(
                format!("{p}.name"),
                "no tier may be named frontend next to an in-cluster frontend: their Deployments, Services and Ingresses would share a name",
            );
        }
        for (j, u) in t.upstreams.iter().enumerate() {
            if *u == t.name {
                errors.add(
                    format!("{p}.upstreams[{j}]"),
                    "a tier cannot be its own upstream",
                );
            } else if !has_tier(s, u) {
                errors.add(
                    format!("{p}.upstreams[{j}]"),
                    format!("{u:?} is not a tier of spec.backend.tiers"),
                );
            }
        }
        if let Some(c) = t
            .load_balancer
            .certificate
            .as_deref()
            .filter(|c| !has_certificate(s, c))
        {
            errors.add(
                format!("{p}.loadBalancer.certificate"),
                format!("{c:?} is not a certificate of spec.certificates"),
            );
        }
        if t.ec2.as_ref().is_some_and(|e| e.elastic_ip) && t.subnets != SubnetPlacement::Public {
            errors.add(
                format!("{p}.subnets"),
                "an instance with an Elastic IP must run in the public subnets",
            );
        }
        if t.subnets == SubnetPlacement::Private
            && t.runtime != crate::api::Runtime::InCluster
            && s.network.private_subnets.is_none()
        {
            errors.add(
                format!("{p}.subnets"),
                "Private needs spec.network.privateSubnets (or set subnets: Public)",
            );
        }
    }
}

fn function_triggers(s: &WebStackSpec, errors: &mut ValidationErrors) {
    for (i, f) in s.functions.iter().enumerate() {
        for (j, t) in f.triggers.iter().enumerate() {
            let p = format!("spec.functions[{i}].triggers[{j}]");
            if let Some(st) = &t.dynamodb_stream {
                match s.tables.iter().find(|x| x.name == st.table) {
                    None => errors.add(
                        format!("{p}.dynamodbStream.table"),
                        format!("{:?} is not a table of spec.tables", st.table),
                    ),
                    Some(x) if x.stream.is_none() => errors.add(
                        format!("{p}.dynamodbStream.table"),
                        format!("the table {:?} has no stream: set its stream", st.table),
                    ),
                    Some(_) => {}
                }
            }
            if t.http_route.is_some() && s.http_api.is_none() {
                errors.add(
                    format!("{p}.httpRoute"),
                    "an httpRoute trigger needs spec.httpApi",
                );
            }
            if t.authorizer.is_some() && s.http_api.is_none() {
                errors.add(
                    format!("{p}.authorizer"),
                    "an authorizer trigger needs spec.httpApi",
                );
            }
            if t.cognito.is_some()
                && s.identity
                    .as_ref()
                    .is_none_or(|x| x.kind != IdentityKind::Cognito)
            {
                errors.add(
                    format!("{p}.cognito"),
                    "a cognito trigger needs spec.identity.kind Cognito",
                );
            }
        }
    }
}

fn bucket_notifications(s: &WebStackSpec, errors: &mut ValidationErrors) {
    for (i, b) in s.buckets.iter().enumerate() {
        for (j, n) in b.notifications.iter().enumerate() {
            if !s.functions.iter().any(|f| f.name == n.function_name) {
                errors.add(
                    format!("spec.buckets[{i}].notifications[{j}].functionName"),
                    format!("{:?} is not a function of spec.functions", n.function_name),
                );
            }
        }
    }
}

/// Why an origin reference (`frontend`, `http-api`, `bucket/<name>`, `tier/<name>`) names
/// nothing in the spec, if it does not.
fn missing_origin(s: &WebStackSpec, origin: &str) -> Option<String> {
    if let Some(b) = origin.strip_prefix("bucket/") {
        return (!s.buckets.iter().any(|x| x.name == b))
            .then(|| format!("{b:?} is not a bucket of spec.buckets"));
    }
    if let Some(t) = origin.strip_prefix("tier/") {
        return (!has_tier(s, t)).then(|| format!("{t:?} is not a tier of spec.backend.tiers"));
    }
    match origin {
        "frontend" => s
            .frontend
            .as_ref()
            .is_none_or(|f| f.kind == FrontendKind::None)
            .then(|| "the stack has no frontend".to_owned()),
        "http-api" => s
            .http_api
            .is_none()
            .then(|| "the stack has no spec.httpApi".to_owned()),
        _ => None,
    }
}

/// Why an origin that names a tier cannot be reached by CloudFront: the tier's load balancer
/// is internal.
fn internal_origin(s: &WebStackSpec, origin: &str) -> Option<String> {
    let tier = match origin {
        "frontend" => s
            .frontend
            .as_ref()
            .filter(|f| f.kind == FrontendKind::Tier)
            .and_then(|f| f.tier.as_deref())?,
        o => o.strip_prefix("tier/")?,
    };
    let t = s
        .backend
        .iter()
        .flat_map(|b| b.tiers.iter())
        .find(|t| t.name == tier)?;
    (t.load_balancer.scheme == crate::api::LoadBalancerScheme::Internal).then(|| {
        format!("tier {tier:?} has an internal load balancer, which CloudFront cannot reach; make it InternetFacing")
    })
}

/// The field of a bucket the CDN serves that is encrypted with KMS: CloudFront's origin access
/// control reads SSE-KMS objects only under a key whose policy admits CloudFront.
fn kms_origin(s: &WebStackSpec, origin: &str) -> Option<String> {
    if origin == "frontend" {
        let site = s
            .frontend
            .as_ref()
            .filter(|f| f.kind == FrontendKind::S3)
            .and_then(|f| f.s3.as_ref())?;
        return (site.encryption == crate::api::BucketEncryption::Kms)
            .then(|| "spec.frontend.s3.encryption".to_owned());
    }
    let name = origin.strip_prefix("bucket/")?;
    let (i, b) = s.buckets.iter().enumerate().find(|(_, b)| b.name == name)?;
    (b.encryption == crate::api::BucketEncryption::Kms)
        .then(|| format!("spec.buckets[{i}].encryption"))
}

fn cdn_origins(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let Some(cdn) = &s.cdn else { return };
    let origins =
        std::iter::once(&cdn.default_origin).chain(cdn.behaviors.iter().map(|b| &b.origin));
    let mut refused: Vec<String> = origins.filter_map(|o| kms_origin(s, o)).collect();
    refused.dedup();
    for field in refused {
        errors.add(
            field,
            "the CDN serves this bucket: encrypt it with S3Managed (CloudFront's origin access control cannot read objects under the AWS-managed KMS key)",
        );
    }
    let why = |o: &str| missing_origin(s, o).or_else(|| internal_origin(s, o));
    if let Some(why) = why(&cdn.default_origin) {
        errors.add("spec.cdn.defaultOrigin", why);
    }
    for (i, b) in cdn.behaviors.iter().enumerate() {
        if let Some(why) = why(&b.origin) {
            errors.add(format!("spec.cdn.behaviors[{i}].origin"), why);
        }
    }
}

/// The names a certificate of the spec covers, if it exists.
fn certificate_names<'a>(s: &'a WebStackSpec, name: &str) -> Option<Vec<&'a str>> {
    s.certificates.iter().find(|c| c.name == name).map(|c| {
        std::iter::once(c.domain.as_str())
            .chain(c.subject_alternative_names.iter().map(String::as_str))
            .collect()
    })
}

/// Names must lie inside the stack's zone (where it has one) and be covered by the
/// certificate that serves them: CloudFront and API Gateway refuse an alias without one,
/// minutes into the change.
fn certificates_and_names(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let zone = s.dns.as_ref().map(|d| d.zone.as_str());
    for (i, c) in s.certificates.iter().enumerate() {
        let p = format!("spec.certificates[{i}]");
        let names = std::iter::once((format!("{p}.domain"), &c.domain)).chain(
            c.subject_alternative_names
                .iter()
                .enumerate()
                .map(|(j, n)| (format!("{p}.subjectAlternativeNames[{j}]"), n)),
        );
        for (path, name) in names {
            if let Some(z) = zone.filter(|z| !in_zone(name, z)) {
                errors.add(
                    path,
                    format!("{name:?} is outside the stack's zone {z:?}; its DNS validation record could not be written there"),
                );
            }
        }
    }
    if let Some(cdn) = &s.cdn {
        match cdn.certificate.as_deref() {
            Some(c) => match certificate_names(s, c) {
                None => errors.add(
                    "spec.cdn.certificate",
                    format!("{c:?} is not a certificate of spec.certificates"),
                ),
                Some(names) => {
                    for (i, a) in cdn.aliases.iter().enumerate() {
                        // A malformed alias has its own error already.
                        if check_domain_name(a, true).is_ok() && !names.iter().any(|n| covers(n, a))
                        {
                            errors.add(
                                format!("spec.cdn.aliases[{i}]"),
                                format!("{a:?} is not covered by the certificate {c:?} ({}); CloudFront refuses an alias its certificate does not cover", names.join(", ")),
                            );
                        }
                    }
                }
            },
            None if !cdn.aliases.is_empty() => errors.add(
                "spec.cdn.aliases",
                "aliases need cdn.certificate naming a certificate that covers them",
            ),
            None => {}
        }
    }
    if let Some(d) = s.http_api.as_ref().and_then(|a| a.domain.as_ref()) {
        match certificate_names(s, &d.certificate) {
            None => errors.add(
                "spec.httpApi.domain.certificate",
                format!(
                    "{:?} is not a certificate of spec.certificates",
                    d.certificate
                ),
            ),
            Some(names) if !names.iter().any(|n| covers(n, &d.name)) => errors.add(
                "spec.httpApi.domain.name",
                format!(
                    "{:?} is not covered by the certificate {:?} ({})",
                    d.name,
                    d.certificate,
                    names.join(", ")
                ),
            ),
            Some(_) => {}
        }
        if let Some(z) = zone.filter(|z| !in_zone(&d.name, z)) {
            errors.add(
                "spec.httpApi.domain.name",
                format!("{:?} is outside the stack's zone {z:?}", d.name),
            );
        }
    }
}

/// Alias records must name what they point at: a record to the CDN needs that name among the
/// CDN's aliases, a record to the HTTP API its custom domain.
fn dns_records(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let Some(dns) = &s.dns else { return };
    for (i, r) in dns.records.iter().enumerate() {
        let p = format!("spec.dns.records[{i}]");
        let host = if r.name == "@" {
            dns.zone.clone()
        } else {
            format!("{}.{}", r.name, dns.zone)
        };
        match r.target.as_str() {
            "cdn" => match &s.cdn {
                None => errors.add(format!("{p}.target"), "the stack has no spec.cdn"),
                Some(cdn) if !cdn.aliases.iter().any(|a| covers(a, &host)) => errors.add(
                    format!("{p}.name"),
                    format!("{host:?} is not an alias of spec.cdn.aliases; CloudFront would refuse its requests"),
                ),
                Some(_) => {}
            },
            "http-api" => match s.http_api.as_ref().map(|a| a.domain.as_ref()) {
                None => errors.add(format!("{p}.target"), "the stack has no spec.httpApi"),
                Some(d) if d.is_none_or(|d| d.name != host) => errors.add(
                    format!("{p}.name"),
                    format!("{host:?} is not spec.httpApi.domain.name; set the API's custom domain to it"),
                ),
                Some(_) => {}
            },
            target => {
                if let Some(t) = target.strip_prefix("tier/").filter(|t| !has_tier(s, t)) {
                    errors.add(
                        format!("{p}.target"),
                        format!("{t:?} is not a tier of spec.backend.tiers"),
                    );
                }
            }
        }
    }
}

fn http_api(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let Some(api) = &s.http_api else { return };
    let mut routes: Vec<(String, &str)> = Vec::new();
    for (i, r) in api.tier_routes.iter().enumerate() {
        let p = format!("spec.httpApi.tierRoutes[{i}]");
        if !has_tier(s, &r.tier) {
            errors.add(
                format!("{p}.tier"),
                format!("{:?} is not a tier of spec.backend.tiers", r.tier),
            );
        }
        routes.push((format!("{p}.route"), &r.route));
    }
    for (i, f) in s.functions.iter().enumerate() {
        for (j, t) in f.triggers.iter().enumerate() {
            if let Some(r) = &t.http_route {
                routes.push((format!("spec.functions[{i}].triggers[{j}].httpRoute"), r));
            }
        }
    }
    duplicates(routes.into_iter(), "the route", errors);
    match api.authorization {
        Authorization::Function => {
            let n = s
                .functions
                .iter()
                .filter(|f| f.triggers.iter().any(|t| t.authorizer == Some(true)))
                .count();
            if n != 1 {
                errors.add(
                    "spec.httpApi.authorization",
                    format!("Function needs exactly one function with an authorizer trigger; the spec has {n}"),
                );
            }
        }
        Authorization::Cognito
            if s.identity
                .as_ref()
                .is_none_or(|x| x.kind != IdentityKind::Cognito) =>
        {
            errors.add(
                "spec.httpApi.authorization",
                "Cognito needs spec.identity.kind Cognito",
            );
        }
        _ => {}
    }
}

fn pipeline(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let Some(p) = &s.pipeline else { return };
    if !s.repositories.iter().any(|r| r.name == p.repository) {
        errors.add(
            "spec.pipeline.repository",
            format!(
                "{:?} is not a repository of spec.repositories",
                p.repository
            ),
        );
    }
    if !has_tier(s, &p.tier) {
        errors.add(
            "spec.pipeline.tier",
            format!("{:?} is not a tier of spec.backend.tiers", p.tier),
        );
    }
}

fn alarms(s: &WebStackSpec, errors: &mut ValidationErrors) {
    let Some(m) = &s.monitoring else { return };
    if m.alarms.len() > m.max_alarms as usize {
        errors.add(
            "spec.monitoring.alarms",
            format!(
                "{} alarms; maxAlarms allows {}",
                m.alarms.len(),
                m.max_alarms
            ),
        );
    }
    let rds = s
        .database
        .as_ref()
        .is_some_and(|d| d.kind == DatabaseKind::Rds);
    for (i, a) in m.alarms.iter().enumerate() {
        let p = format!("spec.monitoring.alarms[{i}]");
        match (a.metric.target_kind(), a.target.as_deref()) {
            (Some(kind), None) => errors.add(
                format!("{p}.target"),
                format!("{:?} measures a {kind}: name it in target", a.metric),
            ),
            (Some("tier"), Some(t)) if !has_tier(s, t) => errors.add(
                format!("{p}.target"),
                format!("{t:?} is not a tier of spec.backend.tiers"),
            ),
            (Some("function"), Some(t)) if !s.functions.iter().any(|f| f.name == t) => errors.add(
                format!("{p}.target"),
                format!("{t:?} is not a function of spec.functions"),
            ),
            _ => {}
        }
        let missing = match a.metric {
            AlarmMetric::DatabaseCpu | AlarmMetric::DatabaseFreeStorage if !rds => {
                Some("an RDS database")
            }
            AlarmMetric::CacheCpu if s.cache.is_none() => Some("spec.cache"),
            AlarmMetric::Cdn5xxRate if s.cdn.is_none() => Some("spec.cdn"),
            _ => None,
        };
        if let Some(what) = missing {
            errors.add(
                format!("{p}.metric"),
                format!(
                    "{:?} measures {what}, which the stack does not declare",
                    a.metric
                ),
            );
        }
    }
}

/// DynamoDB keeps one type per attribute: an index key must have the type the table (or
/// another index) gives the same attribute.
pub fn table_key_types(t: &TableSpec, p: &str, errors: &mut ValidationErrors) {
    let mut types: BTreeMap<&str, (crate::api::AttributeType, String)> = BTreeMap::new();
    let mut keys: Vec<(String, &crate::api::KeyAttribute)> =
        vec![(format!("{p}.partitionKey"), &t.partition_key)];
    if let Some(k) = &t.sort_key {
        keys.push((format!("{p}.sortKey"), k));
    }
    for (j, x) in t.indexes.iter().enumerate() {
        keys.push((format!("{p}.indexes[{j}].partitionKey"), &x.partition_key));
        if let Some(k) = &x.sort_key {
            keys.push((format!("{p}.indexes[{j}].sortKey"), k));
        }
    }
    for (path, key) in keys {
        match types.get(key.name.as_str()) {
            Some((ty, first)) if *ty != key.type_ => errors.add(
                format!("{path}.type"),
                format!(
                    "the attribute {:?} is {:?} at {first}; an attribute has one type in a table and its indexes",
                    key.name, ty
                ),
            ),
            Some(_) => {}
            None => {
                types.insert(&key.name, (key.type_, path));
            }
        }
    }
}
