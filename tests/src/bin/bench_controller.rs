//! The controller at scale: `webstack run` as a process against a real API server and the AWS
//! emulator (behind a counting proxy), with 1, 10 and 100 network stacks created at once (or
//! the counts in `WEBSTACK_BENCH_STACKS`, comma separated). For each count it prints the time
//! until every stack is Ready, the AWS reads and writes per resync cycle in steady state (from
//! the controller's `/metrics`, checked against the proxy's count of the requests it
//! forwarded), and the controller's resident memory; with the largest count, the time a stack
//! created while all the others are Ready takes to become Ready (the median of three), against
//! the time one stack takes alone.
//!
//! Exits non-zero when a target is missed: a stack that never becomes Ready, any write in
//! steady state, more steady reads per cycle than one per resource type and page (whatever the
//! number of stacks), `/metrics` disagreeing with the proxy, or the late stack taking more
//! than twice as long as one alone. `WEBSTACK_BIN` runs another build of `webstack` (a release
//! build for the memory figure).

use std::collections::BTreeMap;
use std::process::{Child, ExitCode, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use webstack::api::WebStack;
use webstack_tests::apiserver::{crd_file, install_crd, ApiServer};
use webstack_tests::{
    controller_command, example, free_port, http, scrape_aws_calls, FaultyProxy, Moto,
};

/// Resync interval of the measured controller.
const RESYNC: Duration = Duration::from_secs(20);
/// Batched reads in one observation of every stack: one call per resource family and region
/// the engine knows (about 35, some in two regions), with room for pages. It does not grow
/// with the number of stacks.
const BATCHED_READS_LIMIT: f64 = 45.0;
/// Reads AWS answers for one resource at a time, with how many each stack needs per
/// observation: a VPC's DNS attribute.
const PER_RESOURCE: &[(&str, f64)] = &[("DescribeVpcAttribute", 1.0)];

struct Controller {
    child: Child,
    metrics: u16,
}

impl Controller {
    fn start(server: &ApiServer, aws: &str, namespace: &str) -> Controller {
        let metrics = free_port();
        let child = controller_command(&server.kubeconfig(), aws)
            .args(["--namespace", namespace])
            .args(["--resync-seconds", &RESYNC.as_secs().to_string()])
            .args(["--retry-seconds", "2", "--concurrency", "8"])
            .args(["--aws-requests-per-second", "50"])
            .args(["--metrics-address", &format!("127.0.0.1:{metrics}")])
            .env(
                "WEBSTACK_LOG",
                std::env::var("WEBSTACK_BENCH_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            )
            .stderr(match std::env::var_os("WEBSTACK_BENCH_LOG") {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("the log file")),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("start webstack run");
        let c = Controller { child, metrics };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(metrics, "GET", "/readyz") {
                return c;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the controller did not become ready");
    }

    fn calls(&self) -> BTreeMap<(String, String, String), u64> {
        scrape_aws_calls(self.metrics)
    }

    /// Shared observations read so far.
    fn snapshots(&self) -> u64 {
        let (_, body) = http(self.metrics, "GET", "/metrics").expect("scrape /metrics");
        body.lines()
            .filter(|l| l.starts_with("webstack_shared_observation_reads_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Waits until the controller has read every stack `n` times in all.
    async fn wait_for_snapshots(&self, n: u64) {
        // A read of every stack can take longer than the resync interval in the emulator
        // (its describes scan everything it holds): wait for two such reads.
        let limit = Duration::from_secs(240);
        let deadline = Instant::now() + limit;
        while self.snapshots() < n {
            assert!(
                Instant::now() < deadline,
                "no read of every stack for {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The controller's AWS call total and the proxy's count of the requests it answered,
    /// taken when no answer is on its way (the two agree then, or they never will).
    fn totals(&self, proxy: &FaultyProxy) -> (u64, u64) {
        let total = |c: &BTreeMap<(String, String, String), u64>| c.values().sum::<u64>();
        let mut last = (0, 0);
        for _ in 0..200 {
            let before = total(&self.calls());
            let forwarded = proxy.answered();
            let after = total(&self.calls());
            last = (after, forwarded);
            if before == after && after == forwarded {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last
    }

    /// Resident memory in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ready(ws: &WebStack) -> bool {
    ws.status.as_ref().is_some_and(|s| {
        s.observed_generation == ws.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Creates stacks `first..first+n` and returns once all are Ready (or `None` on time-out).
async fn create_and_wait(
    api: &Api<WebStack>,
    first: usize,
    n: usize,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    for i in first..first + n {
        let mut ws = example("network-only.yaml", &format!("s{i:04}"));
        ws.metadata.namespace = None;
        api.create(&PostParams::default(), &ws)
            .await
            .expect("create a stack");
    }
    let names: Vec<String> = (first..first + n).map(|i| format!("s{i:04}")).collect();
    loop {
        let list = api.list(&Default::default()).await.expect("list stacks");
        let done = list
            .items
            .iter()
            .filter(|w| names.contains(&w.metadata.name.clone().unwrap_or_default()) && ready(w))
            .count();
        if done == n {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            eprintln!("  only {done} of {n} stacks Ready after {limit:?}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn is_read(op: &str) -> bool {
    webstack::aws::client::is_read_operation(op)
}

struct Phase {
    stacks: usize,
    ready_after: Option<Duration>,
    /// How long the steady state was watched: two reads of every stack.
    window: Duration,
    batched_reads: f64,
    per_resource_reads: f64,
    writes: u64,
    by_operation: BTreeMap<String, u64>,
    metrics_total: u64,
    proxy_total: u64,
    rss_mib: f64,
    late_stack: Option<Duration>,
}

async fn phase(server: &ApiServer, client: &kube::Client, n: usize, late: bool) -> Phase {
    let moto = Moto::start();
    let proxy = FaultyProxy::start(&moto.url(), 0.0, 1);
    let namespace = format!("bench-{n}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
    let controller = Controller::start(server, &proxy.url(), &namespace);
    let api: Api<WebStack> = Api::namespaced(client.clone(), &namespace);
    let limit = Duration::from_secs(120 + 6 * n as u64);
    let ready_after = create_and_wait(&api, 0, n, limit).await;
    // Steady state: let the stacks' first resyncs pass, then count from the end of one read of
    // every stack to the end of the second after it (nothing is in flight at either end).
    tokio::time::sleep(RESYNC).await;
    let first = controller.snapshots();
    let steady = Instant::now();
    controller.wait_for_snapshots(first + 1).await;
    let calls_before = controller.calls();
    let (metrics_before, proxy_before) = controller.totals(&proxy);
    let snapshots = 2;
    controller.wait_for_snapshots(first + 1 + snapshots).await;
    let calls_after = controller.calls();
    let (metrics_after, proxy_after) = controller.totals(&proxy);
    // Over the steady window, each end taken when no answer is on its way.
    let (metrics_total, proxy_total) = (metrics_after - metrics_before, proxy_after - proxy_before);
    let window = steady.elapsed();
    let mut batched = 0;
    let mut per_resource = 0;
    let mut writes = 0;
    let mut by_operation = BTreeMap::new();
    for (key, n) in &calls_after {
        let d = n - calls_before.get(key).copied().unwrap_or(0);
        if d == 0 {
            continue;
        }
        *by_operation
            .entry(format!("{} {}", key.0, key.1))
            .or_insert(0) += d;
        if !is_read(&key.1) {
            writes += d;
        } else if PER_RESOURCE.iter().any(|(op, _)| *op == key.1) {
            per_resource += d;
        } else {
            batched += d;
        }
    }
    let per_snapshot = |n: u64| n as f64 / snapshots as f64;
    let rss_mib = controller.rss_mib();
    // Three stacks created one after the other while the others are Ready: the median, as
    // the time one takes depends on where the shared read of every stack stands when it
    // comes.
    let late_stack = if late {
        let mut times = Vec::new();
        for i in 0..3 {
            match create_and_wait(&api, n + i, 1, Duration::from_secs(120)).await {
                Some(t) => times.push(t),
                None => break,
            }
        }
        times.sort();
        (times.len() == 3).then(|| times[1])
    } else {
        None
    };
    Phase {
        stacks: n,
        ready_after,
        window,
        batched_reads: per_snapshot(batched),
        per_resource_reads: per_snapshot(per_resource),
        writes,
        by_operation,
        metrics_total,
        proxy_total,
        rss_mib,
        late_stack,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let counts: Vec<usize> = std::env::var("WEBSTACK_BENCH_STACKS")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let server = ApiServer::start("v1.37.2");
    install_crd(
        &server,
        &std::fs::read_to_string(crd_file()).expect("the CRD file"),
    );
    let client = server.client().await;
    let largest = counts.iter().copied().max().unwrap_or(1);
    let mut ok = true;
    let mut alone = None;
    println!(
        "controller bench: network-only stacks, resync {}s, `webstack run` as a process",
        RESYNC.as_secs()
    );
    for n in counts {
        let p = phase(&server, &client, n, n == largest && n > 1).await;
        println!("{} stacks created at once:", p.stacks);
        match p.ready_after {
            Some(t) => println!("  all Ready after          {:>8.1} s", t.as_secs_f64()),
            None => {
                println!("  MISSED: not every stack became Ready");
                ok = false;
            }
        }
        if p.stacks == 1 {
            alone = p.ready_after;
        }
        println!(
            "  steady state: two reads of every stack (one per resync cycle) in {:.0} s",
            p.window.as_secs_f64()
        );
        println!("  batched reads per cycle  {:>8.1}", p.batched_reads);
        println!(
            "  single-resource reads    {:>8.1}  per cycle",
            p.per_resource_reads
        );
        for (op, n) in &p.by_operation {
            println!("    {op:<40} {n:>5}");
        }
        println!("  steady writes            {:>8}", p.writes);
        println!("  resident memory          {:>8.1} MiB", p.rss_mib);
        println!(
            "  steady AWS calls in /metrics {} = answered through the proxy {}",
            p.metrics_total, p.proxy_total
        );
        if p.writes > 0 {
            println!("  MISSED: writes in steady state");
            ok = false;
        }
        if p.batched_reads > BATCHED_READS_LIMIT {
            println!("  MISSED: more than {BATCHED_READS_LIMIT} batched reads per cycle");
            ok = false;
        }
        let allowed: f64 = PER_RESOURCE.iter().map(|(_, k)| k * p.stacks as f64).sum();
        if p.per_resource_reads > allowed {
            println!("  MISSED: more than {allowed} single-resource reads per cycle");
            ok = false;
        }
        if p.metrics_total != p.proxy_total {
            println!("  MISSED: /metrics and the proxy disagree");
            ok = false;
        }
        if let Some(late) = p.late_stack {
            println!(
                "  a stack created while {} are Ready: Ready after {:.1} s",
                p.stacks,
                late.as_secs_f64()
            );
            if let Some(alone) = alone {
                println!("    (alone: {:.1} s)", alone.as_secs_f64());
                if late > alone * 2 {
                    println!("  MISSED: more than twice the time it takes alone");
                    ok = false;
                }
            }
        } else if p.stacks == largest && p.stacks > 1 {
            println!("  MISSED: the late stack did not become Ready");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
