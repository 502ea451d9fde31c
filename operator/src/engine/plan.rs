//! Planning is pure: the desired graph and an observation in, the list of changes out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::dag::{self, CycleError};
use super::model::{
    FieldChange, Kind, Node, NodeId, Observed, Prop, Readiness, Resolved, StackKey,
};
use super::provider::Replacement;

/// The desired state of a stack: nodes and, through their references, their dependencies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Graph {
    pub nodes: BTreeMap<NodeId, Node>,
}

/// A graph that cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{0} is declared twice")]
    Duplicate(NodeId),
    #[error("{from} depends on {to}, which is not in the graph")]
    Dangling { from: NodeId, to: NodeId },
    #[error(transparent)]
    Cycle(#[from] CycleError),
}

impl Graph {
    pub fn new(nodes: impl IntoIterator<Item = Node>) -> Result<Self, GraphError> {
        let mut map = BTreeMap::new();
        for n in nodes {
            if map.contains_key(&n.id) {
                return Err(GraphError::Duplicate(n.id));
            }
            map.insert(n.id.clone(), n);
        }
        let graph = Graph { nodes: map };
        for n in graph.nodes.values() {
            for d in n.dependencies() {
                if !graph.nodes.contains_key(&d) {
                    return Err(GraphError::Dangling {
                        from: n.id.clone(),
                        to: d,
                    });
                }
            }
        }
        dag::topological_order(&graph.dependencies())?;
        Ok(graph)
    }

    pub fn dependencies(&self) -> BTreeMap<NodeId, Vec<NodeId>> {
        self.nodes
            .iter()
            .map(|(id, n)| (id.clone(), n.dependencies()))
            .collect()
    }

    /// What each node waits to be ready for before it starts: instead of an early dependency,
    /// what that one waits for, so that it starts when the early one can.
    pub fn ready_dependencies(&self) -> BTreeMap<NodeId, Vec<NodeId>> {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let mut deps = n.ready_dependencies();
                for e in &n.early {
                    if let Some(dep) = self.nodes.get(e) {
                        deps.extend(dep.ready_dependencies());
                    }
                }
                deps.sort();
                deps.dedup();
                (id.clone(), deps)
            })
            .collect()
    }

    pub fn order(&self) -> Vec<NodeId> {
        dag::topological_order(&self.dependencies()).expect("checked when the graph was built")
    }

    pub fn kinds(&self) -> BTreeSet<Kind> {
        self.nodes.keys().map(|id| id.kind).collect()
    }
}

/// What AWS holds for one stack, by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observation {
    pub by_kind: BTreeMap<Kind, Vec<Observed>>,
}

impl Observation {
    pub fn from_resources(resources: impl IntoIterator<Item = Observed>) -> Self {
        let mut by_kind: BTreeMap<Kind, Vec<Observed>> = BTreeMap::new();
        for o in resources {
            by_kind.entry(o.kind).or_default().push(o);
        }
        Observation { by_kind }
    }

    /// Replaces everything of the given kinds.
    pub fn replace(&mut self, kinds: &[Kind], resources: Vec<Observed>) {
        for k in kinds {
            self.by_kind.remove(k);
        }
        for o in resources {
            self.by_kind.entry(o.kind).or_default().push(o);
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Observed> {
        self.by_kind.values().flatten()
    }

    /// Resources that exist and are not on their way out.
    pub fn live(&self) -> impl Iterator<Item = &Observed> {
        self.all().filter(|o| is_live(o))
    }
}

pub fn is_live(o: &Observed) -> bool {
    matches!(o.readiness, Readiness::Ready | Readiness::Pending(_))
}

/// What a kind's handler tells the planner.
#[derive(Clone, Debug)]
pub struct KindRules {
    pub mutable: &'static [&'static str],
    pub identity: &'static [&'static str],
    pub replacement: Replacement,
    pub holds_data: bool,
    /// Properties compared by digest: AWS reports them only at a cost (a launch template's
    /// data, a policy document), so the handler records [`digest`] of what it wrote in a tag
    /// and the observer reports that.
    pub digested: &'static [&'static str],
}

impl Default for KindRules {
    fn default() -> Self {
        KindRules {
            mutable: &[],
            identity: &[],
            replacement: Replacement::Refuse,
            holds_data: false,
            digested: &[],
        }
    }
}

impl KindRules {
    /// How a difference is dealt with: in place, by a replacement, or not at all.
    pub fn action_for(&self, diff: &[FieldChange]) -> Option<Action> {
        if diff.is_empty() {
            None
        } else if diff
            .iter()
            .all(|c| self.mutable.contains(&c.field.as_str()))
        {
            Some(Action::Update)
        } else if self.replacement == Replacement::CreateBeforeDelete {
            Some(Action::Replace)
        } else {
            Some(Action::Refuse)
        }
    }
}

/// A property of a desired node whose value is known only after a dependency is created.
pub const UNKNOWN: &str = "(known after apply)";

/// Replaces references by the AWS ids and attributes of the resources in `known`; what is not
/// known yet becomes [`UNKNOWN`].
pub fn resolve(node: &Node, known: &HashMap<NodeId, Observed>) -> (Resolved, bool) {
    let mut complete = true;
    let props = node
        .props
        .iter()
        .map(|(k, p)| (k.clone(), resolve_prop(p, known, &mut complete)))
        .collect();
    let resolved = Resolved {
        id: node.id.clone(),
        component: node.component.clone(),
        name: node.name.clone(),
        props,
    };
    (resolved, complete)
}

/// The attributes `node` refers to that are not known although their node is: a value AWS
/// reports only later (an Auto Scaling group's first instance). The node waits for them.
pub fn missing_attributes(node: &Node, known: &HashMap<NodeId, Observed>) -> Vec<String> {
    fn walk(p: &Prop, known: &HashMap<NodeId, Observed>, out: &mut Vec<String>) {
        match p {
            Prop::Attr(id, a) => {
                if let Some(o) = known.get(id) {
                    if o.props.get(a).is_none_or(Value::is_null) {
                        out.push(format!("{id} {a}"));
                    }
                }
            }
            Prop::Map(map) => map.values().for_each(|p| walk(p, known, out)),
            Prop::List(items) => items.iter().for_each(|p| walk(p, known, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    node.props.values().for_each(|p| walk(p, known, &mut out));
    out
}

/// One property with its references replaced; `complete` turns false at the first reference
/// not known yet.
fn resolve_prop(p: &Prop, known: &HashMap<NodeId, Observed>, complete: &mut bool) -> Value {
    let mut lookup = |id: &NodeId, attribute: Option<&str>| {
        let found = known.get(id).and_then(|o| match attribute {
            None => Some(Value::String(o.id.clone())),
            Some(a) => o.props.get(a).filter(|v| !v.is_null()).cloned(),
        });
        found.unwrap_or_else(|| {
            *complete = false;
            Value::String(UNKNOWN.to_owned())
        })
    };
    match p {
        Prop::Value(v) => v.clone(),
        Prop::Ref(id) => lookup(id, None),
        Prop::Refs(list) => Value::Array(list.iter().map(|id| lookup(id, None)).collect()),
        Prop::Attr(id, a) => lookup(id, Some(a)),
        Prop::Map(map) => Value::Object(
            map.iter()
                .map(|(k, p)| (k.clone(), resolve_prop(p, known, complete)))
                .collect(),
        ),
        Prop::List(items) => Value::Array(
            items
                .iter()
                .map(|p| resolve_prop(p, known, complete))
                .collect(),
        ),
    }
}

/// Compares values with arrays taken as sets.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalize).collect();
            items.sort_by_key(|a| a.to_string());
            items.dedup();
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// A short, stable digest of a property's value, as handlers record it for the properties
/// their kind compares by digest ([`KindRules::digested`]).
pub fn digest(value: &Value) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(value).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The desired properties that differ from what AWS reports.
pub fn changes(desired: &Resolved, observed: &Observed, rules: &KindRules) -> Vec<FieldChange> {
    desired
        .props
        .iter()
        .filter_map(|(field, after)| {
            let before = observed.props.get(field).cloned().unwrap_or(Value::Null);
            let after = if rules.digested.contains(&field.as_str()) {
                &Value::String(digest(after))
            } else {
                after
            };
            (normalize(&before) != normalize(after)).then(|| FieldChange {
                field: field.clone(),
                before,
                after: after.clone(),
            })
        })
        .collect()
}

/// Whether `observed` is the resource that `desired` describes.
pub fn matches(desired: &Resolved, observed: &Observed, rules: &KindRules) -> bool {
    if observed.kind != desired.id.kind || !is_live(observed) {
        return false;
    }
    if rules.identity.is_empty() {
        observed.role == desired.id.role
    } else {
        rules.identity.iter().all(|f| {
            let d = desired.props.get(*f).map(normalize);
            d.is_some()
                && d != Some(Value::String(UNKNOWN.into()))
                && d == observed.props.get(*f).map(normalize)
        })
    }
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    pub action: Action,
    pub kind: Kind,
    pub role: String,
    /// The AWS id, when the resource exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// For a creation, the properties it will have.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    /// A new resource in place of one AWS cannot change (a new task definition revision); the
    /// old one is deleted once nothing uses it.
    Replace,
    /// A change AWS cannot make in place, refused rather than replacing the resource.
    Refuse,
    Delete,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Refuse => "replace (refused)",
            Action::Delete => "delete",
        })
    }
}

/// The difference between a desired graph and an observation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<PlannedChange>,
    /// Desired node -> the observed resource it matched.
    #[serde(skip)]
    pub matched: BTreeMap<NodeId, Observed>,
    /// Observed resources of the stack that no desired node wants.
    #[serde(skip)]
    pub orphans: Vec<Observed>,
    /// Resources the spec no longer declares that hold data: kept until the stack is deleted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<PlannedChange>,
    /// Resources with this stack's name that another owner created: never touched.
    #[serde(skip)]
    pub foreign: Vec<Observed>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn refused(&self) -> impl Iterator<Item = &PlannedChange> {
        self.changes.iter().filter(|c| c.action == Action::Refuse)
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// Plans `graph` against `observed`: every desired node is matched to at most one live
/// resource of the stack's owner, in dependency order so that references resolve to the
/// matched ids and attributes.
pub fn plan(
    graph: &Graph,
    observed: &Observation,
    rules: &BTreeMap<Kind, KindRules>,
    stack: &StackKey,
) -> Plan {
    let mut known: HashMap<NodeId, Observed> = HashMap::new();
    let mut claimed: BTreeSet<(Kind, String)> = BTreeSet::new();
    let mut out = Plan::default();
    let default_rules = KindRules::default();
    for id in graph.order() {
        let node = &graph.nodes[&id];
        let kind_rules = rules.get(&id.kind).unwrap_or(&default_rules);
        let (resolved, _) = resolve(node, &known);
        let candidates = observed.by_kind.get(&id.kind).into_iter().flatten();
        let found = candidates
            .filter(|o| stack.owns(o) && !claimed.contains(&(o.kind, o.id.clone())))
            .find(|o| matches(&resolved, o, kind_rules));
        match found {
            Some(o) => {
                claimed.insert((o.kind, o.id.clone()));
                out.matched.insert(id.clone(), o.clone());
                let diff = changes(&resolved, o, kind_rules);
                match kind_rules.action_for(&diff) {
                    // A replacement's dependents will refer to a resource not created yet.
                    Some(Action::Replace) => {}
                    _ => {
                        known.insert(id.clone(), o.clone());
                    }
                }
                if let Some(action) = kind_rules.action_for(&diff) {
                    out.changes.push(PlannedChange {
                        action,
                        kind: id.kind,
                        role: id.role.clone(),
                        id: Some(o.id.clone()),
                        changes: diff,
                        properties: BTreeMap::new(),
                    });
                }
            }
            None => out.changes.push(PlannedChange {
                action: Action::Create,
                kind: id.kind,
                role: id.role.clone(),
                id: None,
                changes: Vec::new(),
                properties: resolved.props,
            }),
        }
    }
    for o in observed.live() {
        if !stack.owns(o) {
            out.foreign.push(o.clone());
        } else if !claimed.contains(&(o.kind, o.id.clone())) {
            let change = PlannedChange {
                action: Action::Delete,
                kind: o.kind,
                role: o.role.clone(),
                id: Some(o.id.clone()),
                changes: Vec::new(),
                properties: BTreeMap::new(),
            };
            if rules.get(&o.kind).is_some_and(|r| r.holds_data) {
                out.kept.push(change);
            } else {
                out.orphans.push(o.clone());
                out.changes.push(change);
            }
        }
    }
    out
}

/// A resource's key in the deletion graph: ids are unique per kind only (an RDS instance and
/// its subnet group may share a name).
pub fn deletion_key(o: &Observed) -> String {
    format!("{}/{}", o.kind, o.id)
}

/// The order in which existing resources can be deleted: node -> what must be deleted first,
/// keyed by [`deletion_key`]. Edges come from the ids each resource refers to (an id names
/// every present resource that has it, of another kind) and, for matched resources, from the
/// desired graph's dependencies.
pub fn deletion_graph(
    resources: &[Observed],
    graph: &Graph,
    matched: &BTreeMap<NodeId, Observed>,
) -> BTreeMap<String, Vec<String>> {
    let mut by_id: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for o in resources {
        by_id
            .entry(o.id.as_str())
            .or_default()
            .push(deletion_key(o));
    }
    // x depends on y  =>  x must be deleted before y: y waits for x.
    let mut waits: BTreeMap<String, BTreeSet<String>> = resources
        .iter()
        .map(|o| (deletion_key(o), BTreeSet::new()))
        .collect();
    let mut edge = |dependent: &Observed, dependency: &str| {
        let from = deletion_key(dependent);
        for to in by_id.get(dependency).into_iter().flatten() {
            if *to != from {
                if let Some(w) = waits.get_mut(to) {
                    w.insert(from.clone());
                }
            }
        }
    };
    for o in resources {
        for r in &o.refs {
            edge(o, r);
        }
    }
    for (node_id, o) in matched {
        if let Some(node) = graph.nodes.get(node_id) {
            for dep in node.dependencies() {
                if let Some(d) = matched.get(&dep) {
                    edge(o, &d.id);
                }
            }
        }
    }
    waits
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VPC: Kind = Kind("Vpc");
    const SUBNET: Kind = Kind("Subnet");
    const ROUTE: Kind = Kind("Route");

    fn graph() -> Graph {
        let vpc = Node::new(VPC, "network", "vpc", "s-vpc").prop("cidr", "10.0.0.0/16");
        let subnet = Node::new(SUBNET, "network", "public-a", "s-public-a")
            .prop("vpc", vpc.id.clone())
            .prop("cidr", "10.0.0.0/20");
        let route = Node::new(ROUTE, "network", "default", "")
            .prop("vpc", vpc.id.clone())
            .prop("destination", "0.0.0.0/0")
            .prop("target", "igw-1");
        Graph::new([vpc, subnet, route]).unwrap()
    }

    fn key() -> StackKey {
        StackKey::new("ns/s", "owner-1")
    }

    fn rules() -> BTreeMap<Kind, KindRules> {
        BTreeMap::from([
            (VPC, KindRules::default()),
            (SUBNET, KindRules::default()),
            (
                ROUTE,
                KindRules {
                    mutable: &["target"],
                    identity: &["vpc", "destination"],
                    ..Default::default()
                },
            ),
        ])
    }

    #[test]
    fn graph_rejects_dangling_references_and_duplicates() {
        let orphan = Node::new(SUBNET, "network", "a", "a").prop("vpc", NodeId::new(VPC, "vpc"));
        assert!(matches!(
            Graph::new([orphan]),
            Err(GraphError::Dangling { .. })
        ));
        let a = Node::new(VPC, "network", "vpc", "x");
        assert!(matches!(
            Graph::new([a.clone(), a]),
            Err(GraphError::Duplicate(_))
        ));
    }

    #[test]
    fn nothing_observed_plans_creates_in_dependency_order() {
        let p = plan(&graph(), &Observation::default(), &rules(), &key());
        assert_eq!(p.count(Action::Create), 3);
        assert_eq!(p.changes[0].kind, VPC);
        let subnet = p.changes.iter().find(|c| c.kind == SUBNET).unwrap();
        assert_eq!(subnet.properties["vpc"], json!(UNKNOWN));
    }

    #[test]
    fn matching_resources_plan_nothing_and_drift_plans_updates_or_refusals() {
        let vpc = Observed::new(VPC, "ns/s", "vpc", "vpc-1").prop("cidr", "10.0.0.0/16");
        let subnet = Observed::new(SUBNET, "ns/s", "public-a", "subnet-1")
            .prop("vpc", "vpc-1")
            .prop("cidr", "10.0.0.0/20");
        let route = Observed::new(ROUTE, "ns/s", "x", "r-1")
            .prop("vpc", "vpc-1")
            .prop("destination", "0.0.0.0/0")
            .prop("target", "igw-1");
        let obs = Observation::from_resources([vpc.clone(), subnet.clone(), route.clone()]);
        assert!(plan(&graph(), &obs, &rules(), &key()).is_empty());

        let moved = route.clone().prop("target", "nat-9");
        let obs = Observation::from_resources([vpc.clone(), subnet.clone(), moved]);
        let p = plan(&graph(), &obs, &rules(), &key());
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(p.changes[0].changes[0].before, json!("nat-9"));

        let resized = subnet.clone().prop("cidr", "10.0.16.0/20");
        let obs = Observation::from_resources([vpc.clone(), resized, route.clone()]);
        let p = plan(&graph(), &obs, &rules(), &key());
        assert_eq!(p.refused().count(), 1);
        assert_eq!(p.refused().next().unwrap().changes[0].field, "cidr");
    }

    #[test]
    fn unclaimed_and_duplicate_resources_are_orphans() {
        let vpc = Observed::new(VPC, "ns/s", "vpc", "vpc-1").prop("cidr", "10.0.0.0/16");
        let twin = Observed::new(VPC, "ns/s", "vpc", "vpc-2").prop("cidr", "10.0.0.0/16");
        let gone =
            Observed::new(VPC, "ns/s", "old", "vpc-3").readiness(Readiness::Gone("deleted".into()));
        let p = plan(
            &graph(),
            &Observation::from_resources([vpc, twin, gone]),
            &rules(),
            &key(),
        );
        assert_eq!(p.orphans.len(), 1);
        assert_eq!(p.orphans[0].id, "vpc-2");
        assert_eq!(p.count(Action::Delete), 1);
    }

    #[test]
    fn arrays_compare_as_sets() {
        let node = Node::new(VPC, "network", "vpc", "x").prop("tables", json!(["b", "a"]));
        let (resolved, complete) = resolve(&node, &HashMap::new());
        assert!(complete);
        let o = Observed::new(VPC, "s", "vpc", "v").prop("tables", json!(["a", "b"]));
        assert!(changes(&resolved, &o, &KindRules::default()).is_empty());
    }

    #[test]
    fn structured_properties_resolve_their_references_at_any_depth() {
        let vpc = NodeId::new(VPC, "vpc");
        let mut env = BTreeMap::new();
        env.insert("VPC".to_owned(), Prop::Ref(vpc.clone()));
        env.insert("CIDR".to_owned(), Prop::Attr(vpc.clone(), "cidr".into()));
        let mut data = BTreeMap::new();
        data.insert("environment".to_owned(), Prop::Map(env));
        data.insert("size".to_owned(), Prop::from("t3.micro"));
        let node = Node::new(SUBNET, "network", "a", "x").prop("data", data);
        assert_eq!(node.dependencies(), vec![vpc.clone()]);
        let (unresolved, complete) = resolve(&node, &HashMap::new());
        assert!(!complete);
        assert_eq!(
            unresolved.props["data"]["environment"]["CIDR"],
            json!(UNKNOWN)
        );
        let known = HashMap::from([(
            vpc,
            Observed::new(VPC, "s", "vpc", "vpc-1").prop("cidr", "10.0.0.0/16"),
        )]);
        let (resolved, complete) = resolve(&node, &known);
        assert!(complete);
        assert_eq!(
            resolved.props["data"],
            json!({"environment": {"CIDR": "10.0.0.0/16", "VPC": "vpc-1"}, "size": "t3.micro"})
        );
    }

    #[test]
    fn an_attribute_aws_has_not_reported_yet_is_missing() {
        let group = NodeId::new(VPC, "group");
        let node = Node::new(SUBNET, "network", "a", "x").attr("instance", &group, "instance");
        let mut known = HashMap::new();
        // The group itself is not there yet: that is a dependency, not a missing attribute.
        assert!(missing_attributes(&node, &known).is_empty());
        known.insert(
            group.clone(),
            Observed::new(VPC, "s", "group", "g").prop("instance", Value::Null),
        );
        assert_eq!(
            missing_attributes(&node, &known),
            vec!["Vpc group instance"]
        );
        known.insert(
            group.clone(),
            Observed::new(VPC, "s", "group", "g").prop("instance", "i-1"),
        );
        assert!(missing_attributes(&node, &known).is_empty());
    }

    #[test]
    fn digested_properties_compare_by_the_digest_the_observer_reports() {
        let data = json!({"instanceType": "t3.micro", "userData": "echo hi"});
        let node = Node::new(VPC, "network", "vpc", "x").prop("data", data.clone());
        let (resolved, _) = resolve(&node, &HashMap::new());
        let rules = KindRules {
            digested: &["data"],
            mutable: &["data"],
            ..KindRules::default()
        };
        let same = Observed::new(VPC, "s", "vpc", "v").prop("data", digest(&data));
        assert!(changes(&resolved, &same, &rules).is_empty());
        let other = Observed::new(VPC, "s", "vpc", "v")
            .prop("data", digest(&json!({"instanceType": "t3.small"})));
        let diff = changes(&resolved, &other, &rules);
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].after, json!(digest(&data)));
        assert_eq!(rules.action_for(&diff), Some(Action::Update));
        // Without a recorded digest the property counts as changed, never as equal.
        let unrecorded = Observed::new(VPC, "s", "vpc", "v");
        assert_eq!(changes(&resolved, &unrecorded, &rules).len(), 1);
    }

    #[test]
    fn deletion_waits_for_dependents() {
        let vpc = Observed::new(VPC, "s", "vpc", "vpc-1");
        let subnet = Observed::new(SUBNET, "s", "public-a", "subnet-1").refs(["vpc-1".to_string()]);
        let d = deletion_graph(&[vpc, subnet], &Graph::default(), &BTreeMap::new());
        assert_eq!(d["Vpc/vpc-1"], vec!["Subnet/subnet-1".to_string()]);
        assert!(d["Subnet/subnet-1"].is_empty());
        // Two kinds may share a name; each keeps its own place in the order.
        let instance = Observed::new(ROUTE, "s", "db", "shop-db").refs(["shop-db".to_string()]);
        let group = Observed::new(SUBNET, "s", "db", "shop-db");
        let d = deletion_graph(&[instance, group], &Graph::default(), &BTreeMap::new());
        assert_eq!(d.len(), 2);
        assert_eq!(d["Subnet/shop-db"], vec!["Route/shop-db".to_string()]);
    }
}
