//! Runs a dependency graph: each node starts as soon as all of its dependencies succeeded, up to
//! a bound of nodes at once. A failed node blocks only what depends on it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;

use futures::stream::{FuturesUnordered, StreamExt};

/// What became of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T, E> {
    Done(T),
    Failed(E),
    /// Not run because this dependency failed or was blocked.
    Blocked(String),
}

/// A graph that has a cycle cannot be run; this names a node on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle through {0}")]
pub struct CycleError(pub String);

/// The nodes in an order where every node comes after its dependencies (dependencies that are
/// not nodes of the graph are ignored).
pub fn topological_order<K>(deps: &BTreeMap<K, Vec<K>>) -> Result<Vec<K>, CycleError>
where
    K: Ord + Clone + std::fmt::Display,
{
    let mut indegree: BTreeMap<&K, usize> = deps.keys().map(|k| (k, 0)).collect();
    let mut dependents: BTreeMap<&K, Vec<&K>> = BTreeMap::new();
    for (k, ds) in deps {
        for d in ds.iter().filter(|d| deps.contains_key(*d)) {
            *indegree.entry(k).or_default() += 1;
            dependents.entry(d).or_default().push(k);
        }
    }
    let mut queue: VecDeque<&K> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(k) = queue.pop_front() {
        order.push(k.clone());
        for d in dependents.get(k).into_iter().flatten() {
            let n = indegree.get_mut(d).expect("every dependent is a node");
            *n -= 1;
            if *n == 0 {
                queue.push_back(d);
            }
        }
    }
    if order.len() < deps.len() {
        let stuck = indegree
            .iter()
            .find(|(_, n)| **n > 0)
            .map(|(k, _)| k.to_string())
            .unwrap_or_default();
        return Err(CycleError(stuck));
    }
    Ok(order)
}

/// Runs `work` for every node of `deps` (node -> its dependencies), at most `limit` at once,
/// each as soon as its dependencies are done. Dependencies outside the graph count as done.
pub async fn run<K, T, E, F, Fut>(
    deps: &BTreeMap<K, Vec<K>>,
    limit: usize,
    work: F,
) -> Result<HashMap<K, Outcome<T, E>>, CycleError>
where
    K: Ord + Hash + Clone + std::fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    topological_order(deps)?;
    let limit = limit.max(1);
    let mut waiting: HashMap<K, usize> = HashMap::new();
    let mut dependents: HashMap<K, Vec<K>> = HashMap::new();
    for (k, ds) in deps {
        let inside: BTreeSet<&K> = ds.iter().filter(|d| deps.contains_key(*d)).collect();
        waiting.insert(k.clone(), inside.len());
        for d in inside {
            dependents.entry(d.clone()).or_default().push(k.clone());
        }
    }
    let mut ready: VecDeque<K> = deps.keys().filter(|k| waiting[*k] == 0).cloned().collect();
    let mut outcomes: HashMap<K, Outcome<T, E>> = HashMap::new();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < limit {
            let Some(k) = ready.pop_front() else { break };
            let fut = work(k.clone());
            running.push(async move { (k, fut.await) });
        }
        let Some((k, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(value) => {
                for d in dependents.get(&k).into_iter().flatten() {
                    let n = waiting.get_mut(d).expect("every dependent is a node");
                    *n -= 1;
                    if *n == 0 && !outcomes.contains_key(d) {
                        ready.push_back(d.clone());
                    }
                }
                outcomes.insert(k, Outcome::Done(value));
            }
            Err(e) => {
                let mut stack = vec![k.clone()];
                while let Some(failed) = stack.pop() {
                    for d in dependents.get(&failed).into_iter().flatten() {
                        if !outcomes.contains_key(d) {
                            outcomes.insert(d.clone(), Outcome::Blocked(failed.to_string()));
                            stack.push(d.clone());
                        }
                    }
                }
                outcomes.insert(k, Outcome::Failed(e));
            }
        }
    }
    Ok(outcomes)
}

/// The same graph with every edge reversed: for deleting in the reverse order of creation.
pub fn reversed<K: Ord + Clone>(deps: &BTreeMap<K, Vec<K>>) -> BTreeMap<K, Vec<K>> {
    let mut out: BTreeMap<K, Vec<K>> = deps.keys().map(|k| (k.clone(), Vec::new())).collect();
    for (k, ds) in deps {
        for d in ds {
            if let Some(v) = out.get_mut(d) {
                v.push(k.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(k, ds)| (k.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn orders_dependencies_first_and_finds_cycles() {
        let g = graph(&[
            ("subnet", &["vpc"]),
            ("vpc", &[]),
            ("nat", &["subnet", "eip"]),
            ("eip", &[]),
        ]);
        let order = topological_order(&g).unwrap();
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(
            pos("vpc") < pos("subnet") && pos("subnet") < pos("nat") && pos("eip") < pos("nat")
        );
        let cyclic = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert!(topological_order(&cyclic).is_err());
    }

    #[test]
    fn reversing_turns_creation_order_into_deletion_order() {
        let g = graph(&[("subnet", &["vpc"]), ("vpc", &[])]);
        let r = reversed(&g);
        assert_eq!(r["vpc"], vec!["subnet".to_string()]);
        assert!(r["subnet"].is_empty());
    }

    /// Independent nodes run at once: the wall time follows the longest chain, not the sum.
    #[tokio::test]
    async fn wall_time_follows_the_longest_chain() {
        // Chain a -> b -> c (3 x 100 ms) beside ten independent 100 ms nodes and a 200 ms node
        // that depends on a: the longest chain is 300 ms, the sum 1500 ms.
        let mut edges: Vec<(String, Vec<String>)> = vec![
            ("a".into(), vec![]),
            ("b".into(), vec!["a".into()]),
            ("c".into(), vec!["b".into()]),
            ("long".into(), vec!["a".into()]),
        ];
        for i in 0..10 {
            edges.push((format!("free{i}"), vec![]));
        }
        let deps: BTreeMap<String, Vec<String>> = edges.into_iter().collect();
        let cost = |k: &str| if k == "long" { 200 } else { 100 };
        let sum: u64 = deps.keys().map(|k| cost(k)).sum();
        let finished: Arc<Mutex<Vec<String>>> = Arc::default();
        let started = Instant::now();
        let outcomes = run(&deps, 16, |k: String| {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(cost(&k))).await;
                finished.lock().unwrap().push(k.clone());
                Ok::<_, ()>(k)
            }
        })
        .await
        .unwrap();
        let wall = started.elapsed();
        let longest_chain = Duration::from_millis(300);
        assert!(outcomes.values().all(|o| matches!(o, Outcome::Done(_))));
        assert!(
            wall < longest_chain.mul_f64(1.2),
            "wall {wall:?}, longest chain {longest_chain:?}, sum {sum} ms"
        );
        let order = finished.lock().unwrap().clone();
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("a") < pos("b") && pos("b") < pos("c"));
    }

    #[tokio::test]
    async fn the_bound_limits_nodes_in_flight() {
        let deps: BTreeMap<String, Vec<String>> =
            (0..8).map(|i| (format!("n{i}"), vec![])).collect();
        let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
        run(&deps, 3, |_k: String| {
            let in_flight = in_flight.clone();
            async move {
                {
                    let mut g = in_flight.lock().unwrap();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                in_flight.lock().unwrap().0 -= 1;
                Ok::<_, ()>(())
            }
        })
        .await
        .unwrap();
        assert_eq!(in_flight.lock().unwrap().1, 3);
    }

    #[tokio::test]
    async fn a_failure_blocks_only_its_dependents() {
        let g = graph(&[
            ("vpc", &[]),
            ("subnet", &["vpc"]),
            ("nat", &["subnet"]),
            ("eip", &[]),
        ]);
        let outcomes = run(&g, 4, |k: String| async move {
            if k == "subnet" {
                Err("boom")
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(outcomes["vpc"], Outcome::Done(()));
        assert_eq!(outcomes["eip"], Outcome::Done(()));
        assert_eq!(outcomes["subnet"], Outcome::Failed("boom"));
        assert_eq!(outcomes["nat"], Outcome::Blocked("subnet".into()));
    }
}
