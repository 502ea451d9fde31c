//! The network tier against the AWS emulator: what apply makes, what a second apply costs,
//! drift, in-place updates, deletion, and faults.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};
use webstack::api::NatGateways;
use webstack::engine::{Action, Silent};
use webstack::stack::{self, StackError};
use webstack_tests::*;

const TIMEOUT: Duration = Duration::from_secs(300);

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_example_reaches_ready_and_is_wired_as_specified() {
    let moto = Moto::start();
    let (connect, _) = connect(&moto.url());
    let stack = example("network-only.yaml", "wired");
    let p = stack::prepare(stack, &connect).await.unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = p.status(&outcome, None);
    assert_eq!(status.conditions[0].type_, "Ready");
    assert_eq!(status.conditions[0].status, "True");
    let net = status.outputs.unwrap().network.unwrap();

    // Everything below is read from the emulator, not from the operator's view.
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned_by("default/wired"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    assert_eq!(vpc.vpc_id(), Some(net.vpc_id.as_str()));
    let vpc_id = net.vpc_id.as_str();
    let tags: BTreeSet<(String, String)> = vpc
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect();
    for expected in [
        ("webstack.io/stack", "default/wired"),
        ("webstack.io/component", "network/vpc"),
        ("Name", "wired-vpc"),
        ("team", "platform"),
    ] {
        assert!(
            tags.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "VPC tag {expected:?} missing: {tags:?}"
        );
    }
    let dns = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dns.enable_dns_hostnames().and_then(|b| b.value()),
        Some(true)
    );

    // Subnets: two public and two private, one of each per zone, in the computed ranges.
    let subnets = ec2
        .describe_subnets()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let got: BTreeSet<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                s.cidr_block().unwrap().to_owned(),
                s.availability_zone().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("10.0.0.0/20", "eu-west-1a"),
        ("10.0.16.0/20", "eu-west-1b"),
        ("10.0.128.0/20", "eu-west-1a"),
        ("10.0.144.0/20", "eu-west-1b"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    let subnet_cidr = |id: &str| {
        subnets
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(id))
            .unwrap()
            .cidr_block()
            .unwrap()
            .to_owned()
    };
    assert_eq!(subnet_cidr(&net.public_subnet_ids[0]), "10.0.0.0/20");
    assert_eq!(subnet_cidr(&net.private_subnet_ids[1]), "10.0.144.0/20");

    // The internet gateway is attached; one NAT gateway, in the first public subnet, with the EIP.
    let igws = ec2
        .describe_internet_gateways()
        .filters(owned_by("default/wired"))
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = &igws.internet_gateways()[0];
    let igw_id = igw.internet_gateway_id().unwrap();
    assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id));
    let nats = ec2
        .describe_nat_gateways()
        .filter(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let nats: Vec<_> = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
        .collect();
    assert_eq!(nats.len(), 1);
    let nat = nats[0];
    let nat_id = nat.nat_gateway_id().unwrap();
    assert_eq!(nat.subnet_id(), Some(net.public_subnet_ids[0].as_str()));
    let eips = ec2
        .describe_addresses()
        .filters(owned_by("default/wired"))
        .send()
        .await
        .unwrap();
    assert_eq!(eips.addresses().len(), 1);
    assert_eq!(
        nat.nat_gateway_addresses()[0].allocation_id(),
        eips.addresses()[0].allocation_id()
    );
    assert_eq!(
        net.nat_public_ips,
        vec![eips.addresses()[0].public_ip().unwrap().to_owned()]
    );

    // Routes: public subnets to the internet gateway, private subnets to the NAT gateway.
    let rts = ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let table_of = |subnet: &str| {
        rts.route_tables()
            .iter()
            .find(|t| {
                t.associations()
                    .iter()
                    .any(|a| a.subnet_id() == Some(subnet))
            })
            .unwrap_or_else(|| panic!("subnet {subnet} has no route table"))
    };
    let default_target = |t: &aws_sdk_ec2::types::RouteTable| {
        t.routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .map(|r| r.nat_gateway_id().or(r.gateway_id()).unwrap().to_owned())
    };
    for s in &net.public_subnet_ids {
        assert_eq!(default_target(table_of(s)).as_deref(), Some(igw_id));
    }
    for s in &net.private_subnet_ids {
        assert_eq!(default_target(table_of(s)).as_deref(), Some(nat_id));
    }

    // The S3 gateway endpoint serves every table of the stack.
    let eps = ec2
        .describe_vpc_endpoints()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    assert_eq!(eps.vpc_endpoints().len(), 1);
    let ep = &eps.vpc_endpoints()[0];
    assert_eq!(ep.service_name(), Some("com.amazonaws.eu-west-1.s3"));
    let owned_tables: BTreeSet<&str> = rts
        .route_tables()
        .iter()
        .filter(|t| {
            t.tags()
                .iter()
                .any(|tag| tag.key() == Some("webstack.io/stack"))
        })
        .map(|t| t.route_table_id().unwrap())
        .collect();
    assert_eq!(owned_tables.len(), 3);
    assert_eq!(
        ep.route_table_ids()
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        owned_tables
    );

    // The security-group chain.
    let sgs = ec2
        .describe_security_groups()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let group = |role: &str| net.security_group_ids[role].clone();
    let ingress = |role: &str| -> BTreeSet<(i32, String)> {
        let g = sgs
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(group(role).as_str()))
            .unwrap();
        g.ip_permissions()
            .iter()
            .flat_map(|p| {
                let port = p.from_port().unwrap_or(-1);
                p.ip_ranges()
                    .iter()
                    .map(move |r| (port, r.cidr_ip().unwrap().to_owned()))
                    .chain(
                        p.user_id_group_pairs()
                            .iter()
                            .map(move |u| (port, u.group_id().unwrap().to_owned())),
                    )
            })
            .collect()
    };
    let set = |items: &[(i32, String)]| items.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        ingress("load-balancer"),
        set(&[(80, "0.0.0.0/0".into()), (443, "0.0.0.0/0".into())])
    );
    assert_eq!(
        ingress("app"),
        set(&[
            (8080, group("load-balancer")),
            (22, "203.0.113.0/24".into())
        ])
    );
    assert_eq!(ingress("database"), set(&[(5432, group("app"))]));
    assert_eq!(ingress("cache"), set(&[(6379, group("app"))]));
    assert_eq!(status.inventory.len(), outcome.resources.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_only_reads_once_per_type_and_plans_nothing() {
    let moto = Moto::start();
    let (connect, api) = connect(&moto.url());
    let p = stack::prepare(example("network-only.yaml", "again"), &connect)
        .await
        .unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let before = api.counts();
    let second = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let calls = api.counts().difference(&before);
    assert!(
        second.events.is_empty(),
        "a no-change apply acted: {:?}",
        second.events
    );
    assert_eq!(
        calls.mutating(),
        vec![],
        "a no-change apply made mutating calls"
    );
    // Once per type and region: CloudFront's certificates, alarms and their topic live in
    // us-east-1, whatever the stack's region, and are read there too.
    let global = ["ListCertificates", "DescribeAlarms", "ListTopics"];
    for (service, op, n) in calls.reads() {
        let regions = if global.contains(&op.as_str()) { 2 } else { 1 };
        assert_eq!(
            n, regions,
            "{service} {op} was called {n} times in a no-change apply"
        );
    }
    assert!(calls.total() >= 9, "every family is observed: {calls:?}");
    assert!(p.plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_rule_changes_show_in_the_plan_and_are_undone() {
    let moto = Moto::start();
    let (connect, _) = connect(&moto.url());
    let p = stack::prepare(example("network-only.yaml", "drift"), &connect)
        .await
        .unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let net = p.status(&outcome, None).outputs.unwrap().network.unwrap();
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let lb = net.security_group_ids["load-balancer"].clone();
    let app = net.security_group_ids["app"].clone();
    let perm = |port: i32, cidr: &str| {
        IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port)
            .to_port(port)
            .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
            .build()
    };
    // Someone removes HTTPS from the load balancer and opens the database port on the app.
    ec2.revoke_security_group_ingress()
        .group_id(&lb)
        .ip_permissions(perm(443, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&app)
        .ip_permissions(perm(3306, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();

    let plan = p.plan().await.unwrap();
    let creates: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .collect();
    let deletes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    assert_eq!(creates.len(), 1, "{:?}", plan.changes);
    assert_eq!(creates[0].role, "load-balancer-443-from-anywhere");
    assert_eq!(deletes.len(), 1, "{:?}", plan.changes);
    assert!(deletes[0]
        .id
        .as_deref()
        .unwrap()
        .contains("|3306|3306|0.0.0.0/0"));

    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let groups = ec2
        .describe_security_groups()
        .group_ids(&lb)
        .group_ids(&app)
        .send()
        .await
        .unwrap();
    let ports = |id: &str| -> BTreeSet<i32> {
        groups
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(id))
            .unwrap()
            .ip_permissions()
            .iter()
            .filter_map(|p| p.from_port())
            .collect()
    };
    assert_eq!(ports(&lb), BTreeSet::from([80, 443]));
    assert_eq!(ports(&app), BTreeSet::from([22, 8080]));
    assert!(p.plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_and_nat_mode_change_in_place() {
    let moto = Moto::start();
    let (connect, _) = connect(&moto.url());
    let mut stack = example("network-only.yaml", "grow");
    stack.spec.network.az_count = Some(1);
    let p = stack::prepare(stack.clone(), &connect).await.unwrap();
    let first = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let vpc_id = p
        .status(&first, None)
        .outputs
        .unwrap()
        .network
        .unwrap()
        .vpc_id;

    stack.spec.network.az_count = Some(3);
    stack.spec.network.nat_gateways = NatGateways::PerAz;
    let p = stack::prepare(stack, &connect).await.unwrap();
    let plan = p.plan().await.unwrap();
    assert_eq!(plan.count(Action::Replace), 0);
    assert_eq!(plan.count(Action::Refuse), 0);
    assert_eq!(plan.count(Action::Delete), 0, "{:?}", plan.changes);
    let second = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let net = p.status(&second, None).outputs.unwrap().network.unwrap();
    assert_eq!(net.vpc_id, vpc_id, "the VPC was kept");
    assert_eq!(net.public_subnet_ids.len(), 3);
    assert_eq!(net.private_subnet_ids.len(), 3);
    assert_eq!(net.nat_public_ips.len(), 3);

    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let nats = ec2
        .describe_nat_gateways()
        .filter(vpc_filter(&vpc_id))
        .send()
        .await
        .unwrap();
    let live: Vec<_> = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
        .collect();
    assert_eq!(live.len(), 3);
    // Each private subnet now leaves through the NAT gateway of its own zone.
    let rts = ec2
        .describe_route_tables()
        .filters(vpc_filter(&vpc_id))
        .send()
        .await
        .unwrap();
    let subnets = ec2
        .describe_subnets()
        .filters(vpc_filter(&vpc_id))
        .send()
        .await
        .unwrap();
    let zone = |subnet: &str| {
        subnets
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(subnet))
            .unwrap()
            .availability_zone()
            .unwrap()
            .to_owned()
    };
    for s in &net.private_subnet_ids {
        let table = rts
            .route_tables()
            .iter()
            .find(|t| {
                t.associations()
                    .iter()
                    .any(|a| a.subnet_id() == Some(s.as_str()))
            })
            .unwrap();
        let nat = table
            .routes()
            .iter()
            .find_map(|r| r.nat_gateway_id())
            .unwrap();
        let nat_subnet = live
            .iter()
            .find(|n| n.nat_gateway_id() == Some(nat))
            .unwrap()
            .subnet_id()
            .unwrap();
        assert_eq!(zone(nat_subnet), zone(s));
    }
    assert!(p.plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpc_cidr_change_is_refused_naming_the_field_with_no_change() {
    let moto = Moto::start();
    let (connect, api) = connect(&moto.url());
    let mut stack = example("network-only.yaml", "immutable");
    let p = stack::prepare(stack.clone(), &connect).await.unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    stack.spec.network.vpc_cidr = "10.1.0.0/16".into();
    let p = stack::prepare(stack, &connect).await.unwrap();
    let plan = p.plan().await.unwrap();
    let refused: Vec<_> = plan.refused().collect();
    assert!(
        refused
            .iter()
            .any(|c| c.kind.0 == "Vpc" && c.changes.iter().any(|f| f.field == "cidr")),
        "{refused:?}"
    );
    let before = api.counts();
    let err = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap_err();
    assert!(matches!(err, StackError::Engine(_)));
    assert_eq!(err.reason(), "ReplacementRefused");
    let text = err.to_string();
    assert!(
        text.contains("Vpc vpc") && text.contains("cidr cannot be changed in place"),
        "{text}"
    );
    assert_eq!(api.counts().difference(&before).mutating(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_everything_the_stack_owns_and_nothing_else() {
    let moto = Moto::start();
    let (connect, _) = connect(&moto.url());
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let pristine = census(&ec2).await;
    let keep = stack::prepare(example("network-only.yaml", "neighbour"), &connect)
        .await
        .unwrap();
    keep.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let with_neighbour = census(&ec2).await;
    let p = stack::prepare(example("network-only.yaml", "doomed"), &connect)
        .await
        .unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    assert!(owned_count(&ec2, "default/doomed").await > 0);

    let out = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(out.is_complete(), "{:?}", out.failures);
    assert_eq!(owned_count(&ec2, "default/doomed").await, 0);
    assert_eq!(
        census(&ec2).await,
        with_neighbour,
        "exactly the neighbour's resources remain, EIPs included"
    );
    // Destroying again finds nothing and succeeds.
    assert!(p
        .destroy_until_gone(TIMEOUT, &Silent)
        .await
        .unwrap()
        .deleted
        .is_empty());
    keep.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert_eq!(census(&ec2).await, pristine);
}

/// Two owners (two clusters, or a cluster and the CLI) with a stack of the same namespace and
/// name in one account: each builds and deletes its own resources, and reports the other's as
/// foreign instead of adopting or deleting them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_of_a_stack_of_the_same_name_never_touch_each_other() {
    let moto = Moto::start();
    let (connect, _) = connect(&moto.url());
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let pristine = census(&ec2).await;
    let owned = |uid: &str| {
        let mut s = example("network-only.yaml", "twin");
        s.metadata.uid = Some(uid.to_owned());
        s
    };
    let first = stack::prepare(owned("uid-cluster-a"), &connect)
        .await
        .unwrap();
    first.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let one = census(&ec2).await;
    let second = stack::prepare(owned("uid-cluster-b"), &connect)
        .await
        .unwrap();
    let out = second.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    assert!(out.deleted.is_empty(), "nothing of the first owner deleted");
    assert!(
        !out.foreign.is_empty(),
        "the first owner's resources are reported"
    );
    assert!(out
        .foreign
        .iter()
        .all(|o| o.owner.as_deref() == Some("uid-cluster-a")));
    let status = second.status(&out, None);
    let ready = &status.conditions[0];
    assert!(
        ready
            .message
            .contains("belong to another owner (uid-cluster-a)"),
        "{}",
        ready.message
    );
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned_by("default/twin"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 2, "each owner has its own VPC");
    // The first owner sees no change to make: the second's resources are not its own.
    assert!(first.plan().await.unwrap().is_empty());
    let gone = second.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(gone.is_complete(), "{:?}", gone.failures);
    assert_eq!(
        census(&ec2).await,
        one,
        "exactly the first owner's resources remain"
    );
    assert!(first.plan().await.unwrap().is_empty());
    first.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert_eq!(census(&ec2).await, pristine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_leaves_everything_and_releases_the_claim() {
    let moto = Moto::start();
    let (connect, _) = connect(&moto.url());
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let mut stack = example("network-only.yaml", "kept");
    stack.spec.deletion_policy = webstack::api::DeletionPolicy::Retain;
    let p = stack::prepare(stack, &connect).await.unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let applied = census(&ec2).await;
    let out = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(out.is_complete(), "{:?}", out.failures);
    assert!(out.deleted.is_empty());
    assert_eq!(census(&ec2).await, applied, "nothing was deleted");
    assert_eq!(
        owned_count(&ec2, "default/kept").await,
        0,
        "no resource is claimed by the stack any more"
    );
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:Name")
                .values("kept-vpc")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "the VPC stays, with its Name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_through_throttling_and_unavailability() {
    let moto = Moto::start();
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let pristine = census(&ec2).await;

    // A clean apply on a clean emulator: the reference.
    let (clean, _) = connect(&moto.url());
    let p = stack::prepare(example("network-only.yaml", "faults"), &clean)
        .await
        .unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let reference = census(&ec2).await;
    p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert_eq!(census(&ec2).await, pristine);

    // The same apply with 20% of the calls refused.
    let proxy = FaultyProxy::start(&moto.url(), 0.2, 7);
    let (faulty, api) = connect(&proxy.url());
    let p = stack::prepare(example("network-only.yaml", "faults"), &faulty)
        .await
        .unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let (forwarded, throttled, unavailable) = proxy.stats();
    assert!(
        throttled > 0 && unavailable > 0,
        "faults were injected: {forwarded} {throttled} {unavailable}"
    );
    let counts = api.counts();
    // Every service the observation reads (EC2, and RDS for the database kinds) met faults.
    let refused: u64 = counts
        .0
        .values()
        .flat_map(|ops| ops.values())
        .flat_map(|o| o.iter().filter(|(k, _)| *k != "ok").map(|(_, n)| n))
        .sum();
    assert_eq!(
        refused,
        throttled + unavailable,
        "every fault reached the call layer and was retried"
    );
    assert_eq!(
        census(&ec2).await,
        reference,
        "the same resources, no duplicates"
    );
    assert!(p.plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_change_is_refused_before_any_aws_call() {
    let tripwire = Tripwire::start();
    let (connect, api) = connect(&tripwire.url());
    let mut stack = example("network-only.yaml", "moved");
    stack.status = Some(webstack::api::WebStackStatus {
        region: Some("eu-central-1".into()),
        ..Default::default()
    });
    let err = stack::prepare(stack, &connect)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.reason(), "InvalidSpec");
    assert!(
        err.to_string()
            .contains("spec.region: the stack lives in eu-central-1"),
        "{err}"
    );
    assert_eq!(api.counts().total(), 0);
    assert_eq!(tripwire.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}
