//! The stack's origin access control: CloudFront signs its requests to the stack's buckets
//! with it. Origin access controls carry no tags: the ownership tags' values are written into
//! the description, and the name is derived from the stack and its owner.

use async_trait::async_trait;
use aws_sdk_cloudfront::operation::list_origin_access_controls::ListOriginAccessControlsOutput;
use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, OriginAccessControlSummary,
};

use super::{ORIGIN_ACCESS_CONTROL, SERVICE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass};
use crate::aws::tags::{claim_taken, ownership, Ownership};
use crate::aws::{created, pages, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{Handler, Kind, Observed, Observer, Resolved, Selector};

/// The description that stands in for tags: `key=value` pairs separated by spaces.
fn description(scope: &Scope, node: &Resolved) -> String {
    format!(
        "{STACK_TAG}={} {COMPONENT_TAG}={} {OWNER_TAG}={}",
        scope.stack.id(),
        node.component,
        scope.stack.uid
    )
}

/// The ownership a description states.
fn owner_of(description: &str) -> Option<Ownership> {
    ownership(description.split(' ').filter_map(|kv| kv.split_once('=')))
}

async fn list(scope: &Scope) -> Result<Vec<OriginAccessControlSummary>, AwsError> {
    Ok(pages(
        scope,
        SERVICE,
        "ListOriginAccessControls",
        |marker| {
            scope
                .cloudfront
                .list_origin_access_controls()
                .set_marker(marker)
                .send()
        },
        |p: &ListOriginAccessControlsOutput| {
            p.origin_access_control_list()
                .filter(|l| l.is_truncated())
                .and_then(|l| l.next_marker())
        },
    )
    .await?
    .iter()
    .flat_map(|p| {
        p.origin_access_control_list()
            .map(|l| l.items().to_vec())
            .unwrap_or_default()
    })
    .collect())
}

pub struct AccessControlObserver;

#[async_trait]
impl Observer<Scope> for AccessControlObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[ORIGIN_ACCESS_CONTROL]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        Ok(list(scope)
            .await?
            .iter()
            .filter_map(|c| {
                let o = owner_of(c.description())?;
                selector.admits(&o.stack).then(|| {
                    Observed::new(ORIGIN_ACCESS_CONTROL, o.stack, o.role, c.id())
                        .owner(o.owner)
                        .prop("name", c.name())
                })
            })
            .collect())
    }
}

pub struct AccessControlHandler;

#[async_trait]
impl Handler<Scope> for AccessControlHandler {
    fn kind(&self) -> Kind {
        ORIGIN_ACCESS_CONTROL
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let name = node.req("name");
        let config = OriginAccessControlConfig::builder()
            .name(name)
            .description(description(scope, node))
            .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
            .signing_behavior(OriginAccessControlSigningBehaviors::Always)
            .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
            .build()
            .map_err(|e| AwsError::invalid(SERVICE, "CreateOriginAccessControl", e))?;
        let made = scope
            .api
            .call(
                SERVICE,
                "CreateOriginAccessControl",
                Effect::Idempotent,
                || {
                    scope
                        .cloudfront
                        .create_origin_access_control()
                        .origin_access_control_config(config.clone())
                        .send()
                },
            )
            .await;
        let id = match made {
            Ok(out) => out
                .origin_access_control()
                .map(|c| c.id().to_owned())
                .unwrap_or_default(),
            // The name carries the owner's hash: made by a create whose answer was lost,
            // unless its description names another owner.
            Err(e) if e.code == "OriginAccessControlAlreadyExists" => {
                let found = list(scope).await?;
                let Some(c) = found.iter().find(|c| c.name() == name) else {
                    return Err(e);
                };
                let tags: Vec<(String, String)> = c
                    .description()
                    .split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                claim_taken(
                    scope,
                    Some(&tags),
                    &e,
                    &format!("the origin access control {name}"),
                )?;
                c.id().to_owned()
            }
            Err(e) => return Err(e),
        };
        Ok(created(scope, node, &id))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let read = scope
            .api
            .call(SERVICE, "GetOriginAccessControl", Effect::Read, || {
                scope
                    .cloudfront
                    .get_origin_access_control()
                    .id(&current.id)
                    .send()
            })
            .await;
        let etag = match read {
            Ok(r) => r.e_tag().unwrap_or_default().to_owned(),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let deleted = scope
            .api
            .call(
                SERVICE,
                "DeleteOriginAccessControl",
                Effect::Idempotent,
                || {
                    scope
                        .cloudfront
                        .delete_origin_access_control()
                        .id(&current.id)
                        .if_match(&etag)
                        .send()
                },
            )
            .await;
        match deleted {
            // Still named by a distribution being deleted: later.
            Err(e) if e.code == "OriginAccessControlInUse" => Err(AwsError::new(
                SERVICE,
                "DeleteOriginAccessControl",
                e.code.clone(),
                e.message.clone(),
                ErrorClass::DependencyViolation,
            )),
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        // The description is all the ownership there is: it is rewritten without it.
        for o in resources {
            let read = scope
                .api
                .call(SERVICE, "GetOriginAccessControl", Effect::Read, || {
                    scope
                        .cloudfront
                        .get_origin_access_control()
                        .id(&o.id)
                        .send()
                })
                .await?;
            let etag = read.e_tag().unwrap_or_default().to_owned();
            let Some(mut config) = read
                .origin_access_control()
                .and_then(|c| c.origin_access_control_config())
                .cloned()
            else {
                continue;
            };
            config.description = Some(format!("released by {}", scope.stack.id()));
            scope
                .api
                .call(
                    SERVICE,
                    "UpdateOriginAccessControl",
                    Effect::Idempotent,
                    || {
                        scope
                            .cloudfront
                            .update_origin_access_control()
                            .id(&o.id)
                            .if_match(&etag)
                            .origin_access_control_config(config.clone())
                            .send()
                    },
                )
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_states_the_ownership() {
        let o = owner_of(
            "webstack.io/stack=ns/shop webstack.io/component=cdn/cdn webstack.io/owner=u1",
        )
        .unwrap();
        assert_eq!(o.stack, "ns/shop");
        assert_eq!(o.role, "cdn");
        assert_eq!(o.owner.as_deref(), Some("u1"));
        assert!(owner_of("made by hand").is_none());
    }
}
