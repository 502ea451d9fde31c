//! The engine against an in-memory cloud: ordering, concurrency, waiting, orphans, crashes
//! between a create and its answer, refusals and deletion order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;

use super::*;

const STACK: &str = "ns/test";
const NET: Kind = Kind("Net");
const SUB: Kind = Kind("Sub");
const GW: Kind = Kind("Gw");
const RULE: Kind = Kind("Rule");

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

struct Everything;

#[async_trait]
impl Observer<Scope> for Everything {
    fn kinds(&self) -> &'static [Kind] {
        &[NET, SUB, GW, RULE]
    }

    async fn observe(&self, cloud: &Scope, selector: &Selector) -> Result<Vec<Observed>, AwsError> {
        cloud.log("observe".into());
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

struct Mem(Kind, &'static [&'static str], &'static [&'static str]);

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
        let mut o = Observed::new(self.0, STACK, node.id.role.clone(), id.clone());
        o.props = node.props.clone();
        o.refs = node
            .props
            .values()
            .filter_map(|v| v.as_str())
            .filter(|s| s.contains('-'))
            .map(str::to_owned)
            .collect();
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
    ) -> Result<(), AwsError> {
        cloud.log(format!("update {} {}", self.0, node.id.role));
        let mut all = cloud.resources.lock().unwrap();
        let o = all.get_mut(&current.id).unwrap();
        for c in changes {
            o.props.insert(c.field.clone(), c.after.clone());
        }
        Ok(())
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
        cloud.resources.lock().unwrap().remove(&current.id);
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
        .handler(Mem(NET, &[], &[]))
        .handler(Mem(SUB, &["size"], &[]))
        .handler(Mem(GW, &[], &[]))
        .handler(Mem(RULE, &[], &["net", "port"]));
    e.node_backoff = Duration::from_millis(1);
    e.wait.first_poll = Duration::from_millis(1);
    e.wait.max_poll = Duration::from_millis(2);
    e
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
    let out = e.apply(&cloud, STACK, &g, None, &Silent).await.unwrap();
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
    let again = e.apply(&cloud, STACK, &g, None, &Silent).await.unwrap();
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
    let out = e.apply(&cloud, STACK, &g, None, &Silent).await.unwrap();
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
        .apply(&cloud, STACK, &graph(&["a"], 80), None, &Silent)
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
        .apply(&cloud, STACK, &graph(&["a"], 80), None, &Silent)
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
        .apply(&cloud, STACK, &graph(&["a"], 80), None, &Silent)
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
    e.apply(&cloud, STACK, &graph(&["a", "b"], 80), None, &Silent)
        .await
        .unwrap();
    // A mutable change, a subnet and a rule that go away, a rule that comes.
    let mut g = graph(&["a"], 443);
    g.nodes
        .get_mut(&NodeId::new(SUB, "a"))
        .unwrap()
        .props
        .insert("size".into(), Prop::Value(json!(25)));
    let plan = e.plan(&g, &e.observe_stack(&cloud, STACK).await.unwrap());
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
    let out = e.apply(&cloud, STACK, &g, None, &Silent).await.unwrap();
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
    e.apply(&cloud, STACK, &graph(&["a"], 80), None, &Silent)
        .await
        .unwrap();
    let mut g = graph(&["a"], 80);
    g.nodes
        .get_mut(&NodeId::new(NET, "net"))
        .unwrap()
        .props
        .insert("cidr".into(), Prop::Value(json!("10.9.0.0/16")));
    let before = cloud.calls.lock().unwrap().len();
    let err = e.apply(&cloud, STACK, &g, None, &Silent).await.unwrap_err();
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
    e.apply(&cloud, STACK, &g, None, &Silent).await.unwrap();
    let out = e
        .destroy(&cloud, STACK, Some(&g), false, &Silent)
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
        .destroy(&cloud, STACK, Some(&g), false, &Silent)
        .await
        .unwrap();
    assert!(again.deleted.is_empty() && again.is_complete());
}

#[tokio::test]
async fn one_observation_serves_every_stack() {
    let cloud = cloud();
    let e = engine();
    e.apply(&cloud, STACK, &graph(&["a"], 80), None, &Silent)
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
            STACK,
            &graph(&["a"], 80),
            all.get(STACK).cloned(),
            &Silent,
        )
        .await
        .unwrap();
    assert!(out.is_ready() && out.events.is_empty());
    assert_eq!(cloud.calls.lock().unwrap().len(), before, "no call at all");
}
