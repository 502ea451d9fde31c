//! The distribution kind. Observed through one `ListDistributions` (tags read once per
//! distribution and cached), then its configuration with the ETag that updates send back as
//! `If-Match`. A disabled distribution of the stack is one being deleted: it is deleted once
//! CloudFront reports the disabled configuration deployed.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_cloudfront::operation::list_distributions::ListDistributionsOutput;
use aws_sdk_cloudfront::types::{
    DistributionConfig, DistributionConfigWithTags, DistributionSummary, Tag, TagKeys, Tags,
};
use serde_json::Value;

use super::config::{distribution_config, props_of};
use super::{DISTRIBUTION, SERVICE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass};
use crate::aws::tags::{
    claim_taken, owned_items, read_each, release_each, Ownership, Tags as TagList, DIGEST_TAG,
};
use crate::aws::{created, hex_digest, pages, Scope};
use crate::engine::{
    FieldChange, Handler, Kind, Observed, Observer, Readiness, Resolved, Selector,
};

/// The caller reference of the stack's distribution: the same for every create of it, so a
/// create repeated after a crash is refused as `DistributionAlreadyExists` and the
/// distribution found instead of made twice. A generation follows it (`-0`, `-1`, ...): a
/// reference whose distribution was deleted (the CDN removed and declared again, a stack of
/// the CLI destroyed and applied again) is not taken twice.
fn caller_reference(scope: &Scope, node: &Resolved, generation: u32) -> String {
    let base = hex_digest(&format!("{}|{}", scope.stack.uid, node.id));
    format!("{}-{generation}", &base[..32])
}

/// How many generations of caller references a distribution goes through.
const GENERATIONS: u32 = 32;

/// The tag that records the origin access control the S3 origins were given: CloudFront does
/// not report it back everywhere.
fn recorded_access(node: &Resolved) -> String {
    node.props
        .get("origins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o["accessControl"].as_str())
        .find(|a| !a.is_empty())
        .map(|a| format!("accessControl={a}"))
        .unwrap_or_default()
}

fn access_from_tags(tags: &TagList) -> Option<String> {
    tags.iter()
        .find(|(k, _)| k == DIGEST_TAG)
        .and_then(|(_, v)| v.strip_prefix("accessControl="))
        .map(str::to_owned)
}

async fn read_tags(scope: &Scope, arns: Vec<String>) -> Result<HashMap<String, TagList>, AwsError> {
    read_each(arns, |arn| async move {
        let r = scope
            .api
            .call(SERVICE, "ListTagsForResource", Effect::Read, || {
                scope
                    .cloudfront
                    .list_tags_for_resource()
                    .resource(&arn)
                    .send()
            })
            .await?;
        Ok(r.tags()
            .map(|t| t.items())
            .unwrap_or_default()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    })
    .await
}

/// A distribution's configuration and the ETag to send back with a change of it; `None` when
/// it is gone.
async fn read_config(
    scope: &Scope,
    id: &str,
) -> Result<Option<(DistributionConfig, String)>, AwsError> {
    let r = scope
        .api
        .call(SERVICE, "GetDistributionConfig", Effect::Read, || {
            scope.cloudfront.get_distribution_config().id(id).send()
        })
        .await;
    match r {
        Ok(r) => Ok(r
            .distribution_config()
            .cloned()
            .map(|c| (c, r.e_tag().unwrap_or_default().to_owned()))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The observation of a distribution from its configuration and what the listing says.
fn observed(
    scope: &Scope,
    id: &str,
    arn: &str,
    domain: &str,
    status: &str,
    config: &DistributionConfig,
    o: Ownership,
) -> Observed {
    let tags = scope.api.tags.get(arn).unwrap_or_default();
    let access = access_from_tags(&tags);
    let mut out = Observed::new(DISTRIBUTION, o.stack, o.role, id).owner(o.owner);
    if let Value::Object(props) = props_of(config, access.as_deref()) {
        out.props.extend(props);
    }
    let readiness = match config.enabled() {
        // Served as soon as it exists; `Deployed` is reported, not waited for.
        true => Readiness::Ready,
        false => Readiness::Deleting(format!("disabled, {status}")),
    };
    // Deleted before the origin access control and the buckets it reads.
    let refs: Vec<String> = out
        .props
        .get("origins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|o| {
            let bucket = o["domain"]
                .as_str()
                .and_then(|d| d.split_once(".s3."))
                .map(|(b, _)| b.to_owned());
            let access = o["accessControl"].as_str().map(str::to_owned);
            bucket.into_iter().chain(access)
        })
        .collect();
    out.refs(refs)
        .prop("arn", arn)
        .prop("domainName", domain)
        .prop("status", status)
        .readiness(readiness)
}

pub struct DistributionObserver;

#[async_trait]
impl Observer<Scope> for DistributionObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[DISTRIBUTION]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let listed: Vec<DistributionSummary> = pages(
            scope,
            SERVICE,
            "ListDistributions",
            |marker| {
                scope
                    .cloudfront
                    .list_distributions()
                    .set_marker(marker)
                    .send()
            },
            |p: &ListDistributionsOutput| {
                p.distribution_list()
                    .filter(|l| l.is_truncated())
                    .and_then(|l| l.next_marker())
            },
        )
        .await?
        .iter()
        .flat_map(|p| {
            p.distribution_list()
                .map(|l| l.items().to_vec())
                .unwrap_or_default()
        })
        .collect();
        let owned = owned_items(
            scope,
            selector,
            listed,
            |d| Some(d.arn()),
            |arns| read_tags(scope, arns),
        )
        .await?;
        let mut out = Vec::new();
        for (d, o) in owned {
            if let Some((config, _)) = read_config(scope, d.id()).await? {
                out.push(observed(
                    scope,
                    d.id(),
                    d.arn(),
                    d.domain_name(),
                    d.status(),
                    &config,
                    o,
                ));
            }
        }
        Ok(out)
    }
}

pub struct DistributionHandler;

fn props_value(node: &Resolved) -> Value {
    Value::Object(node.props.clone().into_iter().collect())
}

fn invalid(e: impl std::fmt::Display) -> AwsError {
    AwsError::invalid(SERVICE, "UpdateDistribution", e)
}

impl DistributionHandler {
    /// Sends `config` as the distribution's, with the ETag read with it.
    async fn put(
        &self,
        scope: &Scope,
        id: &str,
        config: DistributionConfig,
        etag: &str,
    ) -> Result<(), AwsError> {
        scope
            .api
            .call(SERVICE, "UpdateDistribution", Effect::Idempotent, || {
                scope
                    .cloudfront
                    .update_distribution()
                    .id(id)
                    .if_match(etag)
                    .distribution_config(config.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn record_access(
        &self,
        scope: &Scope,
        node: &Resolved,
        arn: &str,
    ) -> Result<(), AwsError> {
        let value = recorded_access(node);
        let mut tags = scope.api.tags.get(arn).unwrap_or_default();
        if access_from_tags(&tags).as_deref() == value.strip_prefix("accessControl=") {
            return Ok(());
        }
        let tag = Tag::builder()
            .key(DIGEST_TAG)
            .value(&value)
            .build()
            .map_err(invalid)?;
        scope
            .api
            .call(SERVICE, "TagResource", Effect::Idempotent, || {
                scope
                    .cloudfront
                    .tag_resource()
                    .resource(arn)
                    .tags(Tags::builder().items(tag.clone()).build())
                    .send()
            })
            .await?;
        tags.retain(|(k, _)| k != DIGEST_TAG);
        tags.push((DIGEST_TAG.to_owned(), value));
        scope.api.tags.put(arn, tags);
        Ok(())
    }

    /// The distribution a repeated caller reference names, when its tags say it is this
    /// owner's: brought to the desired configuration. `None` when none has it any more.
    async fn adopt(
        &self,
        scope: &Scope,
        node: &Resolved,
        reference: &str,
        taken: &AwsError,
    ) -> Result<Option<Observed>, AwsError> {
        let listed = pages(
            scope,
            SERVICE,
            "ListDistributions",
            |marker| {
                scope
                    .cloudfront
                    .list_distributions()
                    .set_marker(marker)
                    .send()
            },
            |p: &ListDistributionsOutput| {
                p.distribution_list()
                    .filter(|l| l.is_truncated())
                    .and_then(|l| l.next_marker())
            },
        )
        .await?;
        for d in listed.iter().flat_map(|p| {
            p.distribution_list()
                .map(|l| l.items().to_vec())
                .unwrap_or_default()
        }) {
            let Some((config, etag)) = read_config(scope, d.id()).await? else {
                continue;
            };
            if config.caller_reference() != reference {
                continue;
            }
            let tags = read_tags(scope, vec![d.arn().to_owned()]).await?;
            claim_taken(
                scope,
                tags.get(d.arn()),
                taken,
                &format!("the distribution {}", d.id()),
            )?;
            if let Some(t) = tags.get(d.arn()) {
                scope.api.tags.put(d.arn(), t.clone());
            }
            let wanted =
                distribution_config(&props_value(node), reference, true).map_err(invalid)?;
            self.put(scope, d.id(), wanted, &etag).await?;
            self.record_access(scope, node, d.arn()).await?;
            return Ok(Some(
                created(scope, node, d.id())
                    .prop("arn", d.arn())
                    .prop("domainName", d.domain_name()),
            ));
        }
        Ok(None)
    }
}

#[async_trait]
impl Handler<Scope> for DistributionHandler {
    fn kind(&self) -> Kind {
        DISTRIBUTION
    }

    fn mutable(&self) -> &'static [&'static str] {
        &[
            "origins",
            "defaultBehavior",
            "behaviors",
            "aliases",
            "certificate",
            "priceClass",
            "defaultRootObject",
            "errorResponses",
            "comment",
        ]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let mut all = scope.tags(node);
        all.push((DIGEST_TAG.to_owned(), recorded_access(node)));
        let tags: Vec<Tag> = all
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        for generation in 0..GENERATIONS {
            let reference = caller_reference(scope, node, generation);
            let config =
                distribution_config(&props_value(node), &reference, true).map_err(invalid)?;
            let with_tags = DistributionConfigWithTags::builder()
                .distribution_config(config)
                .tags(Tags::builder().set_items(Some(tags.clone())).build())
                .build();
            let made = scope
                .api
                .call(
                    SERVICE,
                    "CreateDistributionWithTags",
                    Effect::Idempotent,
                    || {
                        scope
                            .cloudfront
                            .create_distribution_with_tags()
                            .distribution_config_with_tags(with_tags.clone())
                            .send()
                    },
                )
                .await;
            let d = match made {
                Ok(out) => out.distribution().cloned(),
                Err(e) if e.code == "DistributionAlreadyExists" => {
                    match self.adopt(scope, node, &reference, &e).await? {
                        Some(found) => return Ok(found),
                        // Its distribution is gone: the next generation.
                        None => continue,
                    }
                }
                Err(e) => return Err(e),
            };
            let (id, arn, domain) = d
                .as_ref()
                .map(|d| (d.id(), d.arn(), d.domain_name()))
                .unwrap_or_default();
            scope.api.tags.put(arn, all);
            return Ok(created(scope, node, id)
                .prop("arn", arn)
                .prop("domainName", domain));
        }
        Err(AwsError::new(
            SERVICE,
            "CreateDistributionWithTags",
            "DistributionAlreadyExists",
            format!("every caller reference of {} was taken", node.id),
            ErrorClass::Permanent,
        ))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let Some((config, etag)) = read_config(scope, &current.id).await? else {
            return Err(AwsError::new(
                SERVICE,
                "GetDistributionConfig",
                "NoSuchDistribution",
                format!("the distribution {} is gone", current.id),
                ErrorClass::NotFound,
            ));
        };
        let wanted = distribution_config(&props_value(node), config.caller_reference(), true)
            .map_err(invalid)?;
        self.put(scope, &current.id, wanted, &etag).await?;
        self.record_access(scope, node, current.str("arn").unwrap_or_default())
            .await?;
        Ok(None)
    }

    /// Disables the distribution; [`Handler::refresh`] deletes it once that is deployed.
    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let Some((config, etag)) = read_config(scope, &current.id).await? else {
            return Ok(());
        };
        if !config.enabled() {
            return Ok(());
        }
        let mut disabled = config.clone();
        disabled.enabled = false;
        self.put(scope, &current.id, disabled, &etag).await
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
            .call(SERVICE, "GetDistribution", Effect::Read, || {
                scope.cloudfront.get_distribution().id(&current.id).send()
            })
            .await;
        let (d, etag) = match read {
            Ok(r) => match r.distribution().cloned() {
                Some(d) => (d, r.e_tag().unwrap_or_default().to_owned()),
                None => return Ok(None),
            },
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let enabled = d.distribution_config().is_some_and(|c| c.enabled());
        let mut o = current.clone();
        o.props.insert("status".into(), Value::from(d.status()));
        if enabled {
            o.readiness = Readiness::Ready;
            return Ok(Some(o));
        }
        if d.status() != "Deployed" {
            o.readiness = Readiness::Deleting(format!("disabled, {}", d.status()));
            return Ok(Some(o));
        }
        // The disabled configuration is out everywhere: now it may go.
        let deleted = scope
            .api
            .call(SERVICE, "DeleteDistribution", Effect::Idempotent, || {
                scope
                    .cloudfront
                    .delete_distribution()
                    .id(&current.id)
                    .if_match(&etag)
                    .send()
            })
            .await;
        match deleted {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        scope
            .api
            .tags
            .forget(current.str("arn").unwrap_or_default());
        Ok(None)
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        release_each(
            scope,
            resources,
            crate::aws::tags::arn_of,
            |o, keys| async move {
                scope
                    .api
                    .call(SERVICE, "UntagResource", Effect::Idempotent, || {
                        scope
                            .cloudfront
                            .untag_resource()
                            .resource(crate::aws::tags::arn_of(&o))
                            .tag_keys(TagKeys::builder().set_items(Some(keys.clone())).build())
                            .send()
                    })
                    .await
                    .map(|_| ())
            },
        )
        .await
    }
}
