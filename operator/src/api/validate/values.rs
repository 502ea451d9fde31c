//! Applies the syntax checks of [`super::names`] to every field of the spec that holds such a
//! value, so that the same mistake is caught wherever it is made.

use super::names::{
    check_domain_name, check_email, check_image, check_instance_class, check_origin,
    check_redirect_url, check_route, check_tags, S3_EVENTS,
};
use super::ValidationErrors;
use crate::api::WebStackSpec;

fn each<'a>(
    errors: &mut ValidationErrors,
    items: impl IntoIterator<Item = (String, &'a str)>,
    check: impl Fn(&str) -> Result<(), String>,
) {
    for (path, value) in items {
        if let Err(e) = check(value) {
            errors.add(path, e);
        }
    }
}

pub fn check(s: &WebStackSpec, errors: &mut ValidationErrors) {
    for (path, message) in check_tags(&s.tags) {
        errors.add(path, message);
    }
    each(errors, images(s), check_image);
    each(errors, domain_names(s), |d| check_domain_name(d, true));
    each(
        errors,
        s.dns
            .iter()
            .map(|d| ("spec.dns.zone".to_owned(), d.zone.as_str())),
        |z| check_domain_name(z, false),
    );
    each(errors, instance_classes(s, ""), |c| {
        check_instance_class(c, "")
    });
    each(errors, instance_classes(s, "db."), |c| {
        check_instance_class(c, "db.")
    });
    each(errors, instance_classes(s, "cache."), |c| {
        check_instance_class(c, "cache.")
    });
    each(errors, routes(s), check_route);
    each(errors, origins(s), check_origin);
    each(errors, redirect_urls(s), check_redirect_url);
    if let Some(m) = &s.monitoring {
        each(
            errors,
            m.notify
                .iter()
                .enumerate()
                .map(|(i, e)| (format!("spec.monitoring.notify[{i}]"), e.as_str())),
            check_email,
        );
    }
    for (i, b) in s.buckets.iter().enumerate() {
        for (j, n) in b.notifications.iter().enumerate() {
            for (k, e) in n.events.iter().enumerate() {
                if !S3_EVENTS.contains(&e.as_str()) {
                    errors.add(
                        format!("spec.buckets[{i}].notifications[{j}].events[{k}]"),
                        format!("{e:?} is not an S3 event type such as \"s3:ObjectCreated:*\""),
                    );
                }
            }
        }
    }
}

/// Every container image reference of the spec, with its path.
fn images(s: &WebStackSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(w) = s.frontend.as_ref().and_then(|f| f.in_cluster.as_ref()) {
        out.push(("spec.frontend.inCluster.image".to_owned(), w.image.as_str()));
    }
    for (i, t) in s.backend.iter().flat_map(|b| b.tiers.iter()).enumerate() {
        let p = format!("spec.backend.tiers[{i}]");
        if let Some(c) = t.ec2.as_ref().and_then(|e| e.container.as_ref()) {
            out.push((format!("{p}.ec2.container.image"), c.image.as_str()));
        }
        if let Some(f) = &t.fargate {
            out.push((format!("{p}.fargate.image"), f.image.as_str()));
        }
        if let Some(w) = &t.in_cluster {
            out.push((format!("{p}.inCluster.image"), w.image.as_str()));
        }
    }
    for (i, f) in s.functions.iter().enumerate() {
        if let Some(image) = &f.code.image {
            out.push((format!("spec.functions[{i}].code.image"), image.as_str()));
        }
    }
    out
}

/// Every domain name of the spec (aliases, certificate names, the API's custom domain).
fn domain_names(s: &WebStackSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(cdn) = &s.cdn {
        out.extend(
            cdn.aliases
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("spec.cdn.aliases[{i}]"), a.as_str())),
        );
    }
    for (i, c) in s.certificates.iter().enumerate() {
        out.push((format!("spec.certificates[{i}].domain"), c.domain.as_str()));
        out.extend(
            c.subject_alternative_names
                .iter()
                .enumerate()
                .map(|(j, n)| {
                    (
                        format!("spec.certificates[{i}].subjectAlternativeNames[{j}]"),
                        n.as_str(),
                    )
                }),
        );
    }
    if let Some(d) = s.http_api.as_ref().and_then(|a| a.domain.as_ref()) {
        out.push(("spec.httpApi.domain.name".to_owned(), d.name.as_str()));
    }
    out
}

/// EC2 instance types (`prefix` ""), RDS classes (`db.`) and cache node types (`cache.`).
fn instance_classes<'a>(s: &'a WebStackSpec, prefix: &str) -> Vec<(String, &'a str)> {
    match prefix {
        "db." => s
            .database
            .as_ref()
            .and_then(|d| d.rds.as_ref())
            .map(|r| {
                (
                    "spec.database.rds.instanceClass".to_owned(),
                    r.instance_class.as_str(),
                )
            })
            .into_iter()
            .collect(),
        "cache." => s
            .cache
            .as_ref()
            .map(|c| ("spec.cache.nodeType".to_owned(), c.node_type.as_str()))
            .into_iter()
            .collect(),
        _ => s
            .backend
            .iter()
            .flat_map(|b| b.tiers.iter())
            .enumerate()
            .filter_map(|(i, t)| {
                t.ec2.as_ref().map(|e| {
                    (
                        format!("spec.backend.tiers[{i}].ec2.instanceType"),
                        e.instance_type.as_str(),
                    )
                })
            })
            .collect(),
    }
}

fn routes(s: &WebStackSpec) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = s
        .http_api
        .iter()
        .flat_map(|a| a.tier_routes.iter())
        .enumerate()
        .map(|(i, r)| {
            (
                format!("spec.httpApi.tierRoutes[{i}].route"),
                r.route.as_str(),
            )
        })
        .collect();
    for (i, f) in s.functions.iter().enumerate() {
        for (j, t) in f.triggers.iter().enumerate() {
            if let Some(r) = &t.http_route {
                out.push((
                    format!("spec.functions[{i}].triggers[{j}].httpRoute"),
                    r.as_str(),
                ));
            }
        }
    }
    out
}

fn origins(s: &WebStackSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (i, b) in s.buckets.iter().enumerate() {
        out.extend(
            b.cors_origins
                .iter()
                .enumerate()
                .map(|(j, o)| (format!("spec.buckets[{i}].corsOrigins[{j}]"), o.as_str())),
        );
    }
    if let Some(a) = &s.http_api {
        out.extend(
            a.cors_origins
                .iter()
                .enumerate()
                .map(|(j, o)| (format!("spec.httpApi.corsOrigins[{j}]"), o.as_str())),
        );
    }
    out
}

fn redirect_urls(s: &WebStackSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let clients = s
        .identity
        .iter()
        .filter_map(|x| x.cognito.as_ref())
        .flat_map(|c| c.clients.iter());
    for (i, c) in clients.enumerate() {
        let p = format!("spec.identity.cognito.clients[{i}]");
        out.extend(
            c.callback_urls
                .iter()
                .enumerate()
                .map(|(j, u)| (format!("{p}.callbackUrls[{j}]"), u.as_str())),
        );
        out.extend(
            c.logout_urls
                .iter()
                .enumerate()
                .map(|(j, u)| (format!("{p}.logoutUrls[{j}]"), u.as_str())),
        );
    }
    out
}
