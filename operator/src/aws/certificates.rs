//! ACM certificates of `spec.certificates`, requested with DNS validation in the region of
//! what serves them (a load balancer's in the stack's region). A certificate is pending until
//! AWS issues it, and whatever serves it waits for it. New names are a new certificate: it is
//! requested, the listeners move to it, then the old one is deleted.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use aws_sdk_acm::operation::list_certificates::ListCertificatesOutput;
use aws_sdk_acm::types::{
    CertificateDetail, CertificateStatus, CertificateSummary, Tag, ValidationMethod,
};
use serde_json::{json, Value};

use super::client::Effect;
use super::error::{AwsError, OrAbsent};
use super::tags::{owned_items, read_each, Ownership, Tags, DIGEST_TAG};
use super::{created, pages, Scope, StackRef, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::api::WebStackSpec;
use crate::engine::{
    digest, Engine, Handler, Kind, Node, NodeId, Observed, Observer, Readiness, Replacement,
    Resolved, Selector,
};

pub const CERTIFICATE: Kind = Kind("Certificate");
/// A certificate CloudFront serves: issued in [`super::GLOBAL_REGION`]. In that region the
/// stack's certificates are all of the first kind.
pub const CDN_CERTIFICATE: Kind = Kind("CdnCertificate");

/// Every kind of this area.
pub const KINDS: &[Kind] = &[CERTIFICATE, CDN_CERTIFICATE];

const TIER: &str = "certificates";
const CDN_TIER: &str = "cdn-certificates";
const SERVICE: &str = "acm";

/// Adds the certificate kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(CertificateObserver { global: false })
        .observer(CertificateObserver { global: true })
        .handler(CertificateHandler { global: false })
        .handler(CertificateHandler { global: true })
}

/// Where a certificate of the kind lives.
fn kind_of(global: bool) -> Kind {
    if global {
        CDN_CERTIFICATE
    } else {
        CERTIFICATE
    }
}

fn client(scope: &Scope, global: bool) -> &aws_sdk_acm::Client {
    if global {
        &scope.acm_global
    } else {
        &scope.acm
    }
}

/// The node of each certificate in `names` (the ones something in the stack's region serves).
pub fn desired(stack: &StackRef, spec: &WebStackSpec, names: &[String]) -> Vec<Node> {
    nodes(stack, spec, names, false)
}

/// The nodes of the certificates in `names` that CloudFront serves, for a stack outside
/// [`super::GLOBAL_REGION`].
pub fn desired_global(stack: &StackRef, spec: &WebStackSpec, names: &[String]) -> Vec<Node> {
    nodes(stack, spec, names, true)
}

fn nodes(stack: &StackRef, spec: &WebStackSpec, names: &[String], global: bool) -> Vec<Node> {
    spec.certificates
        .iter()
        .filter(|c| names.contains(&c.name))
        .map(|c| {
            Node::new(
                kind_of(global),
                if global { CDN_TIER } else { TIER },
                c.name.as_str(),
                format!("{}-{}", stack.name, c.name),
            )
            .prop("domain", c.domain.as_str())
            .prop("alternativeNames", json!(c.subject_alternative_names))
        })
        .collect()
}

/// The DNS records that validate a certificate, as (domain, record name, record value); ACM
/// reports them a few seconds after the request, and they never change for that certificate:
/// read once per process.
type Validation = Vec<(String, String, String)>;

fn validation_cache() -> &'static Mutex<HashMap<String, Validation>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Validation>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The validation records of a certificate, once ACM reports one for every name (until then,
/// none: a partial list would be cached for good).
fn validation_of(c: &CertificateDetail) -> Validation {
    let options = c.domain_validation_options();
    let records: Validation = options
        .iter()
        .filter_map(|o| {
            let r = o.resource_record()?;
            Some((
                o.domain_name().to_owned(),
                r.name().to_owned(),
                r.value().to_owned(),
            ))
        })
        .collect();
    if records.len() == options.len() {
        records
    } else {
        Vec::new()
    }
}

/// The attribute of a certificate that holds the name (`part` "name") or value ("value") of
/// the record that validates `domain`.
pub fn validation_attribute(domain: &str, part: &str) -> String {
    format!("validation/{}/{part}", domain.trim_start_matches("*."))
}

fn with_validation(mut o: Observed, records: &Validation) -> Observed {
    for (domain, name, value) in records {
        o = o
            .prop(&validation_attribute(domain, "name"), name.as_str())
            .prop(&validation_attribute(domain, "value"), value.as_str());
    }
    o
}

/// The validation records of a certificate, from the cache or one `DescribeCertificate`.
async fn validation(scope: &Scope, global: bool, arn: &str) -> Result<Validation, AwsError> {
    if let Some(v) = validation_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(arn)
    {
        return Ok(v.clone());
    }
    let detail = scope
        .api
        .call(SERVICE, "DescribeCertificate", Effect::Read, || {
            client(scope, global)
                .describe_certificate()
                .certificate_arn(arn)
                .send()
        })
        .await?;
    let records = detail.certificate().map(validation_of).unwrap_or_default();
    remember(arn, &records);
    Ok(records)
}

fn remember(arn: &str, records: &Validation) {
    if !records.is_empty() {
        validation_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(arn.to_owned(), records.clone());
    }
}

/// The node id of a certificate by its spec name.
pub fn id(name: &str) -> NodeId {
    NodeId::new(CERTIFICATE, name)
}

/// The node id of a certificate CloudFront serves, for a stack outside the global region.
pub fn global_id(name: &str) -> NodeId {
    NodeId::new(CDN_CERTIFICATE, name)
}

fn readiness(status: Option<&CertificateStatus>) -> Readiness {
    match status {
        Some(CertificateStatus::Issued) | None => Readiness::Ready,
        Some(CertificateStatus::PendingValidation) => {
            Readiness::Pending("PENDING_VALIDATION".into())
        }
        Some(other) => Readiness::Gone(other.as_str().to_owned()),
    }
}

/// A certificate's names never change: the digest of the alternative names recorded in its
/// tags at creation stands for them (listings do not always carry them).
fn observed(kind: Kind, c: &CertificateSummary, o: Ownership, names: Option<String>) -> Observed {
    let domain = c.domain_name().unwrap_or_default();
    Observed::new(
        kind,
        o.stack,
        o.role,
        c.certificate_arn().unwrap_or_default(),
    )
    .owner(o.owner)
    .prop("domain", domain)
    .prop("alternativeNames", names.unwrap_or_default())
    .readiness(readiness(c.status()))
}

/// ACM's tag reader: one `ListTagsForCertificate` per certificate never seen before.
async fn read_tags(
    scope: &Scope,
    global: bool,
    arns: Vec<String>,
) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call(SERVICE, "ListTagsForCertificate", Effect::Read, || {
                client(scope, global)
                    .list_tags_for_certificate()
                    .certificate_arn(&arn)
                    .send()
            })
            .await?;
        let tags = r
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect();
        Ok(tags)
    })
    .await
}

pub struct CertificateObserver {
    global: bool,
}

#[async_trait]
impl Observer<Scope> for CertificateObserver {
    fn kinds(&self) -> &'static [Kind] {
        if self.global {
            &[CDN_CERTIFICATE]
        } else {
            &[CERTIFICATE]
        }
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        // In the global region both kinds are read from the regional listing.
        if self.global && scope.region == super::GLOBAL_REGION {
            return Ok(Vec::new());
        }
        let certificates: Vec<CertificateSummary> = pages(
            scope,
            SERVICE,
            "ListCertificates",
            |token| {
                client(scope, self.global)
                    .list_certificates()
                    .set_next_token(token)
                    .send()
            },
            ListCertificatesOutput::next_token,
        )
        .await?
        .iter()
        .flat_map(|p| p.certificate_summary_list().iter().cloned())
        .collect();
        let owned = owned_items(
            scope,
            selector,
            certificates,
            CertificateSummary::certificate_arn,
            |arns| read_tags(scope, self.global, arns),
        )
        .await?;
        let mut out = Vec::new();
        for (c, o) in owned {
            let arn = c.certificate_arn().unwrap_or_default().to_owned();
            let records = match c.status() {
                Some(CertificateStatus::PendingValidation) | Some(CertificateStatus::Issued) => {
                    validation(scope, self.global, &arn).await?
                }
                _ => Vec::new(),
            };
            out.push((c, o, records));
        }
        Ok(out
            .into_iter()
            .filter_map(|(c, o, records)| {
                let tags = scope
                    .api
                    .tags
                    .get(c.certificate_arn().unwrap_or_default())
                    .unwrap_or_default();
                let cdn = tags
                    .iter()
                    .any(|(k, v)| k == COMPONENT_TAG && v.starts_with(&format!("{CDN_TIER}/")));
                // The global listing reports CloudFront's certificates only: the others there
                // are the regional ones of stacks in that region.
                if self.global && !cdn {
                    return None;
                }
                let names = tags
                    .into_iter()
                    .find(|(k, _)| k == DIGEST_TAG)
                    .map(|(_, v)| v);
                Some(with_validation(
                    observed(kind_of(cdn), &c, o, names),
                    &records,
                ))
            })
            .collect())
    }
}

pub struct CertificateHandler {
    global: bool,
}

#[async_trait]
impl Handler<Scope> for CertificateHandler {
    fn kind(&self) -> Kind {
        kind_of(self.global)
    }

    fn replacement(&self) -> Replacement {
        Replacement::CreateBeforeDelete
    }

    fn digested(&self) -> &'static [&'static str] {
        &["alternativeNames"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let recorded = digest(node.props.get("alternativeNames").unwrap_or(&Value::Null));
        let mut all = scope.tags(node);
        all.push((DIGEST_TAG.to_owned(), recorded.clone()));
        let tags: Vec<Tag> = all
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let names = node.strs("alternativeNames");
        let out = scope
            .api
            .call(SERVICE, "RequestCertificate", Effect::Idempotent, || {
                client(scope, self.global)
                    .request_certificate()
                    .domain_name(node.req("domain"))
                    .set_subject_alternative_names((!names.is_empty()).then(|| names.clone()))
                    .validation_method(ValidationMethod::Dns)
                    // The same request after a lost answer returns the same certificate.
                    .idempotency_token(scope.token(node, ""))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let arn = out.certificate_arn().unwrap_or_default();
        scope.api.tags.put(arn, all);
        Ok(created(scope, node, arn)
            .prop("alternativeNames", recorded)
            .readiness(Readiness::Pending("PENDING_VALIDATION".into())))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "DeleteCertificate", Effect::Idempotent, || {
                client(scope, self.global)
                    .delete_certificate()
                    .certificate_arn(&current.id)
                    .send()
            })
            .await
            .or_absent()?;
        scope.api.tags.forget(&current.id);
        Ok(())
    }

    fn settles(&self) -> bool {
        true
    }

    async fn refresh(
        &self,
        scope: &Scope,
        current: &Observed,
    ) -> Result<Option<Observed>, AwsError> {
        let read = scope
            .api
            .call(SERVICE, "DescribeCertificate", Effect::Read, || {
                client(scope, self.global)
                    .describe_certificate()
                    .certificate_arn(&current.id)
                    .send()
            })
            .await;
        let detail = match read {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        let records = detail.certificate().map(validation_of).unwrap_or_default();
        remember(&current.id, &records);
        let mut o = with_validation(current.clone(), &records);
        o.readiness = readiness(detail.certificate().and_then(|c| c.status()));
        Ok(Some(o))
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        for o in resources {
            let keys: Vec<Tag> = [STACK_TAG, COMPONENT_TAG, OWNER_TAG]
                .into_iter()
                .filter_map(|k| Tag::builder().key(k).build().ok())
                .collect();
            scope
                .api
                .call(
                    SERVICE,
                    "RemoveTagsFromCertificate",
                    Effect::Idempotent,
                    || {
                        client(scope, self.global)
                            .remove_tags_from_certificate()
                            .certificate_arn(&o.id)
                            .set_tags(Some(keys.clone()))
                            .send()
                    },
                )
                .await?;
            scope.api.tags.forget(&o.id);
        }
        Ok(())
    }
}
