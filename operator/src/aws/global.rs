//! Resources that must live in [`GLOBAL_REGION`] whatever the stack's region: CloudFront's
//! alarms (its metrics exist only there) and the topic they tell. A kind of another area is
//! reused as is, through a scope whose clients reach that region, under a kind name of its
//! own so that the engine never confuses the two. A stack in that region uses the regional
//! kinds only, and the global ones observe nothing.

use async_trait::async_trait;

use super::error::AwsError;
use super::{Scope, GLOBAL_REGION};
use crate::engine::{
    FieldChange, Handler, Kind, Observed, Observer, Replacement, Resolved, Selector,
};

/// A kind of another area, in [`GLOBAL_REGION`].
pub struct Global<T> {
    kind: &'static [Kind],
    inner: T,
}

impl<T> Global<T> {
    /// `kind` is a one-element slice naming the global kind.
    pub fn new(kind: &'static [Kind], inner: T) -> Self {
        Global { kind, inner }
    }

    fn relabel(&self, mut o: Observed) -> Observed {
        o.kind = self.kind[0];
        o
    }
}

#[async_trait]
impl<T: Observer<Scope>> Observer<Scope> for Global<T> {
    fn kinds(&self) -> &'static [Kind] {
        self.kind
    }

    async fn observe(&self, scope: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        if scope.region == GLOBAL_REGION {
            return Ok(Vec::new());
        }
        let found = self.inner.observe(scope.global(), selector).await?;
        Ok(found.into_iter().map(|o| self.relabel(o)).collect())
    }
}

#[async_trait]
impl<T: Handler<Scope>> Handler<Scope> for Global<T> {
    fn kind(&self) -> Kind {
        self.kind[0]
    }

    fn mutable(&self) -> &'static [&'static str] {
        self.inner.mutable()
    }

    fn identity(&self) -> &'static [&'static str] {
        self.inner.identity()
    }

    fn digested(&self) -> &'static [&'static str] {
        self.inner.digested()
    }

    fn replacement(&self) -> Replacement {
        self.inner.replacement()
    }

    fn holds_data(&self) -> bool {
        self.inner.holds_data()
    }

    fn settles(&self) -> bool {
        self.inner.settles()
    }

    async fn create(&self, scope: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        let made = self.inner.create(scope.global(), node).await?;
        Ok(self.relabel(made))
    }

    async fn update(
        &self,
        scope: &Scope,
        node: &Resolved,
        current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        let after = self
            .inner
            .update(scope.global(), node, current, changes)
            .await?;
        Ok(after.map(|o| self.relabel(o)))
    }

    async fn delete(&self, scope: &Scope, current: &Observed) -> Result<(), AwsError> {
        self.inner.delete(scope.global(), current).await
    }

    async fn refresh(
        &self,
        scope: &Scope,
        current: &Observed,
    ) -> Result<Option<Observed>, AwsError> {
        let now = self.inner.refresh(scope.global(), current).await?;
        Ok(now.map(|o| self.relabel(o)))
    }

    async fn release(&self, scope: &Scope, resources: &[Observed]) -> Result<(), AwsError> {
        self.inner.release(scope.global(), resources).await
    }
}
