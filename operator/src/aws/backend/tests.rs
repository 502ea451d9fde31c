use serde_json::json;

use super::*;
use crate::api::validate::parse_manifest;

fn spec(file: &str) -> crate::api::WebStack {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    parse_manifest(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn wiring(private: bool) -> Wiring {
    let subnet = |s: &str| NodeId::new(Kind("Subnet"), s);
    Wiring {
        vpc: Some(NodeId::new(Kind("Vpc"), "vpc")),
        public_subnets: vec![subnet("public-a"), subnet("public-b")],
        private_subnets: if private {
            vec![subnet("private-a"), subnet("private-b")]
        } else {
            vec![]
        },
        ..Wiring::default()
    }
}

fn node<'a>(nodes: &'a [Node], kind: Kind, role: &str) -> &'a Node {
    nodes
        .iter()
        .find(|n| n.id.kind == kind && n.id.role == role)
        .unwrap_or_else(|| panic!("no {kind} {role}"))
}

fn value<'a>(node: &'a Node, key: &str) -> &'a Value {
    match &node.props[key] {
        Prop::Value(v) => v,
        other => panic!("{key} is {other:?}"),
    }
}

#[test]
fn split_image_separates_a_tag_but_not_a_registry_port() {
    assert_eq!(split_image("backend:1.2"), ("backend", "1.2"));
    assert_eq!(split_image("backend"), ("backend", "latest"));
    assert_eq!(
        split_image("registry:5000/team/app"),
        ("registry:5000/team/app", "latest")
    );
}

fn stack(name: &str) -> StackRef {
    StackRef::new("default", name, Some("uid-1"))
}

#[test]
fn starttech_runs_one_group_in_the_private_subnets_behind_a_public_balancer() {
    let ws = spec("starttech.yaml");
    let nodes = desired(&stack("starttech"), "eu-west-1", &ws.spec, &wiring(true));
    let group = node(&nodes, AUTO_SCALING_GROUP, "api");
    assert_eq!(value(group, "min"), &json!(2));
    assert_eq!(value(group, "max"), &json!(5));
    assert_eq!(value(group, "desired"), &json!(2));
    assert_eq!(value(group, "healthCheckType"), &json!("ELB"));
    assert_eq!(
        group.props["subnets"],
        Prop::Refs(wiring(true).private_subnets)
    );
    assert_eq!(
        group.props["targetGroups"],
        Prop::Refs(vec![NodeId::new(TARGET_GROUP, "api")])
    );
    assert_eq!(
        group.props["templateVersion"],
        Prop::Attr(NodeId::new(LAUNCH_TEMPLATE, "api"), "version".into())
    );
    let cpu = node(&nodes, SCALING_POLICY, "api-cpu");
    assert_eq!(value(cpu, "target"), &json!(70));
    let lb = node(&nodes, LOAD_BALANCER, "api");
    assert_eq!(value(lb, "scheme"), &json!("internet-facing"));
    assert_eq!(lb.props["subnets"], Prop::Refs(wiring(true).public_subnets));
    let name = value(lb, "name").as_str().unwrap();
    assert!(name.len() <= ELB_MAX, "{name}");
    let tg = node(&nodes, TARGET_GROUP, "api");
    assert_eq!(value(tg, "port"), &json!(8080));
    assert_eq!(value(tg, "healthCheck")["path"], json!("/health"));
    assert_eq!(value(tg, "healthCheck")["intervalSeconds"], json!(30));
    let http = node(&nodes, LISTENER, "api-80");
    assert_eq!(value(http, "protocol"), &json!("HTTP"));
    assert!(nodes.iter().all(|n| n.id.role != "api-443"));
    let role = node(&nodes, INSTANCE_ROLE, "api");
    assert_eq!(value(role, "service"), &json!("ec2.amazonaws.com"));
    assert_eq!(value(role, "path"), &json!("/webstack/default/starttech/"));
    let template = node(&nodes, LAUNCH_TEMPLATE, "api");
    let Prop::Map(data) = &template.props["data"] else {
        panic!("template data is a map");
    };
    assert_eq!(data["instanceType"], Prop::from("t3.micro"));
    assert_eq!(
        data["rootVolume"],
        Prop::Value(json!({"sizeGib": 8, "type": "gp2"}))
    );
    assert_eq!(
        data["profile"],
        Prop::Attr(NodeId::new(INSTANCE_PROFILE, "api"), "arn".into())
    );
    assert_eq!(
        data["securityGroups"],
        Prop::Refs(vec![NodeId::new(SECURITY_GROUP, "app-api")])
    );
}

#[test]
fn stockholm_chains_a_public_https_tier_to_an_internal_one() {
    let ws = spec("stockholm-two-tier.yaml");
    let mut w = wiring(true);
    w.certificates
        .insert("site".into(), NodeId::new(Kind("Certificate"), "site"));
    let nodes = desired(&stack("stockholm-two-tier"), "eu-north-1", &ws.spec, &w);
    let web = node(&nodes, LOAD_BALANCER, "web");
    assert_eq!(value(web, "scheme"), &json!("internet-facing"));
    let api = node(&nodes, LOAD_BALANCER, "api");
    assert_eq!(value(api, "scheme"), &json!("internal"));
    assert_eq!(api.props["subnets"], Prop::Refs(w.private_subnets.clone()));
    let redirect = node(&nodes, LISTENER, "web-80");
    assert_eq!(value(redirect, "action")["type"], json!("redirect"));
    let https = node(&nodes, LISTENER, "web-443");
    assert_eq!(value(https, "protocol"), &json!("HTTPS"));
    assert_eq!(
        https.props["certificate"],
        Prop::Ref(NodeId::new(Kind("Certificate"), "site"))
    );
    // The web tier finds the api tier through its internal load balancer.
    let Prop::Map(data) = &node(&nodes, LAUNCH_TEMPLATE, "web").props["data"] else {
        panic!("template data is a map");
    };
    let Prop::Map(env) = &data["environment"] else {
        panic!("environment is a map");
    };
    assert_eq!(
        env["API_HOST"],
        Prop::Attr(NodeId::new(LOAD_BALANCER, "api"), "dnsName".into())
    );
    let api_group = node(&nodes, AUTO_SCALING_GROUP, "api");
    assert_eq!(
        value(api_group, "spot"),
        &json!({"onDemandBase": 1, "spotPercent": 100})
    );
    node(&nodes, SCALING_POLICY, "api-memory");
    // The security groups follow the tiers: the internal balancer admits the web tier only.
    let access = access(&ws.spec);
    let api_access = access.iter().find(|a| a.name == "api").unwrap();
    assert!(!api_access.public);
    assert_eq!(api_access.callers, vec!["web".to_owned()]);
    assert_eq!(access[0].listener_ports, vec![80, 443]);
}

#[test]
fn the_policy_allows_only_what_the_tier_uses() {
    let ws = spec("stockholm-two-tier.yaml");
    let tier = ec2_tiers(&ws.spec).find(|t| t.name == "api").unwrap();
    let mut w = wiring(true);
    w.secrets
        .push(Prop::from("arn:aws:secretsmanager:eu-north-1:1:secret:db"));
    w.log_groups.insert(
        "api".into(),
        (
            NodeId::new(Kind("LogGroup"), "api"),
            "/webstack/default/s/api".into(),
        ),
    );
    let Prop::Map(p) = policy("eu-north-1", tier, &w) else {
        panic!("a map");
    };
    let resolved = crate::engine::plan::resolve(
        &Node::new(INSTANCE_ROLE, "t", "r", "n").prop("policy", p),
        &Default::default(),
    )
    .0;
    let document = policy_document(&resolved.props["policy"]);
    let statements = document["Statement"].as_array().unwrap();
    let sids: Vec<&str> = statements
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        ["ReadOwnSecrets", "WriteOwnLogs", "PublishMemoryMetrics"]
    );
    assert_eq!(
        statements[0]["Resource"],
        json!(["arn:aws:secretsmanager:eu-north-1:1:secret:db"])
    );
    assert_eq!(
        statements[1]["Resource"],
        json!(["arn:aws:logs:eu-north-1:*:log-group:/webstack/default/s/api:*"])
    );
    // Nothing allows more than its statement names.
    assert!(statements.iter().all(|s| s["Effect"] == "Allow"));
    assert!(!document.to_string().contains("\"*:*\""));
}

#[test]
fn the_boot_script_runs_the_container_with_the_stack_endpoints() {
    let data = json!({
        "port": 8080,
        "region": "eu-west-1",
        "container": {"repository": "123.dkr.ecr.eu-west-1.amazonaws.com/default-s-backend-1234abcd", "tag": "v1"},
        "environment": {"DATABASE_HOST": "db.example", "GREETING": "it's"},
        "logGroup": "/webstack/default/s/api",
        "userData": "echo done",
        "memoryMetrics": false,
    });
    let script = user_data(&data);
    assert!(script.starts_with("#!/bin/bash\n"));
    assert!(script.contains(
        "docker login --username AWS --password-stdin 123.dkr.ecr.eu-west-1.amazonaws.com"
    ));
    assert!(script.contains("-p 8080:8080"));
    assert!(script.contains("-e 'DATABASE_HOST=db.example'"));
    assert!(script.contains(r"-e 'GREETING=it'\''s'"));
    assert!(script.contains("awslogs-group='/webstack/default/s/api'"));
    assert!(
        script.contains("'123.dkr.ecr.eu-west-1.amazonaws.com/default-s-backend-1234abcd:v1'\n")
    );
    assert!(script.ends_with("echo done\n"));
    assert!(!script.contains("amazon-cloudwatch-agent"));
    let public = user_data(&json!({"container": {"image": "nginx:1.27"}, "port": 80}));
    assert!(public.contains("'nginx:1.27'") && !public.contains("docker login"));
}

#[test]
fn an_instance_refresh_keeps_most_of_the_capacity_and_skips_what_is_current() {
    let config = aws_sdk_autoscaling::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let client = aws_sdk_autoscaling::Client::from_conf(config);
    let request = group::refresh_request(&client, "shop-api", 300);
    let input = request.as_input();
    assert_eq!(
        input.get_auto_scaling_group_name().as_deref(),
        Some("shop-api")
    );
    let preferences = input.get_preferences().as_ref().unwrap();
    assert_eq!(preferences.min_healthy_percentage(), Some(90));
    assert_eq!(preferences.instance_warmup(), Some(300));
    assert_eq!(preferences.skip_matching(), Some(true));
}

#[test]
fn every_example_with_ec2_tiers_makes_a_valid_graph() {
    for file in [
        "starttech.yaml",
        "multi-az-mysql.yaml",
        "stockholm-two-tier.yaml",
        "tekamolo.yaml",
    ] {
        let ws = spec(file);
        let zones: Vec<String> = match ws.spec.network.availability_zones.as_slice() {
            [] => vec!["zone-a".into(), "zone-b".into()],
            z => z.to_vec(),
        };
        let images = ec2_tiers(&ws.spec)
            .filter_map(|t| t.ec2.as_ref()?.image.ssm_parameter.clone())
            .map(|p| (p, "ami-0123456789abcdef0".to_owned()))
            .collect();
        let graph = crate::stack::desired_graph(
            &ws,
            "eu-west-1",
            &zones,
            &images,
            &Default::default(),
            None,
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let groups = graph.kinds();
        assert!(groups.contains(&AUTO_SCALING_GROUP), "{file}");
    }
}

#[test]
fn a_tier_that_needs_nothing_gets_no_policy_at_all() {
    // AWS refuses a policy without statements.
    let ws = spec("tekamolo.yaml");
    let tier = ec2_tiers(&ws.spec).next().unwrap();
    assert_eq!(
        policy("us-east-1", tier, &wiring(false)),
        Prop::Value(Value::Null)
    );
}
