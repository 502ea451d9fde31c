//! The engine against an in-memory cloud: ordering, concurrency, waiting, orphans, crashes
//! between a create and its answer, refusals and deletion order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::aws::error::{AwsError, ErrorClass};

const STACK: &str = "ns/test";
const OWNER: &str = "uid-1";
const NET: Kind = Kind("Net");
const SUB: Kind = Kind("Sub");
const GW: Kind = Kind("Gw");
const RULE: Kind = Kind("Rule");
/// Replaced by a new resource when it changes (as a task definition revision).
const REV: Kind = Kind("Rev");
/// Holds data (as a database).
const DATA: Kind = Kind("Data");
/// Uses a `Rev` and can move to another one in place (as an ECS service).
const USE: Kind = Kind("Use");

/// A cloud that keeps resources in memory and records every call.
#[derive(Default)]
struct Cloud {
    resources: Mutex<BTreeMap<String, Observed>>,
    next: AtomicU64,
    calls: Mutex<Vec<String>>,
    /// Kinds whose next create takes effect but answers with an ambiguous error.
    lose_answer: Mutex<BTreeSet<Kind>>,
    /// Kinds whose creates fail permanently.
    broken: Mutex<BTreeSet<Kind>>,
    /// How long each call of a kind takes.
    latency: Mutex<BTreeMap<Kind, Duration>>,
    /// Kinds that come up pending and need this many refreshes to be ready.
    pending_polls: Mutex<BTreeMap<Kind, u32>>,
    /// Kinds that stay `deleting` for this many refreshes after their delete call.
    linger: Mutex<BTreeMap<Kind, u32>>,
    /// Observations that fail (throttled) before one succeeds again.
    failing_observes: AtomicU64,
}

impl Cloud {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }

    fn calls(&self, prefix: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    fn of_kind(&self, kind: Kind) -> Vec<Observed> {
        self.resources
            .lock()
            .unwrap()
            .values()
            .filter(|o| o.kind == kind)
            .cloned()
            .collect()
    }

    async fn pause(&self, kind: Kind) {
        let d = self.latency.lock().unwrap().get(&kind).copied();
        if let Some(d) = d {
            tokio::time::sleep(d).await;
        }
    }
}

type Scope = Arc<Cloud>;

/// The ids a resource refers to: its properties that look like ids.
fn refs_of(props: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    props
        .values()
        .filter_map(|v| v.as_str())
        .filter(|s| s.contains('-'))
        .map(str::to_owned)
        .collect()
}

struct Everything;

#[async_trait]
impl Observer<Scope> for Everything {
    fn kinds(&self) -> &'static [Kind] {
        &[NET, SUB, GW, RULE, REV, DATA, USE]
    }

    async fn observe(&self, cloud: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        cloud.log("observe".into());
        if cloud
            .failing_observes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AwsError::new(
                "mem",
                "Describe",
                "Throttling",
                "slow down",
                ErrorClass::Throttled,
            ));
        }
        Ok(cloud
            .resources
            .lock()
            .unwrap()
            .values()
            .filter(|o| selector.admits(&o.stack))
            .cloned()
            .collect())
    }
}

struct Mem(
    Kind,
    &'static [&'static str],
    &'static [&'static str],
    Replacement,
    bool,
);

/// A kind whose immutable changes are refused and which holds no data.
fn mem(kind: Kind, mutable: &'static [&'static str], identity: &'static [&'static str]) -> Mem {
    Mem(kind, mutable, identity, Replacement::Refuse, false)
}

#[async_trait]
impl Handler<Scope> for Mem {
    fn kind(&self) -> Kind {
        self.0
    }

    fn mutable(&self) -> &'static [&'static str] {
        self.1
    }

    fn identity(&self) -> &'static [&'static str] {
        self.2
    }

    fn replacement(&self) -> Replacement {
        self.3
    }

    fn holds_data(&self) -> bool {
        self.4
    }

    fn settles(&self) -> bool {
        true
    }

    async fn create(&self, cloud: &Scope, node: &Resolved) -> Result<Observed, AwsError> {
        cloud.pause(self.0).await;
        cloud.log(format!("create {} {}", self.0, node.id.role));
        if cloud.broken.lock().unwrap().contains(&self.0) {
            return Err(AwsError::new(
                "mem",
                "Create",
                "InvalidParameter",
                "broken",
                ErrorClass::Permanent,
            ));
        }
        let id = format!(
            "{}-{}",
            self.0 .0.to_lowercase(),
            cloud.next.fetch_add(1, Ordering::SeqCst)
        );
        let mut o = Observed::new(self.0, STACK, node.id.role.clone(), id.clone())
            .owner(Some(OWNER.to_owned()));
        o.props = node.props.clone();
        o.props.insert("version".into(), json!(1));
        o.refs = refs_of(&node.props);
        if let Some(n) = cloud.pending_polls.lock().unwrap().get(&self.0) {
            o.readiness = Readiness::Pending(format!("{n} polls"));
        }
        cloud.resources.lock().unwrap().insert(id, o.clone());
        if cloud.lose_answer.lock().unwrap().remove(&self.0) {
            return Err(AwsError::new(
                "mem",
                "Create",
                "InternalError",
                "the answer was lost",
                ErrorClass::Ambiguous,
            ));
        }
        Ok(o)
    }

    async fn update(
        &self,
        cloud: &Scope,
        node: &Resolved,
        current: &Observed,
        changes: &[FieldChange],
    ) -> Result<Option<Observed>, AwsError> {
        cloud.log(format!("update {} {}", self.0, node.id.role));
        let mut all = cloud.resources.lock().unwrap();
        let o = all.get_mut(&current.id).unwrap();
        for c in changes {
            o.props.insert(c.field.clone(), c.after.clone());
        }
        o.refs = refs_of(&o.props);
        // An update moves an attribute others may refer to, as a new template version does.
        let version = o.props.get("version").and_then(|v| v.as_i64()).unwrap_or(1) + 1;
        o.props.insert("version".into(), json!(version));
        Ok(Some(o.clone()))
    }

    async fn delete(&self, cloud: &Scope, current: &Observed) -> Result<(), AwsError> {
        cloud.pause(self.0).await;
        // Like AWS: nothing can be deleted while something still refers to it.
        let all = cloud.resources.lock().unwrap().clone();
        if all.values().any(|o| o.refs.contains(&current.id)) {
            cloud.log(format!("refused {} {}", self.0, current.role));
            return Err(AwsError::new(
                "mem",
                "Delete",
                "DependencyViolation",
                "in use",
                ErrorClass::DependencyViolation,
            ));
        }
        cloud.log(format!("delete {} {}", self.0, current.role));
        match cloud.linger.lock().unwrap().get(&self.0) {
            Some(_) => {
                if let Some(o) = cloud.resources.lock().unwrap().get_mut(&current.id) {
                    o.readiness = Readiness::Deleting("deleting".into());
                }
            }
            None => {
                cloud.resources.lock().unwrap().remove(&current.id);
            }
        }
        Ok(())
    }

    async fn refresh(
        &self,
        cloud: &Scope,
        current: &Observed,
    ) -> Result<Option<Observed>, AwsError> {
        cloud.log(format!("refresh {} {}", self.0, current.role));
        let mut all = cloud.resources.lock().unwrap();
        let Some(o) = all.get_mut(&current.id) else {
            return Ok(None);
        };
        if matches!(o.readiness, Readiness::Deleting(_)) {
            let mut linger = cloud.linger.lock().unwrap();
            let n = linger.entry(self.0).or_insert(0);
            *n = n.saturating_sub(1);
            if *n == 0 {
                all.remove(&current.id);
                return Ok(None);
            }
            return Ok(Some(o.clone()));
        }
        let mut polls = cloud.pending_polls.lock().unwrap();
        if let Some(n) = polls.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            o.readiness = if *n == 0 {
                Readiness::Ready
            } else {
                Readiness::Pending(format!("{n} polls"))
            };
        }
        Ok(Some(o.clone()))
    }
}

fn engine() -> Engine<Scope> {
    let mut e = Engine::new()
        .observer(Everything)
        .handler(mem(NET, &[], &[]))
        .handler(mem(SUB, &["size"], &[]))
        .handler(mem(GW, &[], &[]))
        .handler(mem(RULE, &[], &["net", "port"]))
        .handler(Mem(REV, &[], &[], Replacement::CreateBeforeDelete, false))
        .handler(Mem(DATA, &[], &[], Replacement::Refuse, true))
        .handler(mem(USE, &["task"], &[]));
    e.node_backoff = Duration::from_millis(1);
    e.wait.first_poll = Duration::from_millis(1);
    e.wait.max_poll = Duration::from_millis(2);
    e.wait.in_pass = Duration::from_secs(5);
    e
}

fn key() -> StackKey {
    StackKey::new(STACK, OWNER)
}

/// net <- sub-a, sub-b <- gw (after both subnets); rule on net.
fn graph(subnets: &[&str], port: i64) -> Graph {
    let net = Node::new(NET, "t", "net", "net").prop("cidr", "10.0.0.0/16");
    let mut nodes = vec![net.clone()];
    let mut gw = Node::new(GW, "t", "gw", "gw").prop("net", net.id.clone());
    for s in subnets {
        let sub = Node::new(SUB, "t", *s, *s)
            .prop("net", net.id.clone())
            .prop("size", 24);
        gw = gw.after(sub.id.clone());
        nodes.push(sub);
    }
    nodes.push(gw);
    nodes.push(
        Node::new(RULE, "t", format!("rule-{port}"), "")
            .prop("net", net.id.clone())
            .prop("port", port),
    );
    Graph::new(nodes).unwrap()
}

fn cloud() -> Scope {
    Arc::new(Cloud::default())
}

#[tokio::test]
async fn apply_creates_in_dependency_order_then_does_nothing() {
    let cloud = cloud();
    let e = engine();
    let g = graph(&["a", "b"], 80);
    let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    assert_eq!(out.resources.len(), 5);
    let calls = cloud.calls.lock().unwrap().clone();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(pos("create Net net") < pos("create Sub a"));
    assert!(pos("create Sub a") < pos("create Gw gw") && pos("create Sub b") < pos("create Gw gw"));
    // The gateway was created with the network's id.
    let gw = &cloud.of_kind(GW)[0];
    assert_eq!(gw.props["net"], json!(cloud.of_kind(NET)[0].id));

    let before = cloud.calls.lock().unwrap().len();
    let again = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(again.is_ready() && again.events.is_empty());
    assert_eq!(
        cloud.calls.lock().unwrap()[before..],
        ["observe".to_string()],
        "one observation, no change"
    );
}

/// The concurrency property: independent nodes run at once, each waits only for its
/// dependencies, and the wall time follows the longest dependency chain.
#[tokio::test]
async fn wall_time_stays_within_the_longest_chain_not_the_sum() {
    let cloud = cloud();
    for (kind, ms) in [(NET, 100), (SUB, 100), (GW, 100), (RULE, 150)] {
        cloud
            .latency
            .lock()
            .unwrap()
            .insert(kind, Duration::from_millis(ms));
    }
    let mut e = engine();
    e.concurrency = 16;
    let subnets: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = subnets.iter().map(String::as_str).collect();
    let g = graph(&refs, 80);
    // Longest chain: net -> subnet -> gateway = 300 ms. Serially: 100 + 8*100 + 100 + 150 = 1150 ms.
    let started = Instant::now();
    let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    let wall = started.elapsed();
    assert!(out.is_ready());
    let chain = Duration::from_millis(300);
    assert!(
        wall <= chain.mul_f64(1.2),
        "wall time {wall:?} exceeds 1.2 x the longest chain {chain:?}"
    );
}

#[tokio::test]
async fn a_lost_create_answer_is_found_by_looking_again_not_created_twice() {
    let cloud = cloud();
    cloud.lose_answer.lock().unwrap().insert(SUB);
    let e = engine();
    let out = e
        .apply(&cloud, &key(), &graph(&["a"], 80), None, &Silent)
        .await
        .unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    assert_eq!(cloud.of_kind(SUB).len(), 1, "no duplicate subnet");
    assert_eq!(cloud.calls("create Sub"), 1);
    assert!(out.events.iter().any(|e| e.what == EventKind::Retrying));
}

#[tokio::test]
async fn pending_resources_are_waited_for_before_their_dependents() {
    let cloud = cloud();
    cloud.pending_polls.lock().unwrap().insert(NET, 3);
    let e = engine();
    let out = e
        .apply(&cloud, &key(), &graph(&["a"], 80), None, &Silent)
        .await
        .unwrap();
    assert!(out.is_ready());
    let calls = cloud.calls.lock().unwrap().clone();
    let last_refresh = calls.iter().rposition(|c| c == "refresh Net net").unwrap();
    assert_eq!(calls.iter().filter(|c| *c == "refresh Net net").count(), 3);
    assert!(last_refresh < calls.iter().position(|c| c == "create Sub a").unwrap());
}

#[tokio::test]
async fn a_permanent_failure_blocks_only_its_dependents_and_is_reported() {
    let cloud = cloud();
    cloud.broken.lock().unwrap().insert(SUB);
    let e = engine();
    let out = e
        .apply(&cloud, &key(), &graph(&["a"], 80), None, &Silent)
        .await
        .unwrap();
    assert!(!out.is_ready() && !out.is_retryable());
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].node, NodeId::new(SUB, "a"));
    assert_eq!(out.failures[0].code, "InvalidParameter");
    assert_eq!(
        out.blocked.keys().cloned().collect::<Vec<_>>(),
        vec![NodeId::new(GW, "gw")]
    );
    assert_eq!(
        cloud.of_kind(RULE).len(),
        1,
        "independent nodes still converge"
    );
}

#[tokio::test]
async fn updates_in_place_and_removes_what_is_no_longer_wanted() {
    let cloud = cloud();
    let e = engine();
    e.apply(&cloud, &key(), &graph(&["a", "b"], 80), None, &Silent)
        .await
        .unwrap();
    // A mutable change, a subnet and a rule that go away, a rule that comes.
    let mut g = graph(&["a"], 443);
    g.nodes
        .get_mut(&NodeId::new(SUB, "a"))
        .unwrap()
        .props
        .insert("size".into(), Prop::Value(json!(25)));
    let plan = e.plan(&g, &e.observe_stack(&cloud, STACK).await.unwrap(), &key());
    let summary: BTreeSet<(Action, String)> = plan
        .changes
        .iter()
        .map(|c| (c.action, c.role.clone()))
        .collect();
    assert_eq!(
        summary,
        BTreeSet::from([
            (Action::Update, "a".to_string()),
            (Action::Create, "rule-443".to_string()),
            (Action::Delete, "b".to_string()),
            (Action::Delete, "rule-80".to_string()),
        ])
    );
    let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    assert_eq!(cloud.of_kind(SUB).len(), 1);
    assert_eq!(cloud.of_kind(SUB)[0].props["size"], json!(25));
    assert_eq!(cloud.of_kind(RULE)[0].props["port"], json!(443));
    assert_eq!(out.deleted.len(), 2);
}

#[tokio::test]
async fn a_change_aws_cannot_make_in_place_is_refused_before_any_call() {
    let cloud = cloud();
    let e = engine();
    e.apply(&cloud, &key(), &graph(&["a"], 80), None, &Silent)
        .await
        .unwrap();
    let mut g = graph(&["a"], 80);
    g.nodes
        .get_mut(&NodeId::new(NET, "net"))
        .unwrap()
        .props
        .insert("cidr".into(), Prop::Value(json!("10.9.0.0/16")));
    let before = cloud.calls.lock().unwrap().len();
    let err = e
        .apply(&cloud, &key(), &g, None, &Silent)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Net net") && text.contains("cidr cannot be changed in place"),
        "{text}"
    );
    assert_eq!(
        cloud.calls.lock().unwrap()[before..],
        ["observe".to_string()]
    );
}

#[tokio::test]
async fn destroy_deletes_dependents_first_and_tolerates_what_is_gone() {
    let cloud = cloud();
    let e = engine();
    let g = graph(&["a", "b"], 80);
    e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    let out = e
        .destroy(&cloud, &key(), Some(&g), false, &Silent)
        .await
        .unwrap();
    assert!(out.is_complete(), "{:?}", out.failures);
    assert!(cloud.resources.lock().unwrap().is_empty());
    assert_eq!(
        cloud.calls("refused"),
        0,
        "the order made every delete succeed at once"
    );
    let calls = cloud.calls.lock().unwrap().clone();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(
        pos("delete Gw gw") < pos("delete Sub a") || pos("delete Sub a") < pos("delete Net net")
    );
    assert!(
        pos("delete Sub a") < pos("delete Net net") && pos("delete Gw gw") < pos("delete Net net")
    );
    let again = e
        .destroy(&cloud, &key(), Some(&g), false, &Silent)
        .await
        .unwrap();
    assert!(again.deleted.is_empty() && again.is_complete());
}

#[tokio::test]
async fn one_observation_serves_every_stack() {
    let cloud = cloud();
    let e = engine();
    e.apply(&cloud, &key(), &graph(&["a"], 80), None, &Silent)
        .await
        .unwrap();
    let other = Observed::new(NET, "ns/other", "net", "net-99");
    cloud
        .resources
        .lock()
        .unwrap()
        .insert("net-99".into(), other);
    let before = cloud.calls("observe");
    let all = e.observe_all_stacks(&cloud).await.unwrap();
    assert_eq!(cloud.calls("observe") - before, 1);
    assert_eq!(all.len(), 2);
    assert_eq!(all["ns/other"].by_kind[&NET].len(), 1);
    // A stack's apply can run from its share of that observation with no read of its own.
    let before = cloud.calls.lock().unwrap().len();
    let out = e
        .apply(
            &cloud,
            &key(),
            &graph(&["a"], 80),
            all.get(STACK).cloned(),
            &Silent,
        )
        .await
        .unwrap();
    assert!(out.is_ready() && out.events.is_empty());
    assert_eq!(cloud.calls.lock().unwrap().len(), before, "no call at all");
}

/// A node with no dependency, to show what proceeds while another waits.
fn solo() -> Node {
    Node::new(GW, "t", "solo", "solo")
}

#[tokio::test]
async fn a_settling_resource_never_holds_the_pass_and_a_later_pass_goes_on() {
    let cloud = cloud();
    // Ready only after ten polls; a pass polls for about 3 ms.
    cloud.pending_polls.lock().unwrap().insert(NET, 10);
    let mut e = engine();
    e.wait.in_pass = Duration::from_millis(3);
    let mut nodes: Vec<Node> = graph(&["a"], 80).nodes.into_values().collect();
    nodes.push(solo());
    let g = Graph::new(nodes).unwrap();

    let first = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(first.is_settling() && !first.is_ready(), "{first:?}");
    assert_eq!(
        first.pending.keys().cloned().collect::<Vec<_>>(),
        vec![NodeId::new(NET, "net")]
    );
    assert!(first.blocked.contains_key(&NodeId::new(SUB, "a")));
    assert!(
        first.resources.contains_key(&NodeId::new(GW, "solo")),
        "what does not depend on it proceeds"
    );
    assert!(first.failures.is_empty());

    let mut passes = 1;
    let last = loop {
        passes += 1;
        let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
        if out.is_ready() || passes > 20 {
            break out;
        }
        assert!(out.is_settling(), "{out:?}");
    };
    assert!(last.is_ready(), "{last:?}");
    assert!(passes > 2, "the resource took several passes");
    assert_eq!(cloud.calls("create Net"), 1, "never created twice");
    assert_eq!(cloud.of_kind(SUB).len(), 1);
}

#[tokio::test]
async fn a_deletion_that_takes_a_while_is_reported_pending_and_finished_later() {
    let cloud = cloud();
    let mut e = engine();
    let g = graph(&["a"], 80);
    e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    // The network lingers as `deleting` for a while after its delete call.
    cloud.linger.lock().unwrap().insert(NET, 10);
    e.wait.in_pass = Duration::from_millis(3);
    let first = e
        .destroy(&cloud, &key(), Some(&g), false, &Silent)
        .await
        .unwrap();
    assert!(
        !first.is_complete() && first.failures.is_empty(),
        "{first:?}"
    );
    assert_eq!(first.pending.len(), 1);
    assert_eq!(first.pending[0].kind, NET);
    let mut passes = 1;
    loop {
        passes += 1;
        let out = e
            .destroy(&cloud, &key(), Some(&g), false, &Silent)
            .await
            .unwrap();
        if out.is_complete() {
            break;
        }
        assert!(passes < 30, "{out:?}");
    }
    assert!(cloud.resources.lock().unwrap().is_empty());
    assert_eq!(cloud.calls("delete Net"), 1, "one delete call");
}

#[tokio::test]
async fn references_to_attributes_resolve_once_the_dependency_exists() {
    let cloud = cloud();
    let e = engine();
    let net = NodeId::new(NET, "net");
    let mut nodes: Vec<Node> = graph(&["a"], 80).nodes.into_values().collect();
    nodes.push(Node::new(GW, "t", "reader", "reader").attr("range", &net, "cidr"));
    let g = Graph::new(nodes).unwrap();
    let plan = e.plan(&g, &Observation::default(), &key());
    let reader = plan.changes.iter().find(|c| c.role == "reader").unwrap();
    assert_eq!(reader.properties["range"], json!(plan::UNKNOWN));
    assert!(g.nodes[&NodeId::new(GW, "reader")]
        .dependencies()
        .contains(&net));
    let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(out.is_ready());
    assert_eq!(
        out.resources[&NodeId::new(GW, "reader")].props["range"],
        json!("10.0.0.0/16")
    );
}

#[tokio::test]
async fn an_update_that_moves_an_attribute_updates_what_refers_to_it() {
    let cloud = cloud();
    let e = engine();
    let sub = NodeId::new(SUB, "a");
    let build = |size: i64| {
        let mut nodes: Vec<Node> = graph(&["a"], 80).nodes.into_values().collect();
        for n in nodes.iter_mut().filter(|n| n.id == sub) {
            n.props.insert("size".into(), Prop::Value(json!(size)));
        }
        // As an Auto Scaling group follows its launch template's version.
        nodes.push(mem_follower(&sub));
        Graph::new(nodes).unwrap()
    };
    e.apply(&cloud, &key(), &build(24), None, &Silent)
        .await
        .unwrap();
    let out = e
        .apply(&cloud, &key(), &build(25), None, &Silent)
        .await
        .unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    let follower = &cloud
        .of_kind(SUB)
        .into_iter()
        .find(|o| o.role == "follower")
        .unwrap();
    assert_eq!(follower.props["size"], json!(2), "{follower:?}");
    assert_eq!(cloud.calls("update Sub follower"), 1);
}

/// A subnet-kind node whose mutable `size` follows another node's `version` attribute.
fn mem_follower(of: &NodeId) -> Node {
    let mut n = Node::new(SUB, "t", "follower", "follower");
    n.props
        .insert("size".into(), Prop::Attr(of.clone(), "version".into()));
    n
}

fn revision_graph(image: &str) -> Graph {
    let rev = Node::new(REV, "t", "task", "task").prop("image", image);
    let user = Node::new(USE, "t", "service", "service").prop("task", rev.id.clone());
    Graph::new([rev, user]).unwrap()
}

#[tokio::test]
async fn a_versioned_kind_is_replaced_new_first_then_the_old_one_goes() {
    let cloud = cloud();
    let e = engine();
    e.apply(&cloud, &key(), &revision_graph("app:1"), None, &Silent)
        .await
        .unwrap();
    let old = cloud.of_kind(REV)[0].id.clone();
    let g = revision_graph("app:2");
    let plan = e.plan(&g, &e.observe_stack(&cloud, STACK).await.unwrap(), &key());
    assert_eq!(plan.count(Action::Replace), 1);
    assert_eq!(plan.refused().count(), 0);
    let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    let revs = cloud.of_kind(REV);
    assert_eq!(revs.len(), 1, "the old revision is gone");
    assert_ne!(revs[0].id, old);
    assert_eq!(revs[0].props["image"], json!("app:2"));
    let service = &cloud.of_kind(USE)[0];
    assert_eq!(
        service.props["task"],
        json!(revs[0].id),
        "moved to the new one"
    );
    assert_eq!(cloud.calls("update Use service"), 1, "updated in place");
    let calls = cloud.calls.lock().unwrap().clone();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(pos("update Use service") < pos("delete Rev task"));
    assert!(e
        .plan(&g, &e.observe_stack(&cloud, STACK).await.unwrap(), &key())
        .is_empty());
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_replacement_converges_without_a_third_resource() {
    let cloud = cloud();
    let e = engine();
    e.apply(&cloud, &key(), &revision_graph("app:1"), None, &Silent)
        .await
        .unwrap();
    // The new revision was created, then the process stopped: both carry the role.
    let mut stray = cloud.of_kind(REV)[0].clone();
    stray.id = "rev-new".into();
    stray.props.insert("image".into(), json!("app:2"));
    cloud
        .resources
        .lock()
        .unwrap()
        .insert(stray.id.clone(), stray);
    let out = e
        .apply(&cloud, &key(), &revision_graph("app:2"), None, &Silent)
        .await
        .unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    assert_eq!(
        cloud.calls("create Rev"),
        1,
        "only the first apply created one"
    );
    let revs = cloud.of_kind(REV);
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].id, "rev-new");
}

#[tokio::test]
async fn a_stack_of_the_same_name_with_another_owner_is_left_alone() {
    let cloud = cloud();
    let e = engine();
    let theirs = StackKey::new(STACK, "uid-of-another-cluster");
    // The other owner's resources, created first.
    let g = graph(&["a"], 80);
    e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    for o in cloud.resources.lock().unwrap().values_mut() {
        o.owner = Some(theirs.owner.clone());
    }
    let before: BTreeSet<String> = cloud.resources.lock().unwrap().keys().cloned().collect();
    let out = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(out.is_ready(), "{:?}", out.failures);
    assert_eq!(out.foreign.len(), before.len(), "reported, not adopted");
    assert!(out.deleted.is_empty(), "nothing of theirs deleted");
    assert_eq!(cloud.of_kind(NET).len(), 2, "each owner has its own");
    let gone = e
        .destroy(&cloud, &key(), Some(&g), false, &Silent)
        .await
        .unwrap();
    assert!(gone.is_complete());
    assert_eq!(gone.foreign.len(), before.len());
    let after: BTreeSet<String> = cloud.resources.lock().unwrap().keys().cloned().collect();
    assert_eq!(after, before, "exactly the other owner's resources remain");
}

#[tokio::test]
async fn a_resource_holding_data_is_kept_when_the_spec_drops_it_and_deleted_with_the_stack() {
    let cloud = cloud();
    let e = engine();
    let mut with_data: Vec<Node> = graph(&["a"], 80).nodes.into_values().collect();
    with_data.push(Node::new(DATA, "t", "database", "database"));
    let with_data = Graph::new(with_data).unwrap();
    e.apply(&cloud, &key(), &with_data, None, &Silent)
        .await
        .unwrap();
    let without = graph(&["a"], 80);
    let plan = e.plan(
        &without,
        &e.observe_stack(&cloud, STACK).await.unwrap(),
        &key(),
    );
    assert_eq!(plan.count(Action::Delete), 0);
    assert_eq!(plan.kept.len(), 1);
    let out = e
        .apply(&cloud, &key(), &without, None, &Silent)
        .await
        .unwrap();
    assert!(out.is_ready());
    assert_eq!(out.kept.len(), 1);
    assert_eq!(cloud.of_kind(DATA).len(), 1, "kept");
    assert_eq!(cloud.calls("delete Data"), 0);
    e.destroy(&cloud, &key(), Some(&without), false, &Silent)
        .await
        .unwrap();
    assert!(cloud.of_kind(DATA).is_empty(), "deleted with the stack");
}

#[tokio::test]
async fn a_failed_look_after_a_lost_answer_never_leads_to_a_second_create() {
    let cloud = cloud();
    cloud.lose_answer.lock().unwrap().insert(SUB);
    // Every read after the first fails for a while.
    cloud.failing_observes.store(100, Ordering::SeqCst);
    let e = engine();
    let g = graph(&["a"], 80);
    let first = e
        .apply(&cloud, &key(), &g, Some(Observation::default()), &Silent)
        .await
        .unwrap();
    assert!(!first.is_ready() && first.is_retryable(), "{first:?}");
    assert_eq!(cloud.calls("create Sub"), 1);
    cloud.failing_observes.store(0, Ordering::SeqCst);
    let second = e.apply(&cloud, &key(), &g, None, &Silent).await.unwrap();
    assert!(second.is_ready(), "{:?}", second.failures);
    assert_eq!(cloud.calls("create Sub"), 1, "found, not created again");
    assert_eq!(cloud.of_kind(SUB).len(), 1);
}
