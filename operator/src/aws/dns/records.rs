//! Records: each written with its ownership record in one change batch (`UPSERT` both, after
//! comparing: a repeated create is no error in Route 53's emulator, and `UPSERT` makes the
//! same true in AWS), deleted the same way with what Route 53 holds at that moment.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::json;

use super::{alias, RECORD, SERVICE};
use crate::aws::client::Effect;
use crate::aws::error::AwsError;
use crate::aws::tags::{ownership, Ownership};
use crate::aws::{created, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{FieldChange, Handler, Kind, Observed, Resolved, Selector};

/// The name of the ownership record of the record `name` of type `type_`.
fn marker_name(name: &str, type_: &str) -> String {
    format!("_webstack-{}.{name}", type_.to_ascii_lowercase())
}

/// The ownership record's value: the ownership tags, as TXT strings of at most 255
/// characters each (a TXT record's strings are read back as one text).
fn marker_value(scope: &Scope, component: &str) -> String {
    let text = format!(
        "{STACK_TAG}={} {COMPONENT_TAG}={component} {OWNER_TAG}={}",
        scope.stack.id(),
        scope.stack.uid
    );
    txt_strings(&text)
}

/// A text as TXT strings of at most 255 characters each.
fn txt_strings(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of a TXT value: its quoted strings joined.
fn marker_text(value: &str) -> String {
    value
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect()
}

/// Names as Route 53 reports them: lower case, with the trailing dot, `*` unescaped.
fn canonical(name: &str) -> String {
    let n = name.replace("\\052", "*").to_ascii_lowercase();
    if n.ends_with('.') {
        n
    } else {
        format!("{n}.")
    }
}

fn record_id(zone: &str, name: &str, type_: &str) -> String {
    format!("{zone}/{}/{type_}", canonical(name))
}

/// Every record set of a zone.
async fn record_sets(scope: &Scope, zone: &str) -> Result<Vec<ResourceRecordSet>, AwsError> {
    let mut out = Vec::new();
    let mut next: Option<(String, RrType)> = None;
    loop {
        let page = scope
            .api
            .call(SERVICE, "ListResourceRecordSets", Effect::Read, || {
                scope
                    .route53
                    .list_resource_record_sets()
                    .hosted_zone_id(zone)
                    .set_start_record_name(next.as_ref().map(|(n, _)| n.clone()))
                    .set_start_record_type(next.as_ref().map(|(_, t)| t.clone()))
                    .send()
            })
            .await?;
        out.extend(page.resource_record_sets().iter().cloned());
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(n), Some(t)) => next = Some((n.to_owned(), t.clone())),
            _ => return Ok(out),
        }
    }
}

/// The records of `zone` that ownership records say belong to a stack the selector admits.
pub(super) async fn observe_records(
    scope: &Scope,
    selector: &Selector,
    zone: &str,
) -> Result<Vec<Observed>, AwsError> {
    let sets = record_sets(scope, zone).await?;
    // The ownership records by name.
    let owners: HashMap<String, Ownership> = sets
        .iter()
        .filter(|m| m.r#type() == &RrType::Txt && m.name().starts_with("_webstack-"))
        .filter_map(|m| {
            let owner = m.resource_records().iter().find_map(|r| {
                let text = marker_text(r.value());
                ownership(text.split(' ').filter_map(|kv| kv.split_once('=')))
            })?;
            Some((canonical(m.name()), owner))
        })
        .collect();
    let mut out = Vec::new();
    for set in &sets {
        let name = canonical(set.name());
        let type_ = set.r#type().as_str();
        let Some(owner) = owners.get(&canonical(&marker_name(&name, type_))).cloned() else {
            continue;
        };
        if !selector.admits(&owner.stack) {
            continue;
        }
        let mut o = Observed::new(
            RECORD,
            owner.stack,
            owner.role,
            record_id(zone, &name, type_),
        )
        .owner(owner.owner)
        .refs([zone.to_owned()])
        .prop("zone", zone)
        .prop("name", name.as_str())
        .prop("type", type_);
        match set.alias_target() {
            Some(a) => o = o.prop("alias", alias(a.dns_name(), a.hosted_zone_id())),
            None => {
                let values: Vec<&str> = set.resource_records().iter().map(|r| r.value()).collect();
                o = o.prop("values", json!(values)).prop("ttl", set.ttl());
            }
        }
        out.push(o);
    }
    Ok(out)
}

fn invalid(e: impl std::fmt::Display) -> AwsError {
    AwsError::invalid(SERVICE, "ChangeResourceRecordSets", e)
}

/// The record set a node describes.
fn record_set(node: &Resolved) -> Result<ResourceRecordSet, AwsError> {
    let mut set = ResourceRecordSet::builder()
        .name(node.req("name"))
        .r#type(RrType::from(node.req("type")));
    match node.props.get("alias").filter(|a| !a.is_null()) {
        Some(a) => {
            set = set.alias_target(
                AliasTarget::builder()
                    .dns_name(a["dnsName"].as_str().unwrap_or_default())
                    .hosted_zone_id(a["zoneId"].as_str().unwrap_or_default())
                    .evaluate_target_health(false)
                    .build()
                    .map_err(invalid)?,
            );
        }
        None => {
            for v in node.strs("values") {
                set = set.resource_records(
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .map_err(invalid)?,
                );
            }
            set = set.ttl(node.i64("ttl").unwrap_or(300));
        }
    }
    set.build().map_err(invalid)
}

fn marker_set(scope: &Scope, node: &Resolved) -> Result<ResourceRecordSet, AwsError> {
    ResourceRecordSet::builder()
        .name(marker_name(&canonical(node.req("name")), node.req("type")))
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value(marker_value(scope, &node.component))
                .build()
                .map_err(invalid)?,
        )
        .build()
        .map_err(invalid)
}

async fn change(
    scope: &Scope,
    zone: &str,
    changes: Vec<(ChangeAction, ResourceRecordSet)>,
) -> Result<(), AwsError> {
    let batch = ChangeBatch::builder()
        .set_changes(Some(
            changes
                .into_iter()
                .map(|(action, set)| {
                    Change::builder()
                        .action(action)
                        .resource_record_set(set)
                        .build()
                        .map_err(invalid)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ))
        .build()
        .map_err(invalid)?;
    scope
        .api
        .call(
            SERVICE,
            "ChangeResourceRecordSets",
            Effect::Idempotent,
            || {
                scope
                    .route53
                    .change_resource_record_sets()
                    .hosted_zone_id(zone)
                    .change_batch(batch.clone())
                    .send()
            },
        )
        .await
        .map(|_| ())
}

pub struct RecordHandler;

impl RecordHandler {
    async fn write(
        &self,
        scope: &Scope,
        node: &Resolved,
        action: ChangeAction,
    ) -> Result<(), AwsError> {
        change(
            scope,
            node.req("zone"),
            vec![
                (action.clone(), record_set(node)?),
                (action, marker_set(scope, node)?),
            ],
        )
        .await
    }

    /// Who a record of the zone belongs to, by its ownership record.
    async fn owner_of(
        &self,
        scope: &Scope,
        node: &Resolved,
    ) -> Result<Option<Ownership>, AwsError> {
        let marker = canonical(&marker_name(&canonical(node.req("name")), node.req("type")));
        Ok(record_sets(scope, node.req("zone"))
            .await?
            .iter()
            .filter(|m| m.r#type() == &RrType::Txt && canonical(m.name()) == marker)
            .flat_map(|m| m.resource_records())
            .find_map(|r| {
                let text = marker_text(r.value());
                ownership(text.split(' ').filter_map(|kv| kv.split_once('=')))
            }))
    }
}

#[async_trait]
impl Handler<Scope> for RecordHandler {
    fn kind(&self) -> Kind {
        RECORD
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["alias", "values", "ttl"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        // A record of that name that somebody else wrote is not taken over: CREATE fails for
        // it, and only one whose ownership record names this owner (a create whose answer was
        // lost) is written again.
        match self.write(scope, node, ChangeAction::Create).await {
            Ok(()) => {}
            Err(e) if e.code == "InvalidChangeBatch" && e.message.contains("already exists") => {
                let mine = self
                    .owner_of(scope, node)
                    .await?
                    .is_some_and(|o| o.owner.as_deref() == Some(scope.stack.uid.as_str()));
                if !mine {
                    return Err(AwsError::new(
                        SERVICE,
                        "ChangeResourceRecordSets",
                        e.code.clone(),
                        format!(
                            "the record {} {} exists and is not this stack's: delete it, or leave the name out of spec.dns.records",
                            canonical(node.req("name")),
                            node.req("type")
                        ),
                        crate::aws::error::ErrorClass::Permanent,
                    ));
                }
                self.write(scope, node, ChangeAction::Upsert).await?;
            }
            Err(e) => return Err(e),
        }
        let zone = node.req("zone");
        let mut o = created(
            scope,
            node,
            &record_id(zone, node.req("name"), node.req("type")),
        )
        .refs([zone.to_owned()]);
        o.props
            .insert("name".into(), json!(canonical(node.req("name"))));
        if let Some(a) = node.props.get("alias").filter(|a| !a.is_null()) {
            o.props.insert(
                "alias".into(),
                alias(
                    a["dnsName"].as_str().unwrap_or_default(),
                    a["zoneId"].as_str().unwrap_or_default(),
                ),
            );
        }
        Ok(o)
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        _current: &Observed,
        _changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.write(scope, node, ChangeAction::Upsert).await?;
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        // A deletion names the record exactly as it is: read it (and its ownership record).
        let zone = current.str("zone").unwrap_or_default();
        let name = canonical(current.str("name").unwrap_or_default());
        let type_ = current.str("type").unwrap_or_default();
        let marker = canonical(&marker_name(&name, type_));
        let sets = match record_sets(scope, zone).await {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other?,
        };
        let doomed: Vec<(ChangeAction, ResourceRecordSet)> = sets
            .into_iter()
            .filter(|s| {
                let n = canonical(s.name());
                (n == name && s.r#type().as_str() == type_)
                    || (n == marker && s.r#type() == &RrType::Txt)
            })
            .map(|s| (ChangeAction::Delete, s))
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        match change(scope, zone, doomed).await {
            // Deleted by the same batch sent before, whose answer was lost.
            Err(e) if e.code == "InvalidChangeBatch" && e.message.contains("not found") => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_as_route_53_reports_them() {
        assert_eq!(canonical("WWW.Example.com"), "www.example.com.");
        assert_eq!(canonical("\\052.example.com."), "*.example.com.");
        assert_eq!(
            marker_name("www.example.com.", "AAAA"),
            "_webstack-aaaa.www.example.com."
        );
    }

    #[test]
    fn long_ownership_texts_are_split_into_strings_and_read_back_whole() {
        let text = "x".repeat(300);
        let value = txt_strings(&text);
        assert_eq!(value.matches('"').count(), 4);
        assert_eq!(marker_text(&value), text);
        assert_eq!(marker_text("\"a=b c=d\""), "a=b c=d");
    }

    #[test]
    fn an_ownership_record_states_the_stack() {
        let text = "webstack.io/stack=ns/shop webstack.io/component=dns/www-a webstack.io/owner=u";
        let o = ownership(text.split(' ').filter_map(|kv| kv.split_once('='))).unwrap();
        assert_eq!((o.stack.as_str(), o.role.as_str()), ("ns/shop", "www-a"));
    }
}
