use std::collections::BTreeSet;

use serde_json::json;

use super::*;
use crate::api::validate::parse_manifest;
use crate::api::{Endpoints, InterfaceEndpoint};
use crate::engine::{Graph, Prop};

fn spec(yaml_network: &str) -> NetworkSpec {
    let text = format!("apiVersion: webstack.io/v1alpha1\nkind: WebStack\nmetadata: {{name: s}}\nspec:\n  region: eu-west-1\n  network:\n{yaml_network}");
    parse_manifest(&text).unwrap().spec.network
}

fn zones(n: usize) -> Vec<String> {
    ["eu-west-1a", "eu-west-1b", "eu-west-1c"][..n]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn graph(spec: &NetworkSpec, n: usize) -> Graph {
    Graph::new(desired("s", "eu-west-1", spec, &zones(n), &[])).expect("a valid graph")
}

fn count(g: &Graph, kind: Kind) -> usize {
    g.nodes.keys().filter(|k| k.kind == kind).count()
}

fn value(g: &Graph, kind: Kind, role: &str, prop: &str) -> Prop {
    g.nodes[&NodeId::new(kind, role)].props[prop].clone()
}

#[test]
fn the_network_example_has_every_resource_once() {
    let s = spec("    vpcCidr: 10.0.0.0/16\n    privateSubnets: {}\n    natGateways: Single\n    endpoints: {s3: true}\n    sshAllowedCidrs: [203.0.113.0/24]\n    securityGroups: {databasePort: 5432, cachePort: 6379}\n");
    let g = graph(&s, 2);
    assert_eq!(count(&g, VPC), 1);
    assert_eq!(count(&g, SUBNET), 4);
    assert_eq!(count(&g, INTERNET_GATEWAY), 1);
    assert_eq!(count(&g, NAT_GATEWAY), 1);
    assert_eq!(count(&g, ELASTIC_IP), 1);
    assert_eq!(count(&g, ROUTE_TABLE), 3);
    assert_eq!(count(&g, ROUTE), 3);
    assert_eq!(count(&g, ROUTE_TABLE_ASSOCIATION), 4);
    assert_eq!(count(&g, VPC_ENDPOINT), 1);
    assert_eq!(count(&g, SECURITY_GROUP), 4);
    assert_eq!(count(&g, SECURITY_GROUP_RULE), 6);
    assert_eq!(g.nodes.len(), 31);
    // Both private subnets leave through the single NAT gateway of the first zone.
    let nat = Prop::Ref(NodeId::new(NAT_GATEWAY, "nat-eu-west-1a"));
    assert_eq!(
        value(&g, ROUTE, "private-eu-west-1a-default", "target"),
        nat
    );
    assert_eq!(
        value(&g, ROUTE, "private-eu-west-1b-default", "target"),
        nat
    );
    assert_eq!(
        value(&g, SUBNET, "private-eu-west-1b", "cidr"),
        Prop::Value(json!("10.0.144.0/20"))
    );
}

#[test]
fn the_security_group_chain_is_least_privilege() {
    let s = spec("    vpcCidr: 10.0.0.0/16\n    sshAllowedCidrs: [198.51.100.7/32]\n    securityGroups: {appPort: 3000, databasePort: 3306}\n");
    let g = graph(&s, 2);
    let rules: BTreeSet<String> = g
        .nodes
        .values()
        .filter(|n| n.id.kind == SECURITY_GROUP_RULE)
        .map(|n| {
            format!(
                "{} {:?} {:?}",
                n.id.role, n.props["fromPort"], n.props["source"]
            )
        })
        .collect();
    let sg = |r: &str| Prop::Ref(NodeId::new(SECURITY_GROUP, r));
    let expected: BTreeSet<String> = [
        (
            "load-balancer-80-from-anywhere",
            80,
            Prop::Value(json!("0.0.0.0/0")),
        ),
        (
            "load-balancer-443-from-anywhere",
            443,
            Prop::Value(json!("0.0.0.0/0")),
        ),
        ("app-3000-from-load-balancer", 3000, sg("load-balancer")),
        (
            "app-22-from-198.51.100.7/32",
            22,
            Prop::Value(json!("198.51.100.7/32")),
        ),
        ("database-3306-from-app", 3306, sg("app")),
    ]
    .into_iter()
    .map(|(r, p, s)| format!("{r} {:?} {s:?}", Prop::Value(json!(p))))
    .collect();
    assert_eq!(rules, expected);
    assert_eq!(
        count(&g, SECURITY_GROUP),
        3,
        "no cache group without a cache port"
    );
}

#[test]
fn per_zone_nat_gives_each_private_subnet_its_own_gateway() {
    let s = spec("    vpcCidr: 10.0.0.0/16\n    azCount: 3\n    privateSubnets: {}\n    natGateways: PerAz\n");
    let g = graph(&s, 3);
    assert_eq!(count(&g, NAT_GATEWAY), 3);
    assert_eq!(count(&g, ELASTIC_IP), 3);
    for az in zones(3) {
        assert_eq!(
            value(&g, ROUTE, &format!("private-{az}-default"), "target"),
            Prop::Ref(NodeId::new(NAT_GATEWAY, format!("nat-{az}")))
        );
        assert_eq!(
            value(&g, NAT_GATEWAY, &format!("nat-{az}"), "subnet"),
            Prop::Ref(NodeId::new(SUBNET, format!("public-{az}")))
        );
    }
}

#[test]
fn without_nat_private_subnets_have_no_default_route_but_keep_their_tables() {
    let s = spec("    vpcCidr: 10.0.0.0/16\n    privateSubnets: {}\n");
    let g = graph(&s, 2);
    assert_eq!(count(&g, NAT_GATEWAY), 0);
    assert_eq!(count(&g, ROUTE), 1);
    assert_eq!(count(&g, ROUTE_TABLE), 3);
}

#[test]
fn growing_zones_and_nat_mode_keeps_every_existing_node_identical_but_routes() {
    let small = graph(&spec("    vpcCidr: 10.0.0.0/16\n    azCount: 1\n    privateSubnets: {}\n    natGateways: Single\n"), 1);
    let large = graph(&spec("    vpcCidr: 10.0.0.0/16\n    azCount: 3\n    privateSubnets: {}\n    natGateways: PerAz\n"), 3);
    for (id, node) in &small.nodes {
        let other = large
            .nodes
            .get(id)
            .unwrap_or_else(|| panic!("{id} disappears when zones are added"));
        if id.kind != VPC_ENDPOINT {
            assert_eq!(node.props, other.props, "{id} changes when zones are added");
        }
    }
}

#[test]
fn interface_endpoints_get_a_group_and_wait_for_dns_hostnames() {
    let mut s = spec("    vpcCidr: 10.0.0.0/16\n    privateSubnets: {}\n");
    s.endpoints = Endpoints {
        s3: true,
        interface: vec![InterfaceEndpoint::Ecr, InterfaceEndpoint::SecretsManager],
    };
    let g = graph(&s, 2);
    let roles: BTreeSet<&str> = g
        .nodes
        .keys()
        .filter(|k| k.kind == VPC_ENDPOINT)
        .map(|k| k.role.as_str())
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["ecr-api", "ecr-dkr", "s3", "secretsmanager"])
    );
    let ecr = &g.nodes[&NodeId::new(VPC_ENDPOINT, "ecr-api")];
    assert!(ecr.dependencies().contains(&NodeId::new(VPC_DNS, "vpc")));
    assert_eq!(
        ecr.props["service"],
        Prop::Value(json!("com.amazonaws.eu-west-1.ecr.api"))
    );
    assert_eq!(
        ecr.props["subnets"],
        Prop::Refs(vec![
            NodeId::new(SUBNET, "private-eu-west-1a"),
            NodeId::new(SUBNET, "private-eu-west-1b")
        ])
    );
    assert!(g
        .nodes
        .contains_key(&NodeId::new(SECURITY_GROUP_RULE, "endpoints-443-from-vpc")));
}

#[test]
fn every_node_is_tagged_with_its_tier_and_a_name_where_aws_has_tags() {
    let g = graph(
        &spec("    vpcCidr: 10.0.0.0/16\n    privateSubnets: {}\n    natGateways: Single\n"),
        2,
    );
    for n in g.nodes.values() {
        assert_eq!(n.component, format!("network/{}", n.id.role));
        let tagged = ![
            VPC_DNS,
            GATEWAY_ATTACHMENT,
            ROUTE,
            ROUTE_TABLE_ASSOCIATION,
            SECURITY_GROUP_RULE,
        ]
        .contains(&n.id.kind);
        assert_eq!(!n.name.is_empty(), tagged, "{}", n.id);
    }
}

#[test]
fn nat_gateways_wait_for_the_attached_internet_gateway() {
    let g = graph(
        &spec("    vpcCidr: 10.0.0.0/16\n    privateSubnets: {}\n    natGateways: Single\n"),
        2,
    );
    let nat = &g.nodes[&NodeId::new(NAT_GATEWAY, "nat-eu-west-1a")];
    assert!(nat
        .dependencies()
        .contains(&NodeId::new(GATEWAY_ATTACHMENT, "igw")));
    let order = g.order();
    let pos = |k: Kind, r: &str| order.iter().position(|x| *x == NodeId::new(k, r)).unwrap();
    assert!(pos(VPC, "vpc") < pos(SUBNET, "public-eu-west-1a"));
    assert!(pos(ELASTIC_IP, "nat-eu-west-1a") < pos(NAT_GATEWAY, "nat-eu-west-1a"));
    assert!(pos(NAT_GATEWAY, "nat-eu-west-1a") < pos(ROUTE, "private-eu-west-1b-default"));
}
