//! The data the engine works on: desired nodes and observed resources. The engine knows
//! resource kinds only as names; what a kind means is the business of its area module.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A resource kind, such as `Vpc` or `SecurityGroupRule`. Defined by the area modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Kind(pub &'static str);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A node of the desired graph: a kind and the role the resource plays in the stack.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NodeId {
    pub kind: Kind,
    pub role: String,
}

impl NodeId {
    pub fn new(kind: Kind, role: impl Into<String>) -> Self {
        NodeId {
            kind,
            role: role.into(),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.role)
    }
}

/// Who a stack is to the engine: the value of its `webstack.io/stack` tag, and the owner that
/// created it (the `webstack.io/owner` tag: a Kubernetes object's UID, or the CLI's identity).
/// Two owners of a stack of the same name in one account never touch each other's resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackKey {
    pub id: String,
    pub owner: String,
}

impl StackKey {
    pub fn new(id: impl Into<String>, owner: impl Into<String>) -> Self {
        StackKey {
            id: id.into(),
            owner: owner.into(),
        }
    }

    /// Whether a resource with this owner tag is this stack's. Resources without one were
    /// created before owners were recorded, by this stack.
    pub fn owns(&self, o: &Observed) -> bool {
        o.owner.as_deref().is_none_or(|owner| owner == self.owner)
    }
}

/// A desired property: a plain value, the AWS id of another node, or one of that node's
/// attributes (a load balancer's DNS name, a role's ARN), known once that node exists.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Prop {
    Value(Value),
    Ref(NodeId),
    Refs(Vec<NodeId>),
    Attr(NodeId, String),
    /// A structured value whose members may be references (a launch template's data, with
    /// its security groups and the database's endpoint in the environment).
    Map(BTreeMap<String, Prop>),
    /// A list whose members may be references (a policy's statements and resources).
    List(Vec<Prop>),
}

impl Prop {
    /// Every node this property refers to, at any depth.
    fn references(&self, out: &mut Vec<NodeId>) {
        match self {
            Prop::Ref(id) | Prop::Attr(id, _) => out.push(id.clone()),
            Prop::Refs(ids) => out.extend(ids.iter().cloned()),
            Prop::Map(map) => map.values().for_each(|p| p.references(out)),
            Prop::List(items) => items.iter().for_each(|p| p.references(out)),
            Prop::Value(_) => {}
        }
    }
}

impl From<Value> for Prop {
    fn from(v: Value) -> Self {
        Prop::Value(v)
    }
}

impl From<&str> for Prop {
    fn from(v: &str) -> Self {
        Prop::Value(Value::String(v.to_owned()))
    }
}

impl From<String> for Prop {
    fn from(v: String) -> Self {
        Prop::Value(Value::String(v))
    }
}

impl From<bool> for Prop {
    fn from(v: bool) -> Self {
        Prop::Value(Value::Bool(v))
    }
}

impl From<i64> for Prop {
    fn from(v: i64) -> Self {
        Prop::Value(Value::from(v))
    }
}

impl From<NodeId> for Prop {
    fn from(v: NodeId) -> Self {
        Prop::Ref(v)
    }
}

impl From<BTreeMap<String, Prop>> for Prop {
    fn from(v: BTreeMap<String, Prop>) -> Self {
        Prop::Map(v)
    }
}

impl From<Vec<Prop>> for Prop {
    fn from(v: Vec<Prop>) -> Self {
        Prop::List(v)
    }
}

impl<const N: usize> From<[(&str, Prop); N]> for Prop {
    fn from(entries: [(&str, Prop); N]) -> Self {
        Prop::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
}

impl From<Vec<NodeId>> for Prop {
    fn from(v: Vec<NodeId>) -> Self {
        Prop::Refs(v)
    }
}

/// One resource the stack needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    pub id: NodeId,
    /// `<tier>/<role>`, written to the `webstack.io/component` tag.
    pub component: String,
    /// The `Name` tag.
    pub name: String,
    pub props: BTreeMap<String, Prop>,
    /// Ordering constraints that no property expresses (a NAT gateway needs the internet
    /// gateway attached). Every `Ref` in `props` is a dependency too.
    pub after: Vec<NodeId>,
    /// Dependencies this node needs to exist, not to be ready: a certificate's validation
    /// record is written while the certificate waits for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub early: Vec<NodeId>,
}

impl Node {
    pub fn new(kind: Kind, tier: &str, role: impl Into<String>, name: impl Into<String>) -> Self {
        let role = role.into();
        Node {
            component: format!("{tier}/{role}"),
            id: NodeId::new(kind, role),
            name: name.into(),
            props: BTreeMap::new(),
            after: Vec::new(),
            early: Vec::new(),
        }
    }

    pub fn prop(mut self, key: &str, value: impl Into<Prop>) -> Self {
        self.props.insert(key.to_owned(), value.into());
        self
    }

    pub fn after(mut self, dep: NodeId) -> Self {
        self.after.push(dep);
        self
    }

    /// Marks a dependency as needed to exist only: this node goes ahead while it settles.
    pub fn early(mut self, dep: NodeId) -> Self {
        self.early.push(dep);
        self
    }

    /// The dependencies this node waits to be ready for before it starts.
    pub fn ready_dependencies(&self) -> Vec<NodeId> {
        let mut deps = self.dependencies();
        deps.retain(|d| !self.early.contains(d));
        deps
    }

    /// An attribute of another node, such as `(load balancer, "dnsName")`.
    pub fn attr(mut self, key: &str, node: &NodeId, attribute: &str) -> Self {
        self.props.insert(
            key.to_owned(),
            Prop::Attr(node.clone(), attribute.to_owned()),
        );
        self
    }

    /// Every node this one waits for.
    pub fn dependencies(&self) -> Vec<NodeId> {
        let mut deps = self.after.clone();
        for p in self.props.values() {
            p.references(&mut deps);
        }
        deps.sort();
        deps.dedup();
        deps
    }
}

/// Whether an observed resource can be used by its dependents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Readiness {
    Ready,
    /// Still settling (a NAT gateway `pending`), with the state AWS reports.
    Pending(String),
    /// Being deleted: not usable, and not gone yet.
    Deleting(String),
    /// Deleted or failed; never becomes usable again, counts as absent.
    Gone(String),
}

/// A resource as AWS reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed {
    pub kind: Kind,
    /// The role from the `webstack.io/component` tag; for untagged sub-resources (rules,
    /// routes, associations), a role derived from the parent's.
    pub role: String,
    /// The stack that owns it, from the `webstack.io/stack` tag (of the parent, for sub-resources).
    pub stack: String,
    /// The `webstack.io/owner` tag, where the resource carries one.
    pub owner: Option<String>,
    /// The AWS id (for sub-resources, an id the area can act on).
    pub id: String,
    /// Observed properties, with references as AWS ids.
    pub props: BTreeMap<String, Value>,
    /// AWS ids of resources this one depends on, for ordering deletions.
    pub refs: Vec<String>,
    pub readiness: Readiness,
}

impl Observed {
    pub fn new(
        kind: Kind,
        stack: impl Into<String>,
        role: impl Into<String>,
        id: impl Into<String>,
    ) -> Self {
        Observed {
            kind,
            role: role.into(),
            stack: stack.into(),
            owner: None,
            id: id.into(),
            props: BTreeMap::new(),
            refs: Vec::new(),
            readiness: Readiness::Ready,
        }
    }

    pub fn prop(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.props.insert(key.to_owned(), value.into());
        self
    }

    pub fn refs(mut self, refs: impl IntoIterator<Item = String>) -> Self {
        self.refs.extend(refs.into_iter().filter(|r| !r.is_empty()));
        self
    }

    pub fn owner(mut self, owner: Option<String>) -> Self {
        self.owner = owner;
        self
    }

    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.props.get(key).and_then(Value::as_str)
    }
}

/// A desired node with every reference replaced by the AWS id it points at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resolved {
    pub id: NodeId,
    pub component: String,
    pub name: String,
    pub props: BTreeMap<String, Value>,
}

impl Resolved {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.props.get(key).and_then(Value::as_str)
    }

    /// A string property the node's builder always sets.
    pub fn req(&self, key: &str) -> &str {
        self.str(key).unwrap_or_default()
    }

    pub fn strs(&self, key: &str) -> Vec<String> {
        match self.props.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.props.get(key).and_then(Value::as_i64)
    }

    pub fn bool(&self, key: &str) -> bool {
        self.props
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// One field that differs between desired and observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}
