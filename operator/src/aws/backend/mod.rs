//! The backend tier on EC2: per tier an IAM role and instance profile of least privilege, a
//! launch template, an Auto Scaling group with target tracking, and an Application Load
//! Balancer with its target group and listeners. One file per AWS family; this file holds the
//! pure function from the spec to the desired graph, and what the files share.
//!
//! Load balancers, target groups, roles and groups have unique names: each is derived from the
//! stack, its owner and the tier ([`physical_name`]), so that a create after a crash finds the
//! resource by name. Their listings carry no tags (ELBv2, IAM): tags are read once per
//! resource, twenty at a time where the service allows, and cached.

mod balancer;
mod group;
mod listener;
mod role;
mod template;
mod user_data;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::naming::{physical_name, ELB_MAX, IAM_MAX};
use super::network::{
    app_group, load_balancer_group, TierAccess, ADDRESS_ASSOCIATION, ELASTIC_IP, INSTANCE_SUFFIX,
    SECURITY_GROUP,
};
use super::{Scope, StackRef};
use crate::api::{LoadBalancerScheme, Runtime, SubnetPlacement, TierSpec, WebStackSpec};
use crate::engine::{Engine, Kind, Node, NodeId, Prop};

pub use user_data::render as user_data;

pub const INSTANCE_ROLE: Kind = Kind("IamRole");
pub const INSTANCE_PROFILE: Kind = Kind("InstanceProfile");
pub const LAUNCH_TEMPLATE: Kind = Kind("LaunchTemplate");
pub const AUTO_SCALING_GROUP: Kind = Kind("AutoScalingGroup");
pub const SCALING_POLICY: Kind = Kind("ScalingPolicy");
pub const LOAD_BALANCER: Kind = Kind("LoadBalancer");
pub const TARGET_GROUP: Kind = Kind("TargetGroup");
pub const LISTENER: Kind = Kind("Listener");

/// Every kind of this area, for the `BackendReady` condition.
pub const KINDS: &[Kind] = &[
    INSTANCE_ROLE,
    INSTANCE_PROFILE,
    LAUNCH_TEMPLATE,
    AUTO_SCALING_GROUP,
    SCALING_POLICY,
    LOAD_BALANCER,
    TARGET_GROUP,
    LISTENER,
];

const TIER: &str = "backend";

pub use super::tags::DIGEST_TAG;
/// The tag on an Auto Scaling group that records the capacity the spec asked for: the group's
/// own capacity moves with its scaling policies and is not drift.
pub const DESIRED_TAG: &str = "webstack.io/desired-capacity";
/// The tag on an Auto Scaling group that records the template version its instances were
/// last refreshed to.
pub const REFRESHED_TAG: &str = "webstack.io/refreshed-version";
/// The tag on a target group that records its deregistration delay.
pub const DELAY_TAG: &str = "webstack.io/deregistration-delay";

/// Adds the backend kinds to an engine.
pub fn register(engine: Engine<Scope>) -> Engine<Scope> {
    engine
        .observer(role::RoleObserver)
        .observer(template::TemplateObserver)
        .observer(group::GroupObserver)
        .observer(balancer::BalancerObserver)
        .handler(role::RoleHandler)
        .handler(role::ProfileHandler)
        .handler(template::TemplateHandler)
        .handler(group::GroupHandler)
        .handler(group::PolicyHandler)
        .handler(balancer::BalancerHandler)
        .handler(balancer::TargetGroupHandler)
        .handler(listener::ListenerHandler)
}

/// The EC2 tiers of a spec (Fargate and in-cluster tiers are other areas').
pub fn ec2_tiers(spec: &WebStackSpec) -> impl Iterator<Item = &TierSpec> {
    spec.backend
        .iter()
        .flat_map(|b| b.tiers.iter())
        .filter(|t| t.runtime == Runtime::Ec2)
}

/// The listener ports of a tier's load balancer: 80, and 443 when it serves a certificate.
pub fn listener_ports(tier: &TierSpec) -> Vec<u16> {
    match tier.load_balancer.certificate {
        Some(_) => vec![80, 443],
        None => vec![80],
    }
}

/// What each tier needs of the network's security groups.
pub fn access(spec: &WebStackSpec) -> Vec<TierAccess> {
    let tiers: Vec<&TierSpec> = spec.backend.iter().flat_map(|b| b.tiers.iter()).collect();
    tiers
        .iter()
        .map(|t| {
            let public = t.load_balancer.scheme == LoadBalancerScheme::InternetFacing;
            // An internet-facing balancer is open on the ports the network section lists too
            // (80 and 443 unless it says otherwise), as the reference documents ask.
            let mut ports = listener_ports(t);
            if public {
                ports.extend(&spec.network.security_groups.load_balancer_ports);
                ports.sort_unstable();
                ports.dedup();
            }
            (t, public, ports)
        })
        .map(|(t, public, listener_ports)| TierAccess {
            name: t.name.clone(),
            port: t.port,
            listener_ports,
            public,
            callers: tiers
                .iter()
                .filter(|c| c.upstreams.contains(&t.name))
                .map(|c| c.name.clone())
                .collect(),
            ssh: t.runtime == Runtime::Ec2,
        })
        .collect()
}

/// What the backend's nodes refer to in other areas.
#[derive(Clone, Debug, Default)]
pub struct Wiring {
    pub vpc: Option<NodeId>,
    pub public_subnets: Vec<NodeId>,
    pub private_subnets: Vec<NodeId>,
    /// The image id each `ssmParameter` of the spec names now.
    pub images: BTreeMap<String, String>,
    /// Environment every tier's application receives: the stack's endpoints and the ARNs of
    /// its secrets, never a secret's value.
    pub environment: BTreeMap<String, Prop>,
    /// Secrets (ARNs, as references) the applications may read.
    pub secrets: Vec<Prop>,
    /// Repositories (ARNs) the instances may pull from, and their URIs by spec name.
    pub repositories: Vec<Prop>,
    pub repository_uris: BTreeMap<String, Prop>,
    /// Data buckets (their ARNs and their objects' ARN patterns, as references) the
    /// applications read and write.
    pub buckets: Vec<(Prop, Prop)>,
    /// Certificates by their spec name.
    pub certificates: BTreeMap<String, NodeId>,
    /// The log group of each tier (its node and name): the tier's instances write it.
    pub log_groups: BTreeMap<String, (NodeId, String)>,
    /// Tiers whose memory an alarm watches: their instances publish it even when scaling
    /// does not use it.
    pub memory_watched: Vec<String>,
}

/// Whether a tier's instances publish their memory use (through the CloudWatch agent).
fn memory_metrics(tier: &TierSpec, wiring: &Wiring) -> bool {
    tier.scaling
        .as_ref()
        .is_some_and(|s| s.memory_target_percent.is_some())
        || wiring.memory_watched.contains(&tier.name)
}

/// The backend's nodes, for the EC2 tiers of a spec.
pub fn desired(stack: &StackRef, region: &str, spec: &WebStackSpec, wiring: &Wiring) -> Vec<Node> {
    let mut nodes = Vec::new();
    for tier in ec2_tiers(spec) {
        nodes.extend(tier_nodes(stack, region, tier, wiring));
    }
    nodes
}

fn tier_nodes(stack: &StackRef, region: &str, tier: &TierSpec, wiring: &Wiring) -> Vec<Node> {
    let ec2 = tier.ec2.as_ref().expect("validated: runtime Ec2 has ec2");
    let t = tier.name.as_str();
    let mut nodes = Vec::new();

    // Identity: a role the instances assume, and its profile.
    // Names differ per kind: resources refer to each other by them.
    let role_name = physical_name(stack, &format!("{t}-role"), IAM_MAX);
    let profile_name = physical_name(stack, &format!("{t}-profile"), IAM_MAX);
    let role = Node::new(INSTANCE_ROLE, TIER, t, role_name.clone())
        .prop("name", role_name.as_str())
        .prop("path", iam_path(stack))
        .prop("service", "ec2.amazonaws.com")
        .prop("policy", policy(region, tier, wiring));
    let profile = Node::new(INSTANCE_PROFILE, TIER, t, profile_name.clone())
        .prop("name", profile_name.as_str())
        .prop("path", iam_path(stack))
        .prop("role", role.id.clone());

    // What the instances run.
    let image = match (&ec2.image.ami_id, &ec2.image.ssm_parameter) {
        (Some(ami), _) => ami.clone(),
        (None, Some(p)) => wiring.images.get(p).cloned().unwrap_or_default(),
        (None, None) => String::new(),
    };
    let mut environment = wiring.environment.clone();
    environment.extend(
        tier.environment
            .iter()
            .map(|(k, v)| (k.clone(), Prop::from(v.as_str()))),
    );
    for upstream in &tier.upstreams {
        let lb = NodeId::new(LOAD_BALANCER, upstream.as_str());
        environment.insert(
            format!("{}_HOST", env_name(upstream)),
            Prop::Attr(lb, "dnsName".into()),
        );
    }
    let container = ec2.container.as_ref().map(|c| {
        let (repository, tag) = split_image(&c.image);
        match wiring.repository_uris.get(repository) {
            Some(uri) => map([("repository", uri.clone()), ("tag", Prop::from(tag))]),
            None => map([("image", Prop::from(c.image.as_str()))]),
        }
    });
    let mut data = BTreeMap::from([
        ("imageId".to_owned(), Prop::from(image)),
        (
            "instanceType".to_owned(),
            Prop::from(ec2.instance_type.as_str()),
        ),
        (
            "profile".to_owned(),
            Prop::Attr(profile.id.clone(), "arn".into()),
        ),
        (
            "securityGroups".to_owned(),
            Prop::Refs(vec![NodeId::new(SECURITY_GROUP, app_group(t))]),
        ),
        (
            "rootVolume".to_owned(),
            Prop::Value(json!({
                "sizeGib": ec2.root_volume.size_gib,
                "type": serde_json::to_value(ec2.root_volume.volume_type).unwrap_or_default(),
            })),
        ),
        ("port".to_owned(), Prop::from(i64::from(tier.port))),
        ("environment".to_owned(), Prop::Map(environment)),
        ("region".to_owned(), Prop::from(region)),
        (
            "userData".to_owned(),
            Prop::from(ec2.user_data.clone().unwrap_or_default()),
        ),
        (
            "logGroup".to_owned(),
            // An attribute, so that the group exists before any instance boots.
            wiring
                .log_groups
                .get(t)
                .map(|(id, _)| Prop::Attr(id.clone(), "name".into()))
                .unwrap_or_else(|| Prop::from("")),
        ),
        (
            "memoryMetrics".to_owned(),
            Prop::from(memory_metrics(tier, wiring)),
        ),
    ]);
    if let Some(c) = container {
        data.insert("container".to_owned(), c);
    }
    if let Some(k) = &ec2.key_pair {
        data.insert("keyPair".to_owned(), Prop::from(k.as_str()));
    }
    let template_name = physical_name(stack, &format!("{t}-template"), 128);
    let template = Node::new(LAUNCH_TEMPLATE, TIER, t, template_name.clone())
        .prop("name", template_name.as_str())
        .prop("data", data);

    // Where the traffic comes from.
    let internal = tier.load_balancer.scheme == LoadBalancerScheme::Internal;
    let private_or_public = if wiring.private_subnets.is_empty() {
        wiring.public_subnets.clone()
    } else {
        wiring.private_subnets.clone()
    };
    let lb_subnets = if internal {
        private_or_public.clone()
    } else {
        wiring.public_subnets.clone()
    };
    let lb_name = physical_name(stack, t, ELB_MAX);
    let balancer = Node::new(LOAD_BALANCER, TIER, t, lb_name.clone())
        .prop("name", lb_name.as_str())
        .prop(
            "scheme",
            if internal {
                "internal"
            } else {
                "internet-facing"
            },
        )
        .prop("subnets", lb_subnets)
        .prop(
            "securityGroups",
            vec![NodeId::new(SECURITY_GROUP, load_balancer_group(t))],
        );
    let health = &tier.health_check;
    let target_group = Node::new(TARGET_GROUP, TIER, t, lb_name.clone())
        .prop("name", lb_name.as_str())
        .prop("port", i64::from(tier.port))
        .prop("protocol", "HTTP")
        .prop("targetType", "instance")
        .prop(
            "vpc",
            wiring.vpc.clone().expect("a backend needs the network"),
        )
        .prop(
            "healthCheck",
            json!({
                "path": health.path,
                "intervalSeconds": health.interval_seconds,
                "healthyThreshold": health.healthy_threshold,
                "unhealthyThreshold": health.unhealthy_threshold,
            }),
        )
        .prop(
            "deregistrationDelay",
            i64::from(tier.load_balancer.deregistration_delay_seconds),
        );
    let forward = map([
        ("type", Prop::from("forward")),
        ("targetGroup", Prop::Ref(target_group.id.clone())),
    ]);
    let certificate = tier
        .load_balancer
        .certificate
        .as_ref()
        .and_then(|c| wiring.certificates.get(c));
    let listener = |port: i64, protocol: &str, action: Prop| {
        Node::new(LISTENER, TIER, format!("{t}-{port}"), "")
            .prop("loadBalancer", balancer.id.clone())
            .prop("port", port)
            .prop("protocol", protocol)
            .prop("action", action)
    };
    match certificate {
        Some(cert) => {
            nodes.push(listener(
                80,
                "HTTP",
                Prop::Value(json!({"type": "redirect", "protocol": "HTTPS", "port": "443"})),
            ));
            nodes.push(
                listener(443, "HTTPS", forward)
                    .prop("certificate", cert.clone())
                    .prop("sslPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06"),
            );
        }
        None => nodes.push(listener(80, "HTTP", forward)),
    }

    // The group, across the tier's subnets.
    let scaling = tier.scaling.clone().unwrap_or(crate::api::Scaling {
        min: 1,
        max: 2,
        desired: None,
        cpu_target_percent: None,
        memory_target_percent: None,
    });
    let subnets = match tier.subnets {
        SubnetPlacement::Public => wiring.public_subnets.clone(),
        SubnetPlacement::Private => private_or_public,
    };
    let group_name = physical_name(stack, t, 255);
    let spot = ec2
        .spot
        .as_ref()
        .map(|s| json!({"onDemandBase": s.on_demand_base, "spotPercent": s.spot_percent}));
    let group = Node::new(AUTO_SCALING_GROUP, TIER, t, group_name.clone())
        .prop("name", group_name.as_str())
        .prop("template", template.id.clone())
        .attr("templateVersion", &template.id, "version")
        .attr("refreshedVersion", &template.id, "version")
        .prop("min", i64::from(scaling.min))
        .prop("max", i64::from(scaling.max))
        .prop("desired", i64::from(scaling.desired.unwrap_or(scaling.min)))
        .prop("subnets", subnets)
        .prop("targetGroups", vec![target_group.id.clone()])
        .prop("healthCheckType", "ELB")
        .prop("gracePeriodSeconds", 300)
        .prop("spot", spot.unwrap_or(Value::Null));
    for (metric, target) in [
        ("cpu", scaling.cpu_target_percent),
        ("memory", scaling.memory_target_percent),
    ] {
        if let Some(target) = target {
            nodes.push(
                Node::new(SCALING_POLICY, TIER, format!("{t}-{metric}"), "")
                    .prop("group", group.id.clone())
                    .prop("name", format!("{t}-{metric}-target"))
                    .prop("metric", metric)
                    .prop("target", i64::from(target)),
            );
        }
    }
    if ec2.elastic_ip {
        // A single instance with a fixed address (validated: at most one instance).
        let address = Node::new(
            ELASTIC_IP,
            TIER,
            format!("{t}{INSTANCE_SUFFIX}"),
            format!("{}-{t}", stack.name),
        );
        nodes.push(
            Node::new(ADDRESS_ASSOCIATION, TIER, t, "")
                .prop("allocation", address.id.clone())
                .attr("instance", &group.id, "instance"),
        );
        nodes.push(address);
    }
    nodes.extend([role, profile, template, balancer, target_group, group]);
    nodes
}

/// The IAM path of the stack's roles: listing it returns this stack's roles only.
pub fn iam_path(stack: &StackRef) -> String {
    format!("/webstack/{}/{}/", stack.namespace, stack.name)
}

/// `api-v2` -> `API_V2`.
fn env_name(tier: &str) -> String {
    tier.to_ascii_uppercase().replace('-', "_")
}

/// `backend:1.2` -> (`backend`, `1.2`); `backend` -> (`backend`, `latest`).
fn split_image(image: &str) -> (&str, &str) {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => (&image[..image.len() - tag.len() - 1], tag),
        None => (image, "latest"),
    }
}

fn map<const N: usize>(entries: [(&str, Prop); N]) -> Prop {
    Prop::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// The tier's inline policy: what its instances need and nothing more.
fn policy(region: &str, tier: &TierSpec, wiring: &Wiring) -> Prop {
    let mut statements: Vec<Prop> = Vec::new();
    let statement = |sid: &str, actions: &[&str], resources: Prop| {
        map([
            ("Sid", Prop::from(sid)),
            ("Effect", Prop::from("Allow")),
            ("Action", Prop::Value(json!(actions))),
            ("Resource", resources),
        ])
    };
    let list = |items: Vec<Prop>| -> Prop {
        Prop::Map(
            items
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("{i:02}"), p))
                .collect(),
        )
    };
    if !wiring.repositories.is_empty() {
        statements.push(statement(
            "RegistryLogin",
            &["ecr:GetAuthorizationToken"],
            Prop::from("*"),
        ));
        statements.push(statement(
            "PullOwnImages",
            &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            list(wiring.repositories.clone()),
        ));
    }
    if !wiring.secrets.is_empty() {
        statements.push(statement(
            "ReadOwnSecrets",
            &["secretsmanager:GetSecretValue"],
            list(wiring.secrets.clone()),
        ));
    }
    if !wiring.buckets.is_empty() {
        statements.push(statement(
            "ListOwnBuckets",
            &["s3:ListBucket"],
            list(wiring.buckets.iter().map(|(b, _)| b.clone()).collect()),
        ));
        statements.push(statement(
            "ReadWriteOwnObjects",
            &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            list(wiring.buckets.iter().map(|(_, o)| o.clone()).collect()),
        ));
    }
    if let Some((_, g)) = wiring.log_groups.get(&tier.name) {
        let groups = vec![Prop::from(format!(
            "arn:aws:logs:{region}:*:log-group:{g}:*"
        ))];
        statements.push(statement(
            "WriteOwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            list(groups),
        ));
    }
    if memory_metrics(tier, wiring) {
        statements.push(map([
            ("Sid", Prop::from("PublishMemoryMetrics")),
            ("Effect", Prop::from("Allow")),
            ("Action", Prop::Value(json!(["cloudwatch:PutMetricData"]))),
            ("Resource", Prop::from("*")),
            (
                "Condition",
                Prop::Value(json!({"StringEquals": {"cloudwatch:namespace": "CWAgent"}})),
            ),
        ]));
    }
    if statements.is_empty() {
        // AWS refuses a policy without statements: the role then has none.
        return Prop::Value(Value::Null);
    }
    map([
        ("Version", Prop::from("2012-10-17")),
        ("Statement", list(statements)),
    ])
}

/// A policy document from its resolved form: the statement and resource lists are kept as
/// maps keyed by position (so that references can sit in them) and become arrays here.
pub fn policy_document(resolved: &Value) -> Value {
    fn arrays(v: &Value) -> Value {
        match v {
            Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.parse::<usize>().is_ok()) => {
                Value::Array(m.values().map(arrays).collect())
            }
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), arrays(v))).collect())
            }
            other => other.clone(),
        }
    }
    arrays(resolved)
}

#[cfg(test)]
mod tests;
