//! Ownership tags read from any service, and a cache of tag reads for services whose listings
//! do not carry tags (RDS subnet and parameter groups; later ElastiCache and ECR): each resource's
//! tags are read once per process and then served from memory, so that an observation costs
//! one listing per type however many resources the account holds. The operator's own creates,
//! deletions and releases keep the cache current; an entry of a resource deleted out of band
//! stays until the process restarts.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use super::error::{AwsError, ErrorClass};
use super::{role_from_component, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::engine::{Observed, Selector};

/// The tag that records a digest ([`crate::engine::digest`]) of what a handler wrote where
/// reading it back costs a call per resource (a launch template's data, a role's policy) or is
/// not offered (a certificate's names).
pub const DIGEST_TAG: &str = "webstack.io/digest";

/// Tags as key-value pairs.
pub type Tags = Vec<(String, String)>;

/// Who a resource belongs to, from its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    pub stack: String,
    pub role: String,
    pub owner: Option<String>,
}

/// The ownership a resource's tags state, when it carries the stack and component tags.
pub fn ownership<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Ownership> {
    let (mut stack, mut component, mut owner) = (None, None, None);
    for (k, v) in tags {
        match k {
            STACK_TAG => stack = Some(v.to_owned()),
            COMPONENT_TAG => component = Some(v.to_owned()),
            OWNER_TAG => owner = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(Ownership {
        stack: stack?,
        role: role_from_component(&component?).to_owned(),
        owner,
    })
}

/// Tags by resource ARN.
#[derive(Debug, Default)]
pub struct TagCache {
    map: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl TagCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(String, String)>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, arn: &str) -> Option<Vec<(String, String)>> {
        self.lock().get(arn).cloned()
    }

    pub fn put(&self, arn: &str, tags: Vec<(String, String)>) {
        self.lock().insert(arn.to_owned(), tags);
    }

    pub fn forget(&self, arn: &str) {
        self.lock().remove(arn);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A create was answered that the name is taken (`taken`): the resource is the stack's own,
/// made by a create whose answer was lost, when its `tags` name this owner. Anybody else's is a
/// conflict for the user, never adopted.
pub(crate) fn claim_taken(
    scope: &Scope,
    tags: Option<&Tags>,
    taken: &AwsError,
    what: &str,
) -> Result<(), AwsError> {
    let mine = tags.is_some_and(|t| {
        t.iter()
            .any(|(k, v)| k == OWNER_TAG && *v == scope.stack.uid)
    });
    if mine {
        Ok(())
    } else {
        Err(AwsError::new(
            taken.service,
            taken.operation,
            taken.code.clone(),
            format!("{what} belongs to another owner"),
            ErrorClass::Permanent,
        ))
    }
}

/// The tags that make a resource the stack's: what releasing it removes.
pub const OWNERSHIP_TAGS: [&str; 3] = [STACK_TAG, COMPONENT_TAG, OWNER_TAG];

/// Releases resources one at a time: `untag` removes the given ownership tags from one, then
/// the tag cache forgets it (by `key`, the ARN or name it was cached under).
pub(crate) async fn release_each<F, Fut>(
    scope: &Scope,
    resources: &[Observed],
    key: fn(&Observed) -> &str,
    untag: F,
) -> Result<(), AwsError>
where
    F: Fn(Observed, Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), AwsError>>,
{
    for o in resources {
        untag(o.clone(), OWNERSHIP_TAGS.map(str::to_owned).to_vec()).await?;
        scope.api.tags.forget(key(o));
    }
    Ok(())
}

/// The ARN an observation reports (the key of [`release_each`] for most services).
pub(crate) fn arn_of(o: &Observed) -> &str {
    o.str("arn").unwrap_or_default()
}

/// The id of an observation (the key of [`release_each`] for resources cached by name).
pub(crate) fn id_of(o: &Observed) -> &str {
    &o.id
}

/// Tags read one resource at a time, for services without a batched read: `read` answers
/// for one ARN; resources gone since the listing are left out.
pub(crate) async fn read_each<F, Fut>(
    arns: Vec<String>,
    read: F,
) -> Result<HashMap<String, Tags>, AwsError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Tags, AwsError>>,
{
    let mut out = HashMap::new();
    for arn in arns {
        match read(arn.clone()).await {
            Ok(tags) => {
                out.insert(arn, tags);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Whether a name has the shape of the names this operator derives (`...-<8 hex digits>`):
/// only those resources' tags are worth reading.
pub fn derived_name(name: &str) -> bool {
    name.rsplit_once('-')
        .is_some_and(|(_, h)| h.len() == 8 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The resources of a listing that carries no tags, that have the operator's names and belong
/// to a stack the selector admits, with their ownership. See [`owned_items`].
pub(crate) async fn owned_listing<T, F, Fut>(
    scope: &Scope,
    selector: &Selector,
    items: Vec<T>,
    name: fn(&T) -> Option<&str>,
    arn: fn(&T) -> Option<&str>,
    read: F,
) -> Result<Vec<(T, Ownership)>, AwsError>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Result<HashMap<String, Tags>, AwsError>>,
{
    let items: Vec<T> = items
        .into_iter()
        .filter(|i| name(i).is_some_and(derived_name))
        .collect();
    owned_items(scope, selector, items, arn, read).await
}

/// The resources of a listing that carries no tags that belong to a stack the selector
/// admits, with their ownership. Tags come from the cache; `read` is given the ARNs never seen
/// before (in one batch: a service that reads twenty at a time does so) and answers with the
/// tags of those that still exist.
pub(crate) async fn owned_items<T, F, Fut>(
    scope: &Scope,
    selector: &Selector,
    items: Vec<T>,
    arn: fn(&T) -> Option<&str>,
    read: F,
) -> Result<Vec<(T, Ownership)>, AwsError>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Result<HashMap<String, Tags>, AwsError>>,
{
    let arns: Vec<String> = items
        .iter()
        .map(|i| arn(i).unwrap_or_default().to_owned())
        .collect();
    let missing: Vec<String> = arns
        .iter()
        .filter(|a| scope.api.tags.get(a).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        for (arn, tags) in read(missing).await? {
            scope.api.tags.put(&arn, tags);
        }
    }
    Ok(items
        .into_iter()
        .zip(arns)
        .filter_map(|(i, a)| {
            let tags = scope.api.tags.get(&a)?;
            let o = ownership(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            Some((i, o))
        })
        .filter(|(_, o)| selector.admits(&o.stack))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_needs_the_stack_and_component_tags() {
        let tags = [
            ("webstack.io/stack", "ns/shop"),
            ("webstack.io/component", "database/database"),
            ("webstack.io/owner", "uid-1"),
            ("team", "web"),
        ];
        assert_eq!(
            ownership(tags),
            Some(Ownership {
                stack: "ns/shop".into(),
                role: "database".into(),
                owner: Some("uid-1".into())
            })
        );
        assert_eq!(ownership([("webstack.io/stack", "ns/shop")]), None);
    }

    #[test]
    fn the_cache_forgets_what_is_gone() {
        let cache = TagCache::default();
        cache.put("arn:a", vec![("k".into(), "v".into())]);
        cache.put("arn:b", vec![]);
        cache.forget("arn:b");
        assert_eq!(cache.len(), 1);
        assert!(cache.get("arn:a").is_some() && cache.get("arn:b").is_none());
    }
}
