//! The network tier: VPC, subnets, internet and NAT gateways, Elastic IPs, route tables,
//! VPC endpoints and the security-group chain. One file per AWS kind; this file holds the
//! pure function from the spec to the desired graph, and what the files share.

mod eips;
pub use eips::INSTANCE_SUFFIX;
mod endpoints;
mod gateways;
mod nat;
mod routes;
mod security_groups;
mod subnets;
mod vpc;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use ipnet::Ipv4Net;
use serde_json::json;

use super::{created, role_from_component, Scope, COMPONENT_TAG, OWNER_TAG, STACK_TAG};
use crate::api::validate::{parse_cidr, subnet_cidrs, SubnetHalf};
use crate::api::{NatGateways, NetworkOutputs, NetworkSpec};
use crate::engine::{Engine, Kind, Node, NodeId, Observed, Resolved, Selector};

pub const VPC: Kind = Kind("Vpc");
pub const VPC_DNS: Kind = Kind("VpcDnsHostnames");
pub const SUBNET: Kind = Kind("Subnet");
pub const INTERNET_GATEWAY: Kind = Kind("InternetGateway");
pub const GATEWAY_ATTACHMENT: Kind = Kind("InternetGatewayAttachment");
pub const ELASTIC_IP: Kind = Kind("ElasticIp");
pub const ADDRESS_ASSOCIATION: Kind = Kind("ElasticIpAssociation");
pub const NAT_GATEWAY: Kind = Kind("NatGateway");
pub const ROUTE_TABLE: Kind = Kind("RouteTable");
pub const ROUTE: Kind = Kind("Route");
pub const ROUTE_TABLE_ASSOCIATION: Kind = Kind("RouteTableAssociation");
pub const VPC_ENDPOINT: Kind = Kind("VpcEndpoint");
pub const SECURITY_GROUP: Kind = Kind("SecurityGroup");
pub const SECURITY_GROUP_RULE: Kind = Kind("SecurityGroupRule");

const TIER: &str = "network";

/// Adds the network kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(vpc::VpcObserver)
        .observer(subnets::SubnetObserver)
        .observer(gateways::GatewayObserver)
        .observer(eips::AddressObserver)
        .observer(nat::NatObserver)
        .observer(routes::RouteTableObserver)
        .observer(endpoints::EndpointObserver)
        .observer(security_groups::SecurityGroupObserver)
        .handler(vpc::VpcHandler)
        .handler(vpc::DnsHandler)
        .handler(subnets::SubnetHandler)
        .handler(gateways::GatewayHandler)
        .handler(gateways::AttachmentHandler)
        .handler(eips::AddressHandler)
        .handler(eips::AssociationHandler)
        .handler(nat::NatHandler)
        .handler(routes::RouteTableHandler)
        .handler(routes::RouteHandler)
        .handler(routes::AssociationHandler)
        .handler(endpoints::EndpointHandler)
        .handler(security_groups::GroupHandler)
        .handler(security_groups::RuleHandler)
}

/// Security-group roles of the chain.
pub const LOAD_BALANCER_SG: &str = "load-balancer";
pub const APP_SG: &str = "app";
pub const DATABASE_SG: &str = "database";
pub const CACHE_SG: &str = "cache";
pub const ENDPOINTS_SG: &str = "endpoints";

fn id(kind: Kind, role: impl Into<String>) -> NodeId {
    NodeId::new(kind, role)
}

/// What one backend tier needs of the security-group chain: its load balancer's group open
/// on the listener ports (to the internet, or to the tiers that call it), and its own group
/// open on the application port to that load balancer only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierAccess {
    pub name: String,
    pub port: u16,
    pub listener_ports: Vec<u16>,
    /// An internet-facing load balancer; otherwise reachable from `callers` only.
    pub public: bool,
    pub callers: Vec<String>,
    /// SSH from `network.sshAllowedCidrs` (instances, not tasks).
    pub ssh: bool,
}

/// The role of a tier's load-balancer security group.
pub fn load_balancer_group(tier: &str) -> String {
    format!("{LOAD_BALANCER_SG}-{tier}")
}

/// The role of a tier's application security group.
pub fn app_group(tier: &str) -> String {
    format!("{APP_SG}-{tier}")
}

/// The network tier's desired graph for a validated spec. `zones` are the availability zones
/// in use, in order: the explicit list, or the first `azCount` of the region's. With backend
/// `tiers`, each gets its own pair of security groups; without, the spec's generic chain
/// (`securityGroups` ports) is built.
pub fn desired(
    stack_name: &str,
    region: &str,
    spec: &NetworkSpec,
    zones: &[String],
    tiers: &[TierAccess],
) -> Vec<Node> {
    let node = |kind: Kind, role: &str| Node::new(kind, TIER, role, format!("{stack_name}-{role}"));
    let vpc_cidr: Ipv4Net = parse_cidr(&spec.vpc_cidr).expect("validated");
    let mut nodes = Vec::new();

    let vpc = node(VPC, "vpc").prop("cidr", spec.vpc_cidr.as_str());
    let vpc_id = vpc.id.clone();
    nodes.push(vpc);
    let dns = Node::new(VPC_DNS, TIER, "vpc", "")
        .prop("vpc", vpc_id.clone())
        .prop("enabled", true);
    let dns_id = dns.id.clone();
    nodes.push(dns);

    let igw = node(INTERNET_GATEWAY, "igw");
    let igw_id = igw.id.clone();
    nodes.push(igw);
    let attachment = Node::new(GATEWAY_ATTACHMENT, TIER, "igw", "")
        .prop("gateway", igw_id.clone())
        .prop("vpc", vpc_id.clone());
    let attachment_id = attachment.id.clone();
    nodes.push(attachment);

    // Route tables: one public, and one private per zone whatever the NAT mode, so that
    // moving between NAT modes only retargets routes.
    let public_rt = node(ROUTE_TABLE, "public").prop("vpc", vpc_id.clone());
    let public_rt_id = public_rt.id.clone();
    nodes.push(public_rt);
    nodes.push(
        Node::new(ROUTE, TIER, "public-default", "")
            .prop("routeTable", public_rt_id.clone())
            .prop("destination", "0.0.0.0/0")
            .prop("target", igw_id.clone())
            .after(attachment_id.clone()),
    );

    let public_cidrs = subnet_cidrs(
        &spec.public_subnets,
        vpc_cidr,
        zones.len(),
        SubnetHalf::Public,
    );
    let mut public_subnets = Vec::new();
    for (az, cidr) in zones.iter().zip(&public_cidrs) {
        let role = format!("public-{az}");
        let subnet = node(SUBNET, &role)
            .prop("vpc", vpc_id.clone())
            .prop("cidr", cidr.as_str())
            .prop("zone", az.as_str());
        public_subnets.push(subnet.id.clone());
        nodes.push(subnet);
        nodes.push(
            Node::new(ROUTE_TABLE_ASSOCIATION, TIER, role.clone(), "")
                .prop("subnet", id(SUBNET, &role))
                .prop("routeTable", public_rt_id.clone()),
        );
    }

    // NAT gateways with their Elastic IPs, in the public subnets.
    let nat_zones: Vec<&String> = match spec.nat_gateways {
        NatGateways::None => vec![],
        NatGateways::Single => zones.iter().take(1).collect(),
        NatGateways::PerAz => zones.iter().collect(),
    };
    let mut nat_of_zone: BTreeMap<&str, NodeId> = BTreeMap::new();
    for az in &nat_zones {
        let role = format!("nat-{az}");
        let eip = node(ELASTIC_IP, &role);
        let nat = node(NAT_GATEWAY, &role)
            .prop("subnet", id(SUBNET, format!("public-{az}")))
            .prop("allocation", eip.id.clone())
            .after(attachment_id.clone());
        nat_of_zone.insert(az.as_str(), nat.id.clone());
        nodes.push(eip);
        nodes.push(nat);
    }

    let mut route_tables = vec![public_rt_id.clone()];
    let mut private_subnets = Vec::new();
    if let Some(private) = &spec.private_subnets {
        let cidrs = subnet_cidrs(private, vpc_cidr, zones.len(), SubnetHalf::Private);
        for (az, cidr) in zones.iter().zip(&cidrs) {
            let role = format!("private-{az}");
            let subnet = node(SUBNET, &role)
                .prop("vpc", vpc_id.clone())
                .prop("cidr", cidr.as_str())
                .prop("zone", az.as_str());
            private_subnets.push(subnet.id.clone());
            nodes.push(subnet);
            let rt = node(ROUTE_TABLE, &role).prop("vpc", vpc_id.clone());
            route_tables.push(rt.id.clone());
            nodes.push(
                Node::new(ROUTE_TABLE_ASSOCIATION, TIER, role.clone(), "")
                    .prop("subnet", id(SUBNET, &role))
                    .prop("routeTable", rt.id.clone()),
            );
            let nat = nat_of_zone
                .get(az.as_str())
                .or_else(|| nat_of_zone.values().next());
            if let Some(nat) = nat {
                nodes.push(
                    Node::new(ROUTE, TIER, format!("{role}-default"), "")
                        .prop("routeTable", rt.id.clone())
                        .prop("destination", "0.0.0.0/0")
                        .prop("target", nat.clone()),
                );
            }
            nodes.push(rt);
        }
    }

    // Security groups: load balancer -> app -> database and cache.
    let sg = &spec.security_groups;
    let group = |role: &str, description: &str| {
        node(SECURITY_GROUP, role)
            .prop("vpc", vpc_id.clone())
            .prop("groupName", format!("{stack_name}-{role}"))
            .prop("description", description)
    };
    let rule = |group_role: &str, port: u16, source_name: &str, source: crate::engine::Prop| {
        Node::new(
            SECURITY_GROUP_RULE,
            TIER,
            format!("{group_role}-{port}-from-{source_name}"),
            "",
        )
        .prop("group", id(SECURITY_GROUP, group_role))
        .prop("protocol", "tcp")
        .prop("fromPort", i64::from(port))
        .prop("toPort", i64::from(port))
        .prop("source", source)
    };
    // The chain: (load balancer -> app) per tier, or the generic pair; then database and cache.
    let mut app_groups = Vec::new();
    let mut chain = |lb: &str, app: &str, listeners: &[u16], port: u16, sources: Vec<String>| {
        nodes.push(group(
            lb,
            &format!("Load balancer {lb}: open on its listener ports"),
        ));
        for source in &sources {
            for listener in listeners {
                let (name, from) = match source.as_str() {
                    "0.0.0.0/0" => ("anywhere".to_owned(), source.as_str().into()),
                    caller => (caller.to_owned(), id(SECURITY_GROUP, caller).into()),
                };
                nodes.push(rule(lb, *listener, &name, from));
            }
        }
        nodes.push(group(
            app,
            &format!("Application {app}: reachable from its load balancer on the app port"),
        ));
        nodes.push(rule(app, port, lb, id(SECURITY_GROUP, lb).into()));
        app_groups.push(app.to_owned());
    };
    if tiers.is_empty() {
        chain(
            LOAD_BALANCER_SG,
            APP_SG,
            &sg.load_balancer_ports,
            sg.app_port,
            vec!["0.0.0.0/0".to_owned()],
        );
    }
    for t in tiers {
        let sources = if t.public {
            vec!["0.0.0.0/0".to_owned()]
        } else {
            t.callers.iter().map(|c| app_group(c)).collect()
        };
        chain(
            &load_balancer_group(&t.name),
            &app_group(&t.name),
            &t.listener_ports,
            t.port,
            sources,
        );
    }
    let ssh_groups: Vec<&String> = if tiers.is_empty() {
        app_groups.iter().collect()
    } else {
        app_groups
            .iter()
            .zip(tiers)
            .filter(|(_, t)| t.ssh)
            .map(|(g, _)| g)
            .collect()
    };
    for group_role in ssh_groups {
        for cidr in &spec.ssh_allowed_cidrs {
            nodes.push(rule(group_role, 22, cidr, cidr.as_str().into()));
        }
    }
    for (role, port, what) in [
        (DATABASE_SG, sg.database_port, "Database"),
        (CACHE_SG, sg.cache_port, "Cache"),
    ] {
        if let Some(port) = port {
            nodes.push(group(
                role,
                &format!("{what}: reachable from the application only"),
            ));
            for app in &app_groups {
                nodes.push(rule(role, port, app, id(SECURITY_GROUP, app).into()));
            }
        }
    }

    // VPC endpoints.
    if spec.endpoints.s3 {
        nodes.push(
            node(VPC_ENDPOINT, "s3")
                .prop("vpc", vpc_id.clone())
                .prop("service", format!("com.amazonaws.{region}.s3"))
                .prop("type", "Gateway")
                .prop("routeTables", route_tables.clone()),
        );
    }
    let interface: BTreeSet<_> = spec.endpoints.interface.iter().collect();
    if !interface.is_empty() {
        nodes.push(group(
            ENDPOINTS_SG,
            "Interface endpoints: HTTPS from inside the VPC",
        ));
        nodes.push(rule(
            ENDPOINTS_SG,
            443,
            "vpc",
            spec.vpc_cidr.as_str().into(),
        ));
        let subnets = if private_subnets.is_empty() {
            public_subnets.clone()
        } else {
            private_subnets.clone()
        };
        for e in interface {
            for (service, role) in e.services() {
                nodes.push(
                    node(VPC_ENDPOINT, role)
                        .prop("vpc", vpc_id.clone())
                        .prop("service", format!("com.amazonaws.{region}.{service}"))
                        .prop("type", "Interface")
                        .prop("subnets", subnets.clone())
                        .prop("securityGroups", vec![id(SECURITY_GROUP, ENDPOINTS_SG)])
                        .prop("privateDns", true)
                        // Private DNS names need DNS hostnames on the VPC.
                        .after(dns_id.clone()),
                );
            }
        }
    }
    nodes
}

/// The network outputs from the resources of a converged stack.
pub fn outputs(resources: &BTreeMap<NodeId, Observed>, zones: &[String]) -> NetworkOutputs {
    let get = |kind: Kind, role: &str| resources.get(&id(kind, role));
    let ids = |prefix: &str| {
        zones
            .iter()
            .filter_map(|az| get(SUBNET, &format!("{prefix}-{az}")).map(|o| o.id.clone()))
            .collect()
    };
    NetworkOutputs {
        vpc_id: get(VPC, "vpc").map(|o| o.id.clone()).unwrap_or_default(),
        public_subnet_ids: ids("public"),
        private_subnet_ids: ids("private"),
        nat_public_ips: zones
            .iter()
            .filter_map(|az| {
                get(ELASTIC_IP, &format!("nat-{az}"))
                    .and_then(|o| o.str("publicIp"))
                    .map(str::to_owned)
            })
            .collect(),
        security_group_ids: resources
            .iter()
            .filter(|(k, _)| k.kind == SECURITY_GROUP)
            .map(|(k, o)| (k.role.clone(), o.id.clone()))
            .collect(),
    }
}

// What the files of this area share.

/// The Describe filter that selects the stack's resources (or every stack's).
pub(crate) fn owner_filter(selector: &Selector) -> Filter {
    match selector {
        Selector::Stack(stack) => Filter::builder()
            .name(format!("tag:{STACK_TAG}"))
            .values(stack)
            .build(),
        Selector::AllStacks => Filter::builder().name("tag-key").values(STACK_TAG).build(),
    }
}

pub(crate) fn tag_spec(
    scope: &Scope,
    resource_type: ResourceType,
    node: &Resolved,
) -> TagSpecification {
    let tags = scope
        .tags(node)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build());
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(tags.collect()))
        .build()
}

/// `(stack, role, owner)` from a resource's tags, when it carries the ownership tags.
pub(crate) fn owner(tags: &[Tag]) -> Option<(String, String, Option<String>)> {
    let get = |key: &str| {
        tags.iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    let stack = get(STACK_TAG)?;
    let component = get(COMPONENT_TAG)?;
    Some((
        stack,
        role_from_component(&component).to_owned(),
        get(OWNER_TAG),
    ))
}

fn json_strs<'a>(items: impl IntoIterator<Item = &'a str>) -> serde_json::Value {
    json!(items.into_iter().collect::<Vec<_>>())
}

/// Deletes the stack's ownership tag from EC2 resources, in one call for all of them.
pub(crate) async fn release_ec2(
    scope: &Scope,
    resources: &[Observed],
) -> Result<(), super::error::AwsError> {
    let ids: Vec<String> = resources.iter().map(|o| o.id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    scope
        .api
        .call(
            "ec2",
            "DeleteTags",
            super::client::Effect::Idempotent,
            || {
                scope
                    .ec2
                    .delete_tags()
                    .set_resources(Some(ids.clone()))
                    .tags(Tag::builder().key(STACK_TAG).build())
                    .tags(Tag::builder().key(COMPONENT_TAG).build())
                    .tags(Tag::builder().key(OWNER_TAG).build())
                    .send()
            },
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests;
