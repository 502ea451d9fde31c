//! A tier's IAM role, with its one inline policy, and the instance profile that hands it to
//! EC2. IAM is global and its listings carry no tags: roles live under the stack's own path
//! (`/webstack/<namespace>/<name>/`), so one listing per type finds exactly the stack's, and
//! each role's tags are read once and cached. A profile belongs to whoever owns its role.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_iam::operation::list_instance_profiles::ListInstanceProfilesOutput;
use aws_sdk_iam::operation::list_roles::ListRolesOutput;
use aws_sdk_iam::types::{Role, Tag};
use serde_json::{json, Value};

use super::{policy_document, DIGEST_TAG, INSTANCE_PROFILE, INSTANCE_ROLE};
use crate::aws::client::Effect;
use crate::aws::error::{AwsError, ErrorClass, OrAbsent};
use crate::aws::tags::{owned_listing, read_each, Ownership, Tags};
use crate::aws::{created, pages, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{digest, Handler, Kind, Observed, Observer, Resolved, Selector};

/// The name of the role's inline policy.
const POLICY: &str = "webstack";

fn path_of(selector: &Selector) -> String {
    match selector {
        Selector::Stack(id) => format!("/webstack/{id}/"),
        Selector::AllStacks => "/webstack/".to_owned(),
    }
}

fn roles_next(o: &ListRolesOutput) -> Option<&str> {
    o.marker().filter(|_| o.is_truncated())
}

fn profiles_next(o: &ListInstanceProfilesOutput) -> Option<&str> {
    o.marker().filter(|_| o.is_truncated())
}

fn pairs(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// The service a trust policy admits (`ec2.amazonaws.com`). IAM returns the document
/// URL-encoded.
fn trusted_service(document: &str) -> String {
    let decoded = percent_decode(document);
    let parsed: Value = serde_json::from_str(&decoded).unwrap_or(Value::Null);
    let statement = match &parsed["Statement"] {
        Value::Array(list) => list.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match &statement["Principal"]["Service"] {
        Value::String(s) => s.clone(),
        Value::Array(list) => list
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The trust policy that lets `service` assume a role.
pub fn trust_policy(service: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

/// IAM's tag reader for [`owned_listing`]: one `ListRoleTags` per role never seen before.
async fn read_role_tags(
    scope: &Scope,
    arns: Vec<String>,
) -> Result<HashMap<String, Tags>, AwsError> {
    read_each(arns, |arn| async move {
        let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
        let r = scope
            .api
            .call("iam", "ListRoleTags", Effect::Read, || {
                scope.iam.list_role_tags().role_name(&name).send()
            })
            .await?;
        Ok(pairs(r.tags()))
    })
    .await
}

fn observed_role(r: &Role, o: &Ownership, digest: Option<&str>) -> Observed {
    Observed::new(
        INSTANCE_ROLE,
        o.stack.clone(),
        o.role.clone(),
        r.role_name(),
    )
    .owner(o.owner.clone())
    .prop("name", r.role_name())
    .prop("path", r.path())
    .prop(
        "service",
        trusted_service(r.assume_role_policy_document().unwrap_or_default()),
    )
    .prop("policy", digest.unwrap_or_default())
    .prop("arn", r.arn())
}

pub struct RoleObserver;

#[async_trait]
impl Observer<Scope> for RoleObserver {
    fn kinds(&self) -> &'static [Kind] {
        &[INSTANCE_ROLE, INSTANCE_PROFILE]
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        let path = path_of(selector);
        let roles: Vec<Role> = pages(
            scope,
            "iam",
            "ListRoles",
            |marker| {
                scope
                    .iam
                    .list_roles()
                    .path_prefix(&path)
                    .set_marker(marker)
                    .send()
            },
            roles_next,
        )
        .await?
        .iter()
        .flat_map(|p| p.roles().iter().cloned())
        .collect();
        let owned = owned_listing(
            scope,
            selector,
            roles,
            |r| Some(r.role_name()),
            |r| Some(r.arn()),
            |arns| read_role_tags(scope, arns),
        )
        .await?;
        let mut out = Vec::new();
        let mut owners: HashMap<String, Ownership> = HashMap::new();
        for (r, o) in &owned {
            let tags = scope.api.tags.get(r.arn()).unwrap_or_default();
            let digest = tags.iter().find(|(k, _)| k == DIGEST_TAG).map(|(_, v)| v);
            out.push(observed_role(r, o, digest.map(String::as_str)));
            owners.insert(r.role_name().to_owned(), o.clone());
        }
        let profiles = pages(
            scope,
            "iam",
            "ListInstanceProfiles",
            |marker| {
                scope
                    .iam
                    .list_instance_profiles()
                    .path_prefix(&path)
                    .set_marker(marker)
                    .send()
            },
            profiles_next,
        )
        .await?;
        for p in profiles.iter().flat_map(|p| p.instance_profiles()) {
            let role = p.roles().first().map(|r| r.role_name()).unwrap_or_default();
            // A profile whose role is gone belongs to the stack of its path; the name says
            // the rest (names carry the owner's hash).
            let o = owners.get(role).cloned().or_else(|| {
                let stack = p
                    .path()
                    .trim_start_matches("/webstack/")
                    .trim_end_matches('/')
                    .to_owned();
                (selector.admits(&stack) && !stack.is_empty()).then(|| Ownership {
                    stack,
                    role: format!("orphan-{}", p.instance_profile_name()),
                    owner: None,
                })
            });
            let Some(o) = o else { continue };
            out.push(
                Observed::new(INSTANCE_PROFILE, o.stack, o.role, p.instance_profile_name())
                    .owner(o.owner)
                    .prop("name", p.instance_profile_name())
                    .prop("path", p.path())
                    .prop("role", role)
                    .prop("arn", p.arn())
                    .refs([role.to_owned()]),
            );
        }
        Ok(out)
    }
}

pub struct RoleHandler;

impl RoleHandler {
    /// Removes the role's inline policy; one that is not there is not an error.
    async fn delete_policy(&self, scope: &Scope, name: &str) -> Result<(), AwsError> {
        scope
            .api
            .call("iam", "DeleteRolePolicy", Effect::Idempotent, || {
                scope
                    .iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(POLICY)
                    .send()
            })
            .await
            .or_absent()
    }

    async fn put_policy(&self, scope: &Scope, node: &Resolved, arn: &str) -> Result<(), AwsError> {
        let policy = node.props.get("policy").cloned().unwrap_or(Value::Null);
        let document = policy_document(&policy).to_string();
        let name = node.req("name");
        if policy.is_null() {
            self.delete_policy(scope, name).await?;
        } else {
            scope
                .api
                .call("iam", "PutRolePolicy", Effect::Idempotent, || {
                    scope
                        .iam
                        .put_role_policy()
                        .role_name(name)
                        .policy_name(POLICY)
                        .policy_document(&document)
                        .send()
                })
                .await?;
        }
        let recorded = digest(&policy);
        let tag = Tag::builder()
            .key(DIGEST_TAG)
            .value(&recorded)
            .build()
            .expect("key and value set");
        scope
            .api
            .call("iam", "TagRole", Effect::Idempotent, || {
                scope
                    .iam
                    .tag_role()
                    .role_name(name)
                    .tags(tag.clone())
                    .send()
            })
            .await?;
        let mut tags = scope.api.tags.get(arn).unwrap_or_default();
        tags.retain(|(k, _)| k != DIGEST_TAG);
        tags.push((DIGEST_TAG.to_owned(), recorded));
        scope.api.tags.put(arn, tags);
        Ok(())
    }
}

#[async_trait]
impl Handler<Scope> for RoleHandler {
    fn kind(&self) -> Kind {
        INSTANCE_ROLE
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["policy"]
    }

    fn digested(&self) -> &'static [&'static str] {
        &["policy"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let tags: Vec<Tag> = scope
            .tags(node)
            .into_iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let name = node.req("name");
        let made = scope
            .api
            .call("iam", "CreateRole", Effect::Create, || {
                scope
                    .iam
                    .create_role()
                    .role_name(name)
                    .path(node.req("path"))
                    .assume_role_policy_document(trust_policy(node.req("service")))
                    .description(format!("Instances of {}", node.component))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await;
        let arn = match made {
            Ok(out) => out.role().map(|r| r.arn().to_owned()).unwrap_or_default(),
            // A role of this name exists: the stack's own, created by a call whose answer was
            // lost (IAM's listings lag behind its writes), or somebody else's.
            Err(e) if e.code == "EntityAlreadyExists" => {
                let existing = scope
                    .api
                    .call("iam", "GetRole", Effect::Read, || {
                        scope.iam.get_role().role_name(name).send()
                    })
                    .await?;
                let role = existing.role().cloned();
                let theirs = role
                    .as_ref()
                    .map(|r| pairs(r.tags()))
                    .unwrap_or_default()
                    .into_iter()
                    .any(|(k, v)| k == OWNER_TAG && v != scope.stack.uid);
                if theirs {
                    return Err(AwsError::new(
                        "iam",
                        "CreateRole",
                        "EntityAlreadyExists",
                        format!("the IAM role {name} belongs to another owner"),
                        ErrorClass::Permanent,
                    ));
                }
                role.map(|r| r.arn().to_owned()).unwrap_or_default()
            }
            Err(e) => return Err(e),
        };
        scope.api.tags.put(&arn, scope.tags(node));
        self.put_policy(scope, node, &arn).await?;
        let mut o = created(scope, node, name).prop("arn", arn.as_str());
        o.props.insert(
            "policy".into(),
            json!(digest(node.props.get("policy").unwrap_or(&Value::Null))),
        );
        Ok(o)
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[crate::engine::FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.put_policy(scope, node, current.str("arn").unwrap_or_default())
            .await?;
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let name = current.id.as_str();
        let gone = |r: Result<(), AwsError>| match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        };
        self.delete_policy(scope, name).await?;
        gone(
            scope
                .api
                .call("iam", "DeleteRole", Effect::Idempotent, || {
                    scope.iam.delete_role().role_name(name).send()
                })
                .await
                .map(|_| ()),
        )?;
        scope
            .api
            .tags
            .forget(current.str("arn").unwrap_or_default());
        Ok(())
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        for o in resources {
            scope
                .api
                .call("iam", "UntagRole", Effect::Idempotent, || {
                    scope
                        .iam
                        .untag_role()
                        .role_name(&o.id)
                        .tag_keys(STACK_TAG)
                        .tag_keys(COMPONENT_TAG)
                        .tag_keys(OWNER_TAG)
                        .send()
                })
                .await?;
            scope.api.tags.forget(o.str("arn").unwrap_or_default());
        }
        Ok(())
    }
}

pub struct ProfileHandler;

#[async_trait]
impl Handler<Scope> for ProfileHandler {
    fn kind(&self) -> Kind {
        INSTANCE_PROFILE
    }

    fn mutable(&self) -> &'static [&'static str] {
        &["role"]
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let name = node.req("name");
        // Instance profiles are not tagged: tagging them is not supported everywhere, and the
        // role inside says whose the profile is.
        let made = scope
            .api
            .call("iam", "CreateInstanceProfile", Effect::Create, || {
                scope
                    .iam
                    .create_instance_profile()
                    .instance_profile_name(name)
                    .path(node.req("path"))
                    .send()
            })
            .await;
        let arn = match made {
            Ok(out) => out
                .instance_profile()
                .map(|p| p.arn().to_owned())
                .unwrap_or_default(),
            // Made by a call whose answer was lost: the name carries the owner's hash.
            Err(e) if e.code == "EntityAlreadyExists" => scope
                .api
                .call("iam", "GetInstanceProfile", Effect::Read, || {
                    scope
                        .iam
                        .get_instance_profile()
                        .instance_profile_name(name)
                        .send()
                })
                .await?
                .instance_profile()
                .map(|p| p.arn().to_owned())
                .unwrap_or_default(),
            Err(e) => return Err(e),
        };
        self.attach(scope, name, node.req("role")).await?;
        Ok(created(scope, node, name)
            .prop("arn", arn)
            .refs([node.req("role").to_owned()]))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        _changes: &[crate::engine::FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        self.detach(scope, current).await?;
        self.attach(scope, &current.id, node.req("role")).await?;
        Ok(None)
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        self.detach(scope, current).await?;
        scope
            .api
            .call("iam", "DeleteInstanceProfile", Effect::Idempotent, || {
                scope
                    .iam
                    .delete_instance_profile()
                    .instance_profile_name(&current.id)
                    .send()
            })
            .await
            .or_absent()
    }
}

impl ProfileHandler {
    async fn attach(&self, scope: &Scope, profile: &str, role: &str) -> Result<(), AwsError> {
        match scope
            .api
            .call(
                "iam",
                "AddRoleToInstanceProfile",
                Effect::Idempotent,
                || {
                    scope
                        .iam
                        .add_role_to_instance_profile()
                        .instance_profile_name(profile)
                        .role_name(role)
                        .send()
                },
            )
            .await
        {
            // A profile holds one role: it is there already.
            Err(e) if e.code == "LimitExceeded" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn detach(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        let Some(role) = current.str("role").filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        scope
            .api
            .call(
                "iam",
                "RemoveRoleFromInstanceProfile",
                Effect::Idempotent,
                || {
                    scope
                        .iam
                        .remove_role_from_instance_profile()
                        .instance_profile_name(&current.id)
                        .role_name(role)
                        .send()
                },
            )
            .await
            .or_absent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trusted_service_is_read_from_an_encoded_document() {
        let doc = trust_policy("ec2.amazonaws.com");
        assert_eq!(trusted_service(&doc), "ec2.amazonaws.com");
        let encoded: String = doc
            .bytes()
            .map(|b| match b {
                b'{' | b'}' | b'"' | b':' | b',' | b'[' | b']' => format!("%{b:02X}"),
                b => (b as char).to_string(),
            })
            .collect();
        assert_eq!(trusted_service(&encoded), "ec2.amazonaws.com");
        assert_eq!(trusted_service("not json"), "");
    }
}
