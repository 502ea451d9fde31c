//! Hosted zones and the observation of the whole area: the stack's zones (one listing, tags
//! read ten zones a call and cached), then the records of those zones and of the existing zone
//! the spec names, with the ownership records that say which are the stack's.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use aws_sdk_route53::operation::list_hosted_zones::ListHostedZonesOutput;
use aws_sdk_route53::types::{HostedZone, Tag, TagResourceType};

use super::records::observe_records;
use super::{HOSTED_ZONE, SERVICE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass, OrAbsent};
use crate::aws::tags::{claim_taken, owned_items, Tags, OWNERSHIP_TAGS};
use crate::aws::{created, hex_digest, pages, Scope};
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

/// `/hostedzone/Z123` -> `Z123`.
pub(super) fn short(id: &str) -> &str {
    id.trim_start_matches("/hostedzone/")
}

/// The key a zone's tags are cached under.
fn key(id: &str) -> String {
    format!("route53:hostedzone/{}", short(id))
}

/// What the caller references of the stack's zone start with: the same for every create of
/// it. A generation follows (`-0`, `-1`, ...): Route 53 never takes a reference twice, even
/// once its zone is deleted.
fn caller_reference(scope: &Scope, node: &Resolved) -> String {
    hex_digest(&format!("{}|{}", scope.stack.uid, node.id))[..32].to_owned()
}

/// How many generations of caller references a zone goes through.
const GENERATIONS: u32 = 32;

/// A zone's name servers never change: read once per process.
fn name_servers_cache() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

async fn name_servers(scope: &Scope, id: &str) -> Result<Vec<String>, AwsError> {
    if let Some(found) = name_servers_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
    {
        return Ok(found.clone());
    }
    let zone = scope
        .api
        .call(SERVICE, "GetHostedZone", Effect::Read, || {
            scope.route53.get_hosted_zone().id(id).send()
        })
        .await?;
    let servers: Vec<String> = zone
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    name_servers_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_owned(), servers.clone());
    Ok(servers)
}

/// Route 53's tag reader: ten zones a call.
async fn read_tags(scope: &Scope, keys: Vec<String>) -> Result<HashMap<String, Tags>, AwsError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(10) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|k| k.trim_start_matches("route53:hostedzone/").to_owned())
            .collect();
        let r = scope
            .api
            .call(SERVICE, "ListTagsForResources", Effect::Read, || {
                scope
                    .route53
                    .list_tags_for_resources()
                    .resource_type(TagResourceType::Hostedzone)
                    .set_resource_ids(Some(ids.clone()))
                    .send()
            })
            .await?;
        for set in r.resource_tag_sets() {
            let tags = set
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            out.insert(key(set.resource_id().unwrap_or_default()), tags);
        }
    }
    Ok(out)
}

async fn zones(scope: &Scope) -> Result<Vec<HostedZone>, AwsError> {
    Ok(pages(
        scope,
        SERVICE,
        "ListHostedZones",
        |marker| scope.route53.list_hosted_zones().set_marker(marker).send(),
        |p: &ListHostedZonesOutput| p.next_marker().filter(|_| p.is_truncated()),
    )
    .await?
    .iter()
    .flat_map(|p| p.hosted_zones().to_vec())
    .collect())
}

/// The public zones named `name` (`example.com`), by id.
async fn zones_named(scope: &Scope, name: &str) -> Result<Vec<HostedZone>, AwsError> {
    let wanted = format!("{}.", name.trim_end_matches('.'));
    let r = scope
        .api
        .call(SERVICE, "ListHostedZonesByName", Effect::Read, || {
            scope
                .route53
                .list_hosted_zones_by_name()
                .dns_name(&wanted)
                .send()
        })
        .await?;
    Ok(r.hosted_zones()
        .iter()
        .filter(|z| z.name() == wanted && !z.config().is_some_and(|c| c.private_zone()))
        .cloned()
        .collect())
}

/// The id of the existing public zone `name`, which a stack that does not create its zone
/// writes its records into; `None` when the account has none of that name.
pub async fn existing_zone(scope: &Scope, name: &str) -> Result<Option<String>, AwsError> {
    Ok(zones_named(scope, name)
        .await?
        .first()
        .map(|z| short(z.id()).to_owned()))
}

pub struct DnsObserver;

#[async_trait]
impl Observer<Scope> for DnsObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[HOSTED_ZONE, super::RECORD]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let listed: Vec<(String, HostedZone)> = zones(scope)
            .await?
            .into_iter()
            .map(|z| (key(z.id()), z))
            .collect();
        let owned = owned_items(
            scope,
            selector,
            listed,
            |(k, _)| Some(k.as_str()),
            |keys| read_tags(scope, keys),
        )
        .await?;
        let mut out = Vec::new();
        let mut record_zones: Vec<String> = Vec::new();
        for ((_, z), o) in owned {
            let id = short(z.id()).to_owned();
            let servers = name_servers(scope, &id).await?;
            out.push(
                Observed::new(HOSTED_ZONE, o.stack, o.role, id.as_str())
                    .owner(o.owner)
                    .prop("name", z.name().trim_end_matches('.'))
                    .prop("nameServers", servers),
            );
            record_zones.push(id);
        }
        for existing in scope.existing_zone.iter().chain(&scope.observed_zones) {
            if !record_zones.contains(existing) {
                record_zones.push(existing.clone());
            }
        }
        for zone in record_zones {
            out.extend(observe_records(scope, selector, &zone).await?);
        }
        Ok(out)
    }
}

pub struct ZoneHandler;

impl ZoneHandler {
    /// Tags the zone, ten tags a call (Route 53's limit), the ownership tags first.
    async fn tag(&self, scope: &Scope, node: &Resolved, id: &str) -> Result<(), AwsError> {
        let tags = scope.tags(node);
        let mut add: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        add.sort_by_key(|t| !t.key().is_some_and(|k| OWNERSHIP_TAGS.contains(&k)));
        for chunk in add.chunks(10) {
            scope
                .api
                .call(SERVICE, "ChangeTagsForResource", Effect::Idempotent, || {
                    scope
                        .route53
                        .change_tags_for_resource()
                        .resource_type(TagResourceType::Hostedzone)
                        .resource_id(id)
                        .set_add_tags(Some(chunk.to_vec()))
                        .send()
                })
                .await?;
        }
        scope.api.tags.put(&key(id), tags);
        Ok(())
    }
}

impl ZoneHandler {
    /// Creates the zone under the first caller reference not taken yet; a reference taken by
    /// a create whose answer was lost names the zone it made.
    async fn make(&self, scope: &Scope, name: &str, base: &str) -> Result<String, AwsError> {
        for generation in 0..GENERATIONS {
            let reference = format!("{base}-{generation}");
            let made = scope
                .api
                .call(SERVICE, "CreateHostedZone", Effect::Idempotent, || {
                    scope
                        .route53
                        .create_hosted_zone()
                        .name(name)
                        .caller_reference(&reference)
                        .send()
                })
                .await;
            let made = match made {
                Ok(made) => made,
                Err(e) if e.code == "HostedZoneAlreadyExists" => {
                    let lost = zones_named(scope, name)
                        .await?
                        .into_iter()
                        .find(|z| z.caller_reference() == reference);
                    match lost {
                        Some(z) => return Ok(short(z.id()).to_owned()),
                        None => continue,
                    }
                }
                Err(e) => return Err(e),
            };
            let id = made
                .hosted_zone()
                .map(|z| short(z.id()).to_owned())
                .unwrap_or_default();
            if let Some(d) = made.delegation_set() {
                name_servers_cache()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), d.name_servers().to_vec());
            }
            return Ok(id);
        }
        Err(AwsError::new(
            SERVICE,
            "CreateHostedZone",
            "HostedZoneAlreadyExists",
            format!("every caller reference of the zone {name} was taken"),
            ErrorClass::Permanent,
        ))
    }
}

#[async_trait]
impl Handler<Scope> for ZoneHandler {
    fn kind(&self) -> Kind {
        HOSTED_ZONE
    }

    /// A zone's name servers are what the registrar points at: it goes with the stack only.
    fn holds_data(&self) -> bool {
        true
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let name = node.req("name");
        let reference = caller_reference(scope, node);
        // A zone made by a create whose answer was lost, or left untagged by a crash: found by
        // its name and caller reference (a second create would make a second zone).
        let mut found = None;
        for z in zones_named(scope, name).await? {
            if !z.caller_reference().starts_with(&reference) {
                continue;
            }
            let id = short(z.id()).to_owned();
            let tags = read_tags(scope, vec![key(&id)]).await?;
            let tags = tags.get(&key(&id));
            if tags.is_some_and(|t| t.iter().any(|(k, _)| k == crate::aws::OWNER_TAG)) {
                let taken = AwsError::new(
                    SERVICE,
                    "CreateHostedZone",
                    "HostedZoneAlreadyExists",
                    "",
                    ErrorClass::Permanent,
                );
                claim_taken(
                    scope,
                    tags,
                    &taken,
                    &format!("the hosted zone {name} ({id})"),
                )?;
            }
            found = Some(id);
        }
        let id = match found {
            Some(id) => id,
            None => self.make(scope, name, &reference).await?,
        };
        self.tag(scope, node, &id).await?;
        let servers = name_servers(scope, &id).await?;
        Ok(created(scope, node, &id).prop("nameServers", servers))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let deleted = scope
            .api
            .call(SERVICE, "DeleteHostedZone", Effect::Idempotent, || {
                scope.route53.delete_hosted_zone().id(&current.id).send()
            })
            .await;
        match deleted {
            Err(e) if e.code == "HostedZoneNotEmpty" => Err(AwsError::new(
                SERVICE,
                "DeleteHostedZone",
                e.code.clone(),
                format!(
                    "the hosted zone {} ({}) holds records the stack did not write: delete them, or set deletionPolicy: Retain to keep the zone",
                    current.str("name").unwrap_or_default(),
                    current.id
                ),
                ErrorClass::Permanent,
            )),
            other => {
                other.or_absent()?;
                scope.api.tags.forget(&key(&current.id));
                Ok(())
            }
        }
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        for o in resources {
            let keys: Vec<String> = OWNERSHIP_TAGS.map(str::to_owned).to_vec();
            scope
                .api
                .call(SERVICE, "ChangeTagsForResource", Effect::Idempotent, || {
                    scope
                        .route53
                        .change_tags_for_resource()
                        .resource_type(TagResourceType::Hostedzone)
                        .resource_id(&o.id)
                        .set_remove_tag_keys(Some(keys.clone()))
                        .send()
                })
                .await?;
            scope.api.tags.forget(&key(&o.id));
        }
        Ok(())
    }
}
