//! Prints what stacks cost in AWS calls: a clean apply by operation, mutating calls per
//! resource created, and a no-change reconcile by operation (the reads per type), for the
//! network example, the same network with an RDS database, and the four reference examples
//! (the edge included). Runs against its own AWS emulator. Exits non-zero when a target is
//! missed: at most 1.1 mutating calls per resource created for the network (2.0 for the
//! application tiers, whose roles, groups and templates take a second call to record what a
//! listing does not show, and whose buckets take one call per setting); no
//! write and at most one read per type and region in a no-change reconcile (tag reads of
//! listings that carry no tags are served from memory once the resource is known), except
//! what AWS answers one resource at a time: `DescribeListeners` per load balancer, a bucket's
//! settings per bucket, a distribution's configuration per distribution, a zone's records per
//! zone.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use webstack::api::WebStack;
use webstack::aws::client::CallCounts;
use webstack::engine::Silent;
use webstack::stack;
use webstack_tests::{connect, example, example_secrets, public_zone, Moto};

fn print(title: &str, calls: &CallCounts) {
    println!("{title}: {} calls", calls.total());
    for (service, op, n) in calls.operations() {
        println!("  {service:<5} {op:<34} {n:>4}");
    }
}

fn with_database() -> WebStack {
    let mut s = example("network-only.yaml", "bench-database");
    s.spec.database = Some(
        serde_yaml::from_str(
            "kind: Rds\nrds:\n  engine: Postgres\n  version: \"16\"\n  deletionProtection: false\n",
        )
        .expect("a database spec"),
    );
    s
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut ok = true;
    for (title, stack, per_resource) in [
        (
            "network-only.yaml",
            example("network-only.yaml", "bench"),
            1.1,
        ),
        (
            "network-only.yaml with an RDS database",
            with_database(),
            1.1,
        ),
        ("starttech.yaml", example("starttech.yaml", "bench"), 2.0),
        (
            "multi-az-mysql.yaml",
            example("multi-az-mysql.yaml", "bench"),
            2.0,
        ),
        (
            "stockholm-two-tier.yaml",
            example("stockholm-two-tier.yaml", "bench"),
            2.0,
        ),
        ("tekamolo.yaml", example("tekamolo.yaml", "bench"), 2.0),
    ] {
        println!("== {title}");
        ok &= scenario(stack, per_resource).await;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Applies `stack` twice against a fresh emulator; whether the targets were met.
async fn scenario(stack: WebStack, per_resource: f64) -> bool {
    let moto = Moto::start();
    let (connect, api) = connect(&moto.url());
    // A zone the stack writes into but does not own exists beforehand.
    if let Some(dns) = stack.spec.dns.as_ref().filter(|d| !d.create_zone) {
        public_zone(&moto.url(), &dns.zone).await;
    }
    let global = stack.spec.region.as_deref() == Some(webstack::aws::GLOBAL_REGION);
    let p = stack::prepare_with(stack, &connect, example_secrets())
        .await
        .expect("prepare");
    let started = Instant::now();
    let first = p
        .apply_until_ready(Duration::from_secs(600), &Silent)
        .await
        .expect("apply");
    let apply_time = started.elapsed();
    let clean = api.counts();
    // Every resource of a clean apply was created by it (over one or more passes).
    let created = first.resources.len();
    let mutating: u64 = clean.mutating().iter().map(|(_, _, n)| n).sum();
    print("clean apply", &clean);
    let ratio = mutating as f64 / created.max(1) as f64;
    println!("resources created: {created}; mutating calls: {mutating}; per resource: {ratio:.3} (target <= {per_resource})");
    println!("clean apply wall time against the emulator: {apply_time:?}");

    let started = Instant::now();
    p.apply_until_ready(Duration::from_secs(600), &Silent)
        .await
        .expect("second apply");
    let noop_time = started.elapsed();
    let noop = api.counts().difference(&clean);
    print("no-change reconcile", &noop);
    let writes: u64 = noop.mutating().iter().map(|(_, _, n)| n).sum();
    let balancers = first
        .resources
        .keys()
        .filter(|id| id.kind == webstack::aws::backend::LOAD_BALANCER)
        .count() as u64;
    let count = |kind| first.resources.keys().filter(|id| id.kind == kind).count() as u64;
    let buckets = count(webstack::aws::storage::BUCKET);
    let distributions = count(webstack::aws::cdn::DISTRIBUTION);
    let zones = first
        .resources
        .values()
        .filter(|o| o.kind == webstack::aws::dns::RECORD)
        .filter_map(|o| o.str("zone"))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    // What is read once per resource, and what once in each region (the stack's and, for a
    // stack elsewhere, the global region of CloudFront's certificates and alarms).
    let allowance = |service: &str, op: &str| -> Option<u64> {
        match (service, op) {
            ("elasticloadbalancing", "DescribeListeners") => Some(balancers),
            ("s3", "GetBucketVersioning" | "GetBucketEncryption" | "GetPublicAccessBlock")
            | ("s3", "GetBucketOwnershipControls" | "GetBucketPolicy") => Some(buckets),
            ("cloudfront", "GetDistributionConfig") => Some(distributions),
            ("route53", "ListResourceRecordSets") => Some(zones),
            ("acm", "ListCertificates")
            | ("cloudwatch", "DescribeAlarms")
            | ("sns", "ListTopics")
                if !global =>
            {
                Some(2)
            }
            _ => None,
        }
    };
    let mut over: Vec<String> = Vec::new();
    let mut max_reads = 0;
    for (service, op, n) in noop.reads() {
        match allowance(&service, &op) {
            Some(allowed) if n > allowed => over.push(format!("{service} {op}: {n} > {allowed}")),
            Some(_) => {}
            None => {
                max_reads = max_reads.max(n);
                if n > 1 {
                    over.push(format!("{service} {op}: {n} > 1"));
                }
            }
        }
    }
    println!("no-change reconcile: {writes} writes (target 0); at most {max_reads} reads of one type (target <= 1, besides per-resource reads: {balancers} load balancers, {buckets} buckets, {distributions} distributions, {zones} zones); {noop_time:?}");

    let mut ok = true;
    if !over.is_empty() {
        println!("MISSED: more reads than the target: {}", over.join("; "));
        ok = false;
    }
    if ratio > per_resource {
        println!("MISSED: mutating calls per resource {ratio:.3} > {per_resource}");
        ok = false;
    }
    if writes > 0 {
        println!("MISSED: the no-change reconcile wrote");
        ok = false;
    }
    ok
}
