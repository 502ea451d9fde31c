//! The backend tier against the emulator, checked through AWS's own Describe calls: per tier a
//! role and instance profile, a launch template, an Auto Scaling group in the tier's subnets
//! attached to its target group, and a load balancer with its listeners; the security-group
//! chain by ports; a template change makes a new version and an instance refresh without
//! recreating the group or the load balancer; re-apply writes nothing; destroy leaves nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::SecurityGroup;
use webstack::engine::Silent;
use webstack::stack;
use webstack_tests::*;

const TIMEOUT: Duration = Duration::from_secs(300);

/// Ingress of a group as `(port, source)`, the source a CIDR or another group's role.
fn ingress(group: &SecurityGroup, roles: &BTreeMap<String, String>) -> Vec<(i32, String)> {
    let role_of = |id: &str| {
        roles
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let mut out = Vec::new();
    for p in group.ip_permissions() {
        let port = p.from_port().unwrap_or(-1);
        for r in p.ip_ranges() {
            out.push((port, r.cidr_ip().unwrap_or_default().to_owned()));
        }
        for g in p.user_id_group_pairs() {
            out.push((port, role_of(g.group_id().unwrap_or_default())));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tiers_behind_public_and_internal_balancers_change_in_place_and_go_away() {
    // On the heap: the test's future outgrows a test thread's stack in a debug build.
    Box::pin(two_tiers()).await;
}

async fn two_tiers() {
    let moto = Moto::start();
    let region = "eu-north-1";
    let config = sdk_config(&moto.url(), region).await;
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
    let pristine = backend_census(&moto.url(), region).await;
    let (connect, api) = connect(&moto.url());

    // The domain's zone exists already, as the document has it.
    public_zone(&moto.url(), "example.com").await;
    let stack = example("stockholm-two-tier.yaml", "sthlm");
    let p = stack::prepare(stack.clone(), &connect).await.unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = stack::status_from(&stack, region, &p.zones, &outcome, None, false);
    let outputs = status.outputs.clone().unwrap();
    let network = outputs.network.clone().unwrap();
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t}"))
            .clone()
    };
    assert_eq!(condition("BackendReady").status, "True", "{status:?}");
    assert_eq!(condition("CertificatesReady").status, "True");
    assert_eq!(condition("Ready").status, "True");
    let web = &outputs.tiers["web"];
    let api_tier = &outputs.tiers["api"];
    assert_eq!(web.scheme, "internet-facing");
    assert_eq!(api_tier.scheme, "internal");
    assert!(!web.load_balancer_dns.is_empty());

    // Load balancers: web in the public subnets, api internal in the private ones.
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(lbs.load_balancers().len(), 2);
    let lb_of = |scheme: &str| {
        lbs.load_balancers()
            .iter()
            .find(|l| l.scheme().map(|s| s.as_str()) == Some(scheme))
            .unwrap()
            .clone()
    };
    let subnets_of = |lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer| {
        let mut s: Vec<String> = lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_owned))
            .collect();
        s.sort();
        s
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let public_lb = lb_of("internet-facing");
    let internal_lb = lb_of("internal");
    assert_eq!(
        subnets_of(&public_lb),
        sorted(network.public_subnet_ids.clone())
    );
    assert_eq!(
        subnets_of(&internal_lb),
        sorted(network.private_subnet_ids.clone())
    );

    // Listeners: web redirects HTTP to HTTPS and serves the issued certificate; api forwards.
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(public_lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let by_port = |port: i32| {
        listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(port))
            .unwrap_or_else(|| panic!("no listener on {port}"))
            .clone()
    };
    let redirect = by_port(80).default_actions()[0]
        .redirect_config()
        .cloned()
        .unwrap();
    assert_eq!(redirect.protocol(), Some("HTTPS"));
    assert_eq!(redirect.port(), Some("443"));
    let https = by_port(443);
    assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
    let cert_arn = https.certificates()[0]
        .certificate_arn()
        .unwrap()
        .to_owned();
    let acm = aws_sdk_acm::Client::new(&config);
    let cert = acm
        .describe_certificate()
        .certificate_arn(&cert_arn)
        .send()
        .await
        .unwrap();
    let cert = cert.certificate().unwrap();
    assert_eq!(cert.domain_name(), Some("example.com"));
    assert!(cert
        .subject_alternative_names()
        .contains(&"www.example.com".to_owned()));
    let web_tg = https.default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    let internal_listeners = elb
        .describe_listeners()
        .load_balancer_arn(internal_lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(internal_listeners.listeners().len(), 1);
    let api_listener = &internal_listeners.listeners()[0];
    assert_eq!(api_listener.port(), Some(80));
    let api_tg = api_listener.default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();

    // Target groups: the tiers' ports and health checks.
    let tgs = elb
        .describe_target_groups()
        .target_group_arns(&web_tg)
        .target_group_arns(&api_tg)
        .send()
        .await
        .unwrap();
    for tg in tgs.target_groups() {
        let port = if tg.target_group_arn() == Some(web_tg.as_str()) {
            80
        } else {
            8080
        };
        assert_eq!(tg.port(), Some(port));
        assert_eq!(tg.health_check_path(), Some("/health"));
        assert_eq!(tg.health_check_interval_seconds(), Some(30));
    }

    // Groups: in the private subnets, sized as asked, attached to their target groups, from
    // their templates; api partly on Spot; target tracking on CPU and memory.
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    assert_eq!(groups.auto_scaling_groups().len(), 2);
    for g in groups.auto_scaling_groups() {
        let mut subnets: Vec<String> = g
            .vpc_zone_identifier()
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        subnets.sort();
        assert_eq!(subnets, sorted(network.private_subnet_ids.clone()));
        assert_eq!((g.min_size(), g.max_size()), (Some(1), Some(2)));
        assert_eq!(g.health_check_type(), Some("ELB"));
        let is_api = g.auto_scaling_group_name() == Some(api_tier.auto_scaling_group.as_str());
        let tg = if is_api { &api_tg } else { &web_tg };
        assert_eq!(g.target_group_arns(), std::slice::from_ref(tg));
        if is_api {
            let mixed = g.mixed_instances_policy().expect("api runs partly on Spot");
            let d = mixed.instances_distribution().unwrap();
            assert_eq!(d.on_demand_base_capacity(), Some(1));
            assert_eq!(d.on_demand_percentage_above_base_capacity(), Some(0));
        }
    }
    let policies = asg.describe_policies().send().await.unwrap();
    let mut tracked: Vec<(String, i64)> = policies
        .scaling_policies()
        .iter()
        .map(|p| {
            (
                p.policy_name().unwrap().to_owned(),
                p.target_tracking_configuration()
                    .and_then(|c| c.target_value())
                    .unwrap() as i64,
            )
        })
        .collect();
    tracked.sort();
    assert_eq!(
        tracked,
        [
            ("api-cpu-target".to_owned(), 70),
            ("api-memory-target".to_owned(), 75),
            ("web-cpu-target".to_owned(), 70),
            ("web-memory-target".to_owned(), 75),
        ]
    );

    // Alarms: each with its threshold, period and comparison, on the dimensions of what it
    // watches, read back through CloudWatch (all but the CDN's, which the edge tier makes).
    Box::pin(stockholm_alarms(
        &config,
        &outputs,
        public_lb.load_balancer_arn().unwrap(),
        &web_tg,
    ))
    .await;

    // Templates: IMDSv2 required, the root volume encrypted, the container in the user data
    // with the database's endpoint and secret by ARN.
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_name(
            p.graph
                .nodes
                .values()
                .find(|n| n.id.kind.0 == "LaunchTemplate" && n.id.role == "api")
                .unwrap()
                .name
                .clone(),
        )
        .versions("$Latest")
        .send()
        .await
        .unwrap();
    let data = versions.launch_template_versions()[0]
        .launch_template_data()
        .unwrap()
        .clone();
    assert_eq!(
        data.metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required")
    );
    let ebs = data.block_device_mappings()[0].ebs().unwrap();
    assert_eq!(ebs.encrypted(), Some(true));
    let script =
        String::from_utf8(aws_smithy_types::base64::decode(data.user_data().unwrap()).unwrap())
            .unwrap();
    let db = outputs.database.clone().unwrap();
    assert!(
        script.contains(&format!("DATABASE_HOST={}", db.endpoint)),
        "{script}"
    );
    assert!(script.contains(&format!("DATABASE_SECRET_ARN={}", db.secret_arn)));
    // The image comes from the stack's own repository, after a registry login.
    let backend_repo = &outputs.repositories["backend"];
    assert!(
        script.contains(&format!("{backend_repo}:latest")),
        "{script}"
    );
    assert!(script.contains("docker login"));

    // Roles: EC2 trusts them; the policy reads the database's secret and nothing else.
    let roles = iam
        .list_roles()
        .path_prefix("/webstack/default/sthlm/")
        .send()
        .await
        .unwrap();
    assert_eq!(roles.roles().len(), 2);
    let role = &roles.roles()[0];
    let policy = iam
        .get_role_policy()
        .role_name(role.role_name())
        .policy_name("webstack")
        .send()
        .await
        .unwrap();
    let document = percent_decoded(policy.policy_document());
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    let statements = document["Statement"].as_array().unwrap();
    let secrets = statements
        .iter()
        .find(|s| s["Sid"] == "ReadOwnSecrets")
        .unwrap();
    assert_eq!(secrets["Resource"], serde_json::json!([db.secret_arn]));
    assert!(!statements
        .iter()
        .any(|s| s["Action"] == "*" || s["Action"] == serde_json::json!(["*"])));

    // Security groups by ports: 80/443 from anywhere to the public balancer, the web port from
    // it only, the internal balancer from the web tier only, the api port from it only, the
    // database from both tiers only.
    let roles_of: BTreeMap<String, String> = network.security_group_ids.clone();
    let sgs = ec2
        .describe_security_groups()
        .set_group_ids(Some(roles_of.values().cloned().collect()))
        .send()
        .await
        .unwrap();
    let rules = |role: &str| {
        let g = sgs
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(roles_of[role].as_str()))
            .unwrap();
        ingress(g, &roles_of)
    };
    let pair = |p: i32, s: &str| (p, s.to_owned());
    assert_eq!(
        rules("load-balancer-web"),
        [pair(80, "0.0.0.0/0"), pair(443, "0.0.0.0/0")]
    );
    assert_eq!(rules("app-web"), [pair(80, "load-balancer-web")]);
    assert_eq!(rules("load-balancer-api"), [pair(80, "app-web")]);
    assert_eq!(rules("app-api"), [pair(8080, "load-balancer-api")]);
    assert_eq!(
        rules("database"),
        [pair(5432, "app-api"), pair(5432, "app-web")]
    );

    // Each tier logs to its own group, kept 30 days.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/webstack/default/sthlm/")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 2);
    assert!(groups
        .log_groups()
        .iter()
        .all(|g| g.retention_in_days() == Some(30)));
    let api_group = groups
        .log_groups()
        .iter()
        .find_map(|g| g.log_group_name().filter(|n| n.contains("/api-")))
        .unwrap();
    assert!(
        script.contains(&format!("awslogs-group='{api_group}'")),
        "{script}"
    );

    // The cache: encrypted, in the stack's subnet group, its endpoint given to the tiers.
    assert_eq!(condition("CacheReady").status, "True");
    let cache = outputs.cache.clone().expect("the cache's endpoint");
    let elasticache = aws_sdk_elasticache::Client::new(&config);
    let groups = elasticache
        .describe_replication_groups()
        .send()
        .await
        .unwrap();
    assert_eq!(groups.replication_groups().len(), 1);
    let g = &groups.replication_groups()[0];
    assert_eq!(g.at_rest_encryption_enabled(), Some(true));
    assert_eq!(g.transit_encryption_enabled(), Some(true));
    assert_eq!(g.cache_node_type(), Some("cache.t3.micro"));
    assert_eq!(
        g.node_groups()[0]
            .primary_endpoint()
            .and_then(|e| e.address()),
        Some(cache.endpoint.as_str())
    );
    assert!(script.contains(&format!("CACHE_HOST={}", cache.endpoint)));

    // Re-apply: nothing to write.
    let before = api.counts();
    let again = p.apply_once(&Silent).await.unwrap();
    assert!(again.is_ready());
    let writes = api.counts().difference(&before).mutating();
    assert!(writes.is_empty(), "re-apply wrote: {writes:?}");

    // A new instance type: a new template version, the group moved to it and refreshed; the
    // group and both load balancers stay.
    let mut bigger = stack.clone();
    bigger.spec.backend.as_mut().unwrap().tiers[1]
        .ec2
        .as_mut()
        .unwrap()
        .instance_type = "t3.small".into();
    let p2 = stack::prepare(bigger.clone(), &connect).await.unwrap();
    let before = api.counts();
    p2.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let calls = api.counts().difference(&before);
    for op in [
        "CreateLoadBalancer",
        "DeleteLoadBalancer",
        "CreateAutoScalingGroup",
        "DeleteAutoScalingGroup",
        "CreateTargetGroup",
    ] {
        assert_eq!(
            calls.of("elasticloadbalancing", op) + calls.of("autoscaling", op),
            0,
            "{op}"
        );
    }
    assert_eq!(calls.of("ec2", "CreateLaunchTemplateVersion"), 1);
    assert_eq!(calls.of("autoscaling", "StartInstanceRefresh"), 1);
    let g = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&api_tier.auto_scaling_group)
        .send()
        .await
        .unwrap();
    let spec = g.auto_scaling_groups()[0]
        .mixed_instances_policy()
        .and_then(|m| m.launch_template())
        .and_then(|t| t.launch_template_specification())
        .unwrap()
        .clone();
    assert_eq!(spec.version(), Some("2"));
    let refreshes = asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(&api_tier.auto_scaling_group)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshes.instance_refreshes().len(), 1);
    let lbs_after = elb.describe_load_balancers().send().await.unwrap();
    let arns = |l: &aws_sdk_elasticloadbalancingv2::operation::describe_load_balancers::DescribeLoadBalancersOutput| {
        let mut v: Vec<String> = l.load_balancers().iter().filter_map(|b| b.load_balancer_arn().map(str::to_owned)).collect();
        v.sort();
        v
    };
    assert_eq!(arns(&lbs_after), arns(&lbs));
    let latest = ec2
        .describe_launch_template_versions()
        .launch_template_id(spec.launch_template_id().unwrap())
        .versions("2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        latest.launch_template_versions()[0]
            .launch_template_data()
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str()),
        Some("t3.small")
    );

    // Destroy: nothing of the backend is left.
    // (The database's deletion protection is lifted first, as a user would.)
    let mut gone = bigger.clone();
    let rds = gone.spec.database.as_mut().unwrap().rds.as_mut().unwrap();
    rds.final_snapshot = false;
    rds.deletion_protection = false;
    let p3 = stack::prepare(gone, &connect).await.unwrap();
    p3.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let destroyed = p3.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(destroyed.is_complete(), "{:?}", destroyed.failures);
    assert_eq!(backend_census(&moto.url(), region).await, pristine);
}

/// IAM returns policy documents URL-encoded.
/// The alarms of the Stockholm example, as CloudWatch holds them.
async fn stockholm_alarms(
    config: &aws_config::SdkConfig,
    outputs: &webstack::api::Outputs,
    web_lb_arn: &str,
    web_tg: &str,
) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_name_prefix("webstack/default/sthlm/")
        .send()
        .await
        .unwrap();
    let alarm = |name: &str| {
        alarms
            .metric_alarms()
            .iter()
            .find(|a| {
                a.alarm_name()
                    .is_some_and(|n| n.starts_with(&format!("webstack/default/sthlm/{name}-")))
            })
            .unwrap_or_else(|| panic!("no alarm {name} in {alarms:?}"))
            .clone()
    };
    let dimensions = |a: &aws_sdk_cloudwatch::types::MetricAlarm| -> BTreeMap<String, String> {
        a.dimensions()
            .iter()
            .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
            .collect()
    };
    let dims = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(alarms.metric_alarms().len(), 9, "{alarms:?}");
    let suffix = |arn: &str, after: &str| arn.split_once(after).unwrap().1.to_owned();
    let web_lb = format!("app/{}", suffix(web_lb_arn, ":loadbalancer/app/"));
    let web_5xx = alarm("web-5xx");
    assert_eq!(web_5xx.namespace(), Some("AWS/ApplicationELB"));
    assert_eq!(web_5xx.metric_name(), Some("HTTPCode_ELB_5XX_Count"));
    assert_eq!(web_5xx.threshold(), Some(10.0));
    assert_eq!(web_5xx.period(), Some(300));
    assert_eq!(
        web_5xx.comparison_operator().map(|c| c.as_str()),
        Some("GreaterThanThreshold")
    );
    assert_eq!(dimensions(&web_5xx), dims(&[("LoadBalancer", &web_lb)]));
    let web_tg_suffix = format!("targetgroup/{}", suffix(web_tg, ":targetgroup/"));
    assert_eq!(
        dimensions(&alarm("web-latency")),
        dims(&[("LoadBalancer", &web_lb), ("TargetGroup", &web_tg_suffix)])
    );
    assert_eq!(
        dimensions(&alarm("api-cpu")),
        dims(&[(
            "AutoScalingGroupName",
            &outputs.tiers["api"].auto_scaling_group
        )])
    );
    assert_eq!(alarm("api-memory").namespace(), Some("CWAgent"));
    let storage = alarm("database-storage");
    assert_eq!(
        storage.comparison_operator().map(|c| c.as_str()),
        Some("LessThanThreshold")
    );
    assert_eq!(storage.threshold(), Some(2_000_000_000.0));
    let db_id = outputs.database.clone().unwrap().identifier;
    assert_eq!(
        dimensions(&storage),
        dims(&[("DBInstanceIdentifier", &db_id)])
    );
    // The cache's CPU on its primary node, a member of the stack's replication group.
    let cache_cpu = dimensions(&alarm("cache-cpu"));
    let elasticache = aws_sdk_elasticache::Client::new(config);
    let members = elasticache
        .describe_replication_groups()
        .send()
        .await
        .unwrap()
        .replication_groups()[0]
        .member_clusters()
        .to_vec();
    assert!(
        members.contains(&cache_cpu["CacheClusterId"]),
        "{cache_cpu:?} {members:?}"
    );
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Applies an example in its own region and returns its status.
async fn apply_example(
    connect: &webstack::aws::Connect,
    file: &str,
    name: &str,
) -> (webstack::api::WebStackStatus, stack::Prepared) {
    let s = example(file, name);
    let p = stack::prepare_with(s.clone(), connect, example_secrets())
        .await
        .unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    (p.status(&outcome, None), p)
}

fn condition(status: &webstack::api::WebStackStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
        .unwrap_or_else(|| panic!("no {type_} in {:?}", status.conditions))
}

async fn group_rules(
    ec2: &aws_sdk_ec2::Client,
    roles: &BTreeMap<String, String>,
    role: &str,
) -> Vec<(i32, String)> {
    let sgs = ec2
        .describe_security_groups()
        .group_ids(&roles[role])
        .send()
        .await
        .unwrap();
    ingress(&sgs.security_groups()[0], roles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_backends_are_wired_as_their_documents_say() {
    let moto = Moto::start();
    let (connect, _api) = connect(&moto.url());
    let pair = |p: i32, s: &str| (p, s.to_owned());

    // Each section in a box of its own: the test's future stays within a test thread's
    // stack in a debug build.
    Box::pin(async {
        // StartTech (reference 002): private instances, 2 to 5, from the stack's own registry; the
        // balancer open on 80 and 443, the app port from it only, SSH from the team's range, the
        // cache port from the app only.
        let (status, _) = apply_example(&connect, "starttech.yaml", "starttech").await;
        assert_eq!(condition(&status, "BackendReady"), "True");
        assert_eq!(condition(&status, "RegistryReady"), "True");
        let outputs = status.outputs.clone().unwrap();
        let network = outputs.network.clone().unwrap();
        let config = sdk_config(&moto.url(), "eu-west-1").await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let asg = aws_sdk_autoscaling::Client::new(&config);
        let ecr = aws_sdk_ecr::Client::new(&config);
        let roles = network.security_group_ids.clone();
        assert_eq!(
            group_rules(&ec2, &roles, "load-balancer-api").await,
            [pair(80, "0.0.0.0/0"), pair(443, "0.0.0.0/0")]
        );
        assert_eq!(
            group_rules(&ec2, &roles, "app-api").await,
            [pair(22, "203.0.113.0/24"), pair(8080, "load-balancer-api")]
        );
        assert_eq!(
            group_rules(&ec2, &roles, "cache").await,
            [pair(6379, "app-api")]
        );
        let group = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&outputs.tiers["api"].auto_scaling_group)
            .send()
            .await
            .unwrap();
        let g = &group.auto_scaling_groups()[0];
        assert_eq!(
            (g.min_size(), g.max_size(), g.desired_capacity()),
            (Some(2), Some(5), Some(2))
        );
        let mut subnets: Vec<&str> = g.vpc_zone_identifier().unwrap().split(',').collect();
        subnets.sort();
        let mut private: Vec<&str> = network
            .private_subnet_ids
            .iter()
            .map(String::as_str)
            .collect();
        private.sort();
        assert_eq!(subnets, private);
        assert_eq!(g.instances().len(), 2, "two instances launched");
        let uri = &outputs.repositories["backend"];
        let name = uri.rsplit_once('/').unwrap().1;
        let repo = ecr
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
            .unwrap();
        let r = &repo.repositories()[0];
        assert_eq!(
            r.image_scanning_configuration().map(|c| c.scan_on_push()),
            Some(true)
        );
        assert_eq!(
            r.image_tag_mutability().map(|m| m.as_str()),
            Some("IMMUTABLE")
        );
        let lifecycle = ecr
            .get_lifecycle_policy()
            .repository_name(name)
            .send()
            .await
            .unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(lifecycle.lifecycle_policy_text().unwrap()).unwrap();
        assert_eq!(policy["rules"][0]["selection"]["countNumber"], 10);
        // MongoDB Atlas: the connection string of the Kubernetes Secret copied into the stack's
        // own secret, which the API's role may read; the value is nowhere in the status.
        assert_eq!(condition(&status, "DatabaseReady"), "True");
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        let listed = secrets.list_secrets().send().await.unwrap();
        let external = listed
            .secret_list()
            .iter()
            .find(|s| {
                s.name()
                    .is_some_and(|n| n.contains("starttech-database-external"))
            })
            .expect("the external database's secret");
        let value = secrets
            .get_secret_value()
            .secret_id(external.arn().unwrap())
            .send()
            .await
            .unwrap();
        let uri = "mongodb+srv://starttech:replace-me@cluster0.example.mongodb.net/starttech";
        assert_eq!(value.secret_string(), Some(uri));
        assert!(!serde_json::to_string(&status)
            .unwrap()
            .contains("replace-me"));
        // A changed value is a new version; one that comes back (A, B, A) too.
        for next in [
            "mongodb+srv://starttech:rotated@cluster0.example.mongodb.net/starttech",
            uri,
        ] {
            let secret: k8s_openapi::api::core::v1::Secret =
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": "starttech-mongodb"},
                    "stringData": {"uri": next},
                }))
                .unwrap();
            let mut inputs = webstack::inputs::Inputs::default();
            inputs.add_secret(&secret);
            let p = stack::prepare_with(example("starttech.yaml", "starttech"), &connect, inputs)
                .await
                .unwrap();
            p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
            let now = secrets
                .get_secret_value()
                .secret_id(external.arn().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(now.secret_string(), Some(next));
        }
        let iam = aws_sdk_iam::Client::new(&sdk_config(&moto.url(), "us-east-1").await);
        let roles = iam
            .list_roles()
            .path_prefix("/webstack/default/starttech/")
            .send()
            .await
            .unwrap();
        let document = iam
            .get_role_policy()
            .role_name(roles.roles()[0].role_name())
            .policy_name("webstack")
            .send()
            .await
            .unwrap();
        let document: serde_json::Value =
            serde_json::from_str(&percent_decoded(document.policy_document())).unwrap();
        let readable = document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "ReadOwnSecrets")
            .map(|s| s["Resource"].clone())
            .unwrap();
        assert_eq!(readable, serde_json::json!([external.arn().unwrap()]));
    })
    .await;

    Box::pin(async {
        // Multi-AZ MySQL (reference 001): the API's instances in the public subnets, 2 to 4.
        let (status, _) = apply_example(&connect, "multi-az-mysql.yaml", "mysql").await;
        assert_eq!(condition(&status, "BackendReady"), "True");
        assert_eq!(condition(&status, "DatabaseReady"), "True");
        let outputs = status.outputs.clone().unwrap();
        let network = outputs.network.clone().unwrap();
        let config = sdk_config(&moto.url(), "eu-central-1").await;
        let asg = aws_sdk_autoscaling::Client::new(&config);
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let group = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&outputs.tiers["api"].auto_scaling_group)
            .send()
            .await
            .unwrap();
        let g = &group.auto_scaling_groups()[0];
        assert_eq!((g.min_size(), g.max_size()), (Some(2), Some(4)));
        let mut subnets: Vec<&str> = g.vpc_zone_identifier().unwrap().split(',').collect();
        subnets.sort();
        let mut public: Vec<&str> = network
            .public_subnet_ids
            .iter()
            .map(String::as_str)
            .collect();
        public.sort();
        assert_eq!(subnets, public);
        let roles = network.security_group_ids.clone();
        assert_eq!(
            group_rules(&ec2, &roles, "database").await,
            [pair(3306, "app-api")]
        );
        // The JWT signing secret: generated by AWS, given to the API by ARN, its value nowhere in
        // the status.
        assert_eq!(condition(&status, "IdentityReady"), "True");
        let jwt = outputs
            .jwt_secret_arn
            .clone()
            .expect("the JWT secret's ARN");
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        let value = secrets
            .get_secret_value()
            .secret_id(&jwt)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        assert_eq!(value.len(), 64);
        assert!(!serde_json::to_string(&status).unwrap().contains(&value));
        assert_eq!(
            group_rules(&ec2, &roles, "app-api").await,
            [pair(3000, "load-balancer-api")]
        );
    })
    .await;

    Box::pin(async {
        // Tekamolo (reference 003): one instance with a fixed public address, HTTPS with the
        // stack's certificate, SSH from the listed range.
        let (status, _) = apply_example(&connect, "tekamolo.yaml", "tekamolo").await;
        assert_eq!(condition(&status, "BackendReady"), "True");
        let outputs = status.outputs.clone().unwrap();
        let tier = &outputs.tiers["api"];
        let ip = tier.public_ip.clone().expect("a fixed address");
        let config = sdk_config(&moto.url(), "us-east-1").await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let asg = aws_sdk_autoscaling::Client::new(&config);
        let group = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&tier.auto_scaling_group)
            .send()
            .await
            .unwrap();
        let instance = group.auto_scaling_groups()[0].instances()[0]
            .instance_id()
            .unwrap()
            .to_owned();
        let addresses = ec2
            .describe_addresses()
            .public_ips(&ip)
            .send()
            .await
            .unwrap();
        assert_eq!(
            addresses.addresses()[0].instance_id(),
            Some(instance.as_str())
        );
        let roles = outputs.network.clone().unwrap().security_group_ids;
        assert_eq!(
            group_rules(&ec2, &roles, "app-api").await,
            [pair(22, "198.51.100.0/24"), pair(8080, "load-balancer-api")]
        );
        assert_eq!(
            group_rules(&ec2, &roles, "load-balancer-api").await,
            [pair(80, "0.0.0.0/0"), pair(443, "0.0.0.0/0")]
        );
    })
    .await;
}

/// StartTech with the tiers built so far (its frontend and CDN come with the edge tier and
/// are left out here).
fn starttech_built_so_far(name: &str) -> webstack::api::WebStack {
    let mut s = example("starttech.yaml", name);
    s.spec.frontend = None;
    s.spec.cdn = None;
    s
}

/// The process stops right after a mutating call, at an even sample of at least 24 of the
/// calls of a clean apply of StartTech; a new apply converges to exactly what a clean apply
/// makes (no duplicate of any kind), and destroy leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_anywhere_in_starttech_converges_without_duplicates_and_destroys_clean() {
    use webstack::aws::client::{CRASH_AFTER_MUTATIONS_ENV, CRASH_EXIT_CODE};
    let moto = Moto::start();
    let region = "eu-west-1";
    let ec2 = ec2(&moto.url(), region).await;
    let file =
        TempManifest::new(&serde_yaml::to_string(&starttech_built_so_far("crashy")).unwrap());
    let secret = example_secret_file("starttech-mongodb.yaml");
    let apply = |k: Option<u64>| {
        let k = k.map(|k| k.to_string());
        let env: Vec<(&str, &str)> = k
            .iter()
            .map(|k| (CRASH_AFTER_MUTATIONS_ENV, k.as_str()))
            .collect();
        run_cli(
            &moto.url(),
            &["apply", "-f", file.path(), "-f", &secret, "--show-calls"],
            &env,
        )
    };
    let everything = || async {
        let mut all: BTreeMap<&'static str, usize> = census(&ec2).await;
        all.extend(backend_census(&moto.url(), region).await);
        all.insert("repositories", repositories(&moto.url(), region).await);
        all.extend(caches(&moto.url(), region).await);
        all
    };
    let pristine = everything().await;
    let clean = apply(None);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let total = mutating_calls(&clean);
    let reference = everything().await;
    assert_eq!(reference["auto scaling groups"], 1);
    assert_eq!(reference["load balancers"], 1);
    assert_eq!(reference["repositories"], 1);
    assert_eq!(reference["replication groups"], 1);
    assert_eq!(reference["alarms"], 4);
    // Every point would not fit in CI: an even sample, which moves from run to run.
    for k in crash_points(total, 24) {
        moto.reset();
        assert_eq!(everything().await, pristine);
        let crashed = apply(Some(k));
        assert_eq!(
            crashed.status.code(),
            Some(CRASH_EXIT_CODE),
            "the apply was to stop after mutating call {k}: {}",
            String::from_utf8_lossy(&crashed.stderr)
        );
        let resumed = apply(None);
        assert!(
            resumed.status.success(),
            "resume after crash {k}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            everything().await,
            reference,
            "after a crash at mutating call {k} of {total}"
        );
        let destroyed = run_cli(&moto.url(), &["destroy", "-f", file.path()], &[]);
        assert!(
            destroyed.status.success(),
            "destroy after crash {k}: {}",
            String::from_utf8_lossy(&destroyed.stderr)
        );
        assert_eq!(
            everything().await,
            pristine,
            "destroy after a crash at mutating call {k} left something"
        );
    }
}

async fn repositories(endpoint: &str, region: &str) -> usize {
    let ecr = aws_sdk_ecr::Client::new(&sdk_config(endpoint, region).await);
    ecr.describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .len()
}

async fn caches(endpoint: &str, region: &str) -> BTreeMap<&'static str, usize> {
    let ec = aws_sdk_elasticache::Client::new(&sdk_config(endpoint, region).await);
    let groups = ec.describe_replication_groups().send().await.unwrap();
    let subnets = ec.describe_cache_subnet_groups().send().await.unwrap();
    BTreeMap::from([
        ("replication groups", groups.replication_groups().len()),
        (
            "cache subnet groups",
            subnets
                .cache_subnet_groups()
                .iter()
                .filter(|g| g.cache_subnet_group_name() != Some("default"))
                .count(),
        ),
    ])
}

/// `monitoring.notify`: a topic with an e-mail subscription per address, every alarm telling
/// it; a changed list changes the subscriptions; destroy takes topic and alarms away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_tell_the_people_named_and_go_with_the_stack() {
    use webstack::api::{AlarmMetric, AlarmSpec, Comparison, MonitoringSpec};
    let moto = Moto::start();
    let (connect, _api) = connect(&moto.url());
    let mut s = example("multi-az-mysql.yaml", "told");
    // Destroyed at the end: the database may go.
    if let Some(rds) = s.spec.database.as_mut().and_then(|d| d.rds.as_mut()) {
        rds.deletion_protection = false;
    }
    let alarm = |name: &str, metric, target: Option<&str>| AlarmSpec {
        name: name.into(),
        metric,
        target: target.map(str::to_owned),
        comparison: Comparison::GreaterThan,
        threshold: 80.0,
        period_seconds: 60,
        evaluation_periods: 3,
    };
    s.spec.monitoring = Some(MonitoringSpec {
        log_retention_days: 7,
        max_alarms: 10,
        alarms: vec![
            alarm("database-cpu", AlarmMetric::DatabaseCpu, None),
            alarm("api-cpu", AlarmMetric::Cpu, Some("api")),
        ],
        notify: vec!["ops@example.com".into(), "dev@example.com".into()],
    });
    let p = stack::prepare(s.clone(), &connect).await.unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = p.status(&outcome, None);
    assert_eq!(condition(&status, "MonitoringReady"), "True", "{status:?}");

    let config = sdk_config(&moto.url(), "eu-central-1").await;
    let sns = aws_sdk_sns::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let topics = sns.list_topics().send().await.unwrap();
    assert_eq!(topics.topics().len(), 1);
    let topic = topics.topics()[0].topic_arn().unwrap().to_owned();
    let tags = sns
        .list_tags_for_resource()
        .resource_arn(&topic)
        .send()
        .await
        .unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == "webstack.io/stack" && t.value() == "default/told"));
    let emails = || async {
        let mut e: Vec<String> = sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic)
            .send()
            .await
            .unwrap()
            .subscriptions()
            .iter()
            .filter(|s| s.protocol() == Some("email"))
            .map(|s| s.endpoint().unwrap().to_owned())
            .collect();
        e.sort();
        e
    };
    assert_eq!(emails().await, ["dev@example.com", "ops@example.com"]);
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_name_prefix("webstack/default/told/")
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.metric_alarms().len(), 2);
    for a in alarms.metric_alarms() {
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.evaluation_periods(), Some(3));
        assert_eq!(a.period(), Some(60));
    }

    // A changed list: the new address subscribed, the dropped one unsubscribed.
    s.spec.monitoring.as_mut().unwrap().notify =
        vec!["ops@example.com".into(), "sre@example.com".into()];
    let p = stack::prepare(s.clone(), &connect).await.unwrap();
    p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    assert_eq!(emails().await, ["ops@example.com", "sre@example.com"]);

    let destroyed = p.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(destroyed.failures.is_empty(), "{:?}", destroyed.failures);
    assert!(sns.list_topics().send().await.unwrap().topics().is_empty());
    let left = cloudwatch.describe_alarms().send().await.unwrap();
    assert!(left.metric_alarms().is_empty(), "{left:?}");
}

/// CloudWatch speaks CBOR: its throttling and unavailability answers are recognised as such
/// by the call layer and retried, like every other service's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_faults_are_classified_and_retried() {
    use webstack::aws::client::Effect;
    let moto = Moto::start();
    let proxy = FaultyProxy::start(&moto.url(), 0.4, 11);
    let (faulty, _) = connect(&proxy.url());
    let (config, api) = faulty.connect(Some("eu-west-1")).await.unwrap();
    let scope = webstack::aws::Scope::new(
        webstack::aws::StackRef::new("default", "faults", None),
        &config,
        api.clone(),
        BTreeMap::new(),
    );
    for _ in 0..20 {
        scope
            .api
            .call("cloudwatch", "DescribeAlarms", Effect::Read, || {
                scope.cloudwatch.describe_alarms().send()
            })
            .await
            .expect("retried until answered");
    }
    let (_, throttled, unavailable) = proxy.stats();
    assert!(
        throttled > 0 && unavailable > 0,
        "{throttled} {unavailable}"
    );
    let counts = api.counts();
    let outcomes = &counts.0["cloudwatch"]["DescribeAlarms"];
    let refused: u64 = outcomes
        .iter()
        .filter(|(k, _)| k.as_str() != "ok")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(refused, throttled + unavailable, "{outcomes:?}");
}

/// `encryption.customerManagedKey`: one key with rotation and an alias under the stack's
/// prefix; the database, the cache, the secret, the log groups and the instances' volumes are
/// encrypted with it; re-apply changes nothing; destroy schedules the key's deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_at_rest_is_encrypted_with_the_stacks_own_key() {
    let moto = Moto::start();
    let region = "eu-north-1";
    let (connect, _api) = connect(&moto.url());
    public_zone(&moto.url(), "example.com").await;
    let mut s = example("stockholm-two-tier.yaml", "keyed");
    s.spec.encryption.customer_managed_key = true;
    s.spec.identity = Some(serde_json::from_value(serde_json::json!({"kind": "Jwt"})).unwrap());
    if let Some(rds) = s.spec.database.as_mut().and_then(|d| d.rds.as_mut()) {
        rds.deletion_protection = false;
    }
    let p = stack::prepare(s.clone(), &connect).await.unwrap();
    let outcome = p.apply_until_ready(TIMEOUT, &Silent).await.unwrap();
    let status = p.status(&outcome, None);
    assert_eq!(condition(&status, "EncryptionReady"), "True", "{status:?}");

    let config = sdk_config(&moto.url(), region).await;
    let kms = aws_sdk_kms::Client::new(&config);
    let aliases = kms.list_aliases().send().await.unwrap();
    let alias = aliases
        .aliases()
        .iter()
        .find(|a| {
            a.alias_name()
                .is_some_and(|n| n.starts_with("alias/webstack/default/keyed/key-"))
        })
        .expect("the stack's alias");
    let key = kms
        .describe_key()
        .key_id(alias.target_key_id().unwrap())
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .clone();
    let arn = key.arn().unwrap().to_owned();
    let rotation = kms
        .get_key_rotation_status()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());

    // Each consumer, as its own service reports it.
    let rds = aws_sdk_rds::Client::new(&config);
    let db = rds.describe_db_instances().send().await.unwrap();
    assert_eq!(db.db_instances()[0].kms_key_id(), Some(arn.as_str()));
    let elasticache = aws_sdk_elasticache::Client::new(&config);
    let groups = elasticache
        .describe_replication_groups()
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.replication_groups()[0].kms_key_id(),
        Some(arn.as_str())
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let listed = secrets.list_secrets().send().await.unwrap();
    let jwt = listed
        .secret_list()
        .iter()
        .find(|s| s.name().is_some_and(|n| n.contains("keyed-jwt")))
        .expect("the JWT secret");
    assert_eq!(jwt.kms_key_id(), Some(arn.as_str()));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/webstack/default/keyed/")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 2);
    for g in groups.log_groups() {
        assert_eq!(g.kms_key_id(), Some(arn.as_str()));
    }
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let templates = ec2.describe_launch_templates().send().await.unwrap();
    for t in templates.launch_templates() {
        let versions = ec2
            .describe_launch_template_versions()
            .launch_template_id(t.launch_template_id().unwrap())
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let data = versions.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        let ebs = data.block_device_mappings()[0].ebs().unwrap();
        assert_eq!(ebs.kms_key_id(), Some(arn.as_str()));
    }

    // Nothing left to do.
    let again = stack::prepare(s.clone(), &connect).await.unwrap();
    let plan = again.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");

    // Destroy: the alias goes, the key waits out AWS's longest window.
    let destroyed = again.destroy_until_gone(TIMEOUT, &Silent).await.unwrap();
    assert!(destroyed.failures.is_empty(), "{:?}", destroyed.failures);
    let state = kms
        .describe_key()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_state()
        .cloned();
    assert_eq!(state, Some(aws_sdk_kms::types::KeyState::PendingDeletion));
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(!aliases.aliases().iter().any(|a| a
        .alias_name()
        .is_some_and(|n| n.starts_with("alias/webstack/"))));
}
