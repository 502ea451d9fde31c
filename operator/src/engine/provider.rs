//! The small, uniform interface every AWS area implements for each of its resource kinds.

use async_trait::async_trait;

use super::model::{FieldChange, Kind, Observed, Resolved};
use crate::aws::error::AwsError;

/// Which stacks an observation covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Resources tagged `webstack.io/stack=<this>`.
    Stack(String),
    /// Resources of every stack (tagged with the `webstack.io/stack` key at all): one call per
    /// type serves any number of stacks.
    AllStacks,
}

impl Selector {
    pub fn admits(&self, stack: &str) -> bool {
        match self {
            Selector::Stack(s) => s == stack,
            Selector::AllStacks => !stack.is_empty(),
        }
    }
}

/// What the engine does when a property AWS cannot change in place differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// Refuse, naming the field: the user decides (a VPC CIDR, a database engine).
    Refuse,
    /// Create the new resource, move every dependent to it, then delete the old one (an ECS
    /// task definition's new revision, a certificate for new names).
    CreateBeforeDelete,
}

/// Reads one family of resources with one batched, tag-filtered call (and its pages).
#[async_trait]
pub trait Observer<S>: Send + Sync {
    /// The kinds this observer reports (a route-table read also reports routes and associations).
    fn kinds(&self) -> &'static [Kind];
    async fn observe(&self, scope: &S, selector: &Selector) -> Result<Vec<Observed>, AwsError>;
}

/// Creates, changes and deletes resources of one kind. Every call must be idempotent or
/// preceded by an observation (the engine looks before it creates).
#[async_trait]
pub trait Handler<S>: Send + Sync {
    fn kind(&self) -> Kind;

    /// Properties AWS can change in place. A difference in any other property is refused, with
    /// a message naming it, instead of replacing the resource.
    fn mutable(&self) -> &'static [&'static str] {
        &[]
    }

    /// Properties that identify an untagged sub-resource (a route by its table and destination).
    /// Empty for tagged resources, which are matched by the role in their component tag.
    fn identity(&self) -> &'static [&'static str] {
        &[]
    }

    /// Properties compared by digest ([`crate::engine::digest`]): the handler records the digest
    /// of what it wrote (in a tag) and the observer reports that, where reading the value back
    /// would cost a call per resource.
    fn digested(&self) -> &'static [&'static str] {
        &[]
    }

    /// Creates the resource, tagged as the node says, and reports it as AWS answered.
    async fn create(&self, scope: &S, node: &Resolved) -> Result<Observed, AwsError>;

    /// What a change of a property outside [`Handler::mutable`] does.
    fn replacement(&self) -> Replacement {
        Replacement::Refuse
    }

    /// Whether the resource holds data (a database, a bucket, a table): it is never deleted
    /// because the graph stopped mentioning it, only when the stack itself is deleted.
    fn holds_data(&self) -> bool {
        false
    }

    /// Brings an existing resource to the desired properties; `changes` lists only mutable ones.
    /// Kinds without mutable properties are never updated. Returns the resource as AWS reports
    /// it afterwards when the change moved attributes others refer to (a launch template's new
    /// version); `None` when the changed properties are all that changed.
    async fn update(
        &self,
        _scope: &S,
        node: &Resolved,
        _current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        Err(AwsError::new(
            "engine",
            "Update",
            "NotUpdatable",
            format!(
                "{} cannot be changed in place ({})",
                node.id,
                fields.join(", ")
            ),
            crate::aws::error::ErrorClass::Permanent,
        ))
    }

    /// Deletes the resource. A resource that is already gone is not an error.
    async fn delete(&self, scope: &S, current: &Observed) -> Result<(), AwsError>;

    /// Whether creating and deleting take effect only after a while (a NAT gateway goes
    /// `pending` -> `available` and `deleting` -> `deleted`). Only then does the engine wait,
    /// using [`Handler::refresh`].
    fn settles(&self) -> bool {
        false
    }

    /// Reads one resource again while waiting for it to settle; `None` once it is gone.
    async fn refresh(&self, _scope: &S, current: &Observed) -> Result<Option<Observed>, AwsError> {
        Ok(Some(current.clone()))
    }

    /// Gives up the stack's claim on resources that stay (`deletionPolicy: Retain`): their
    /// ownership tag is removed so that no stack finds them again. Untagged sub-resources need
    /// nothing.
    async fn release(&self, _scope: &S, _resources: &[Observed]) -> Result<(), AwsError> {
        Ok(())
    }
}
