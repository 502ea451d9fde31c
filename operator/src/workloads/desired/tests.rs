use super::*;
use crate::api::{CacheOutputs, DatabaseOutputs};

fn shop() -> WebStack {
    let mut stack: WebStack =
        serde_yaml::from_str(include_str!("../../../../examples/in-cluster.yaml")).unwrap();
    stack.metadata.uid = Some("uid-1".into());
    stack
}

fn outputs() -> Outputs {
    Outputs {
        url: Some("https://shop.example.com".into()),
        database: Some(DatabaseOutputs {
            endpoint: "db.abc.eu-west-1.rds.amazonaws.com".into(),
            port: 5432,
            secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1".into(),
            identifier: "in-cluster-shop".into(),
        }),
        cache: Some(CacheOutputs {
            endpoint: "cache.abc.euw1.cache.amazonaws.com".into(),
            port: 6379,
        }),
        ..Default::default()
    }
}

fn v2() -> Settings {
    Settings {
        ingress_class: None,
        autoscaling_v2: true,
    }
}

fn find<'a>(d: &'a Desired, kind: ObjectKind, name: &str) -> &'a Value {
    &d.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} in {:?}", names(d)))
        .body
}

fn names(d: &Desired) -> Vec<(ObjectKind, &str)> {
    d.objects
        .iter()
        .map(|o| (o.kind, o.name.as_str()))
        .collect()
}

fn secret_data(d: &Desired) -> BTreeMap<String, String> {
    let body = find(d, ObjectKind::Secret, "in-cluster-shop-connection");
    let data: BTreeMap<String, ByteString> = serde_json::from_value(body["data"].clone()).unwrap();
    data.into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

#[test]
fn every_workload_gets_its_objects_owned_by_the_stack_and_applied_in_dependency_order() {
    let d = desired(&shop(), Some(&outputs()), None, &v2());
    use ObjectKind::*;
    assert_eq!(
        names(&d),
        vec![
            (ConfigMap, "in-cluster-shop-endpoints"),
            (Secret, "in-cluster-shop-connection"),
            (Service, "in-cluster-shop-frontend"),
            (Deployment, "in-cluster-shop-frontend"),
            (Ingress, "in-cluster-shop-frontend"),
            (PodDisruptionBudget, "in-cluster-shop-frontend"),
            (Service, "in-cluster-shop-api"),
            (Deployment, "in-cluster-shop-api"),
            (Ingress, "in-cluster-shop-api"),
            (HorizontalPodAutoscaler, "in-cluster-shop-api"),
            (PodDisruptionBudget, "in-cluster-shop-api"),
        ]
    );
    assert!(d.shortfalls.is_empty());
    for o in &d.objects {
        let meta = &o.body["metadata"];
        assert_eq!(meta["namespace"], "default");
        assert_eq!(meta["labels"][STACK_LABEL], "in-cluster-shop");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], MANAGED_BY);
        let owner = &meta["ownerReferences"][0];
        assert_eq!(owner["kind"], "WebStack");
        assert_eq!(owner["apiVersion"], "webstack.io/v1alpha1");
        assert_eq!(owner["uid"], "uid-1");
        assert_eq!(owner["controller"], true);
        assert_eq!(o.body["kind"], o.kind.kind());
    }
}

#[test]
fn a_deployment_runs_the_spec_image_with_the_stack_endpoints_and_leaves_an_autoscaled_count_alone()
{
    let d = desired(&shop(), Some(&outputs()), None, &v2());
    let api = &find(&d, ObjectKind::Deployment, "in-cluster-shop-api")["spec"];
    // The autoscaler owns the count.
    assert!(api.get("replicas").is_none());
    let c = &api["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example.com/shop/api:2.0.1");
    assert_eq!(c["ports"][0]["containerPort"], 3000);
    assert_eq!(c["env"], json!([{"name": "LOG_LEVEL", "value": "info"}]));
    assert_eq!(
        c["envFrom"],
        json!([
            {"configMapRef": {"name": "in-cluster-shop-endpoints"}},
            {"secretRef": {"name": "in-cluster-shop-connection", "optional": true}},
        ])
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "512Mi"})
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        api["selector"]["matchLabels"],
        api["template"]["metadata"]["labels"]
            .as_object()
            .map(|l| json!({STACK_LABEL: l[STACK_LABEL], COMPONENT_LABEL: l[COMPONENT_LABEL]}))
            .unwrap()
    );
    let web = &find(&d, ObjectKind::Deployment, "in-cluster-shop-frontend")["spec"];
    assert_eq!(web["replicas"], 2);

    let hpa = &find(
        &d,
        ObjectKind::HorizontalPodAutoscaler,
        "in-cluster-shop-api",
    )["spec"];
    assert_eq!(hpa["minReplicas"], 2);
    assert_eq!(hpa["maxReplicas"], 6);
    assert_eq!(hpa["scaleTargetRef"]["name"], "in-cluster-shop-api");
    assert_eq!(
        hpa["metrics"][0]["resource"]["target"]["averageUtilization"],
        65
    );
    let svc = &find(&d, ObjectKind::Service, "in-cluster-shop-api")["spec"];
    assert_eq!(svc["ports"][0]["targetPort"], "http");
    let ing = &find(&d, ObjectKind::Ingress, "in-cluster-shop-api")["spec"];
    assert_eq!(ing["ingressClassName"], "nginx");
    assert_eq!(ing["rules"][0]["host"], "shop.example.com");
    assert_eq!(ing["rules"][0]["http"]["paths"][0]["path"], "/api");

    let config = &find(&d, ObjectKind::ConfigMap, "in-cluster-shop-endpoints")["data"];
    assert_eq!(config["WEBSTACK_URL"], "https://shop.example.com");
    assert_eq!(
        config["WEBSTACK_API_URL"],
        "http://in-cluster-shop-api.default.svc"
    );
    assert_eq!(
        config["WEBSTACK_FRONTEND_URL"],
        "http://in-cluster-shop-frontend.default.svc"
    );
}

#[test]
fn the_connection_secret_holds_the_password_only_when_the_spec_asks_for_it() {
    let data = secret_data(&desired(&shop(), Some(&outputs()), Some("s3cret"), &v2()));
    assert_eq!(data["DATABASE_HOST"], "db.abc.eu-west-1.rds.amazonaws.com");
    assert_eq!(data["DATABASE_PORT"], "5432");
    assert_eq!(data["DATABASE_NAME"], "shop");
    assert_eq!(data["DATABASE_ENGINE"], "postgres");
    assert!(data["DATABASE_PASSWORD_SECRET_ARN"].starts_with("arn:aws:secretsmanager:"));
    assert_eq!(data["CACHE_HOST"], "cache.abc.euw1.cache.amazonaws.com");
    assert_eq!(data["CACHE_PORT"], "6379");
    assert!(!data.contains_key("DATABASE_PASSWORD"));
    assert!(!data.values().any(|v| v.contains("s3cret")));

    let mut asks = shop();
    asks.spec.connection_secret.include_password = true;
    let data = secret_data(&desired(&asks, Some(&outputs()), Some("s3cret"), &v2()));
    assert_eq!(data["DATABASE_PASSWORD"], "s3cret");

    // Before the database exists, the Secret says what is known.
    let data = secret_data(&desired(&shop(), None, None, &v2()));
    assert_eq!(data["DATABASE_USER"], "app");
    assert!(!data.contains_key("DATABASE_HOST"));
}

#[test]
fn without_autoscaling_v2_a_scaled_workload_runs_a_fixed_count_and_says_which_field() {
    let settings = Settings {
        autoscaling_v2: false,
        ..v2()
    };
    let d = desired(&shop(), Some(&outputs()), None, &settings);
    assert!(!names(&d)
        .iter()
        .any(|(k, _)| *k == ObjectKind::HorizontalPodAutoscaler));
    let api = &find(&d, ObjectKind::Deployment, "in-cluster-shop-api")["spec"];
    assert_eq!(api["replicas"], 2);
    // Two pods still deserve a disruption budget.
    find(&d, ObjectKind::PodDisruptionBudget, "in-cluster-shop-api");
    assert_eq!(d.shortfalls.len(), 1);
    assert_eq!(d.shortfalls[0].field, "spec.backend.tiers[0].scaling");
    assert!(d.shortfalls[0].message.contains("autoscaling/v2"));
}

#[test]
fn the_ingress_class_comes_from_the_spec_then_the_operator_and_an_ingress_can_be_left_out() {
    let mut stack = shop();
    let settings = Settings {
        ingress_class: Some("alb".into()),
        ..v2()
    };
    let frontend = stack
        .spec
        .frontend
        .as_mut()
        .and_then(|f| f.in_cluster.as_mut())
        .unwrap();
    frontend.ingress.class_name = None;
    frontend.replicas = 1;
    let d = desired(&stack, None, None, &settings);
    let ing = &find(&d, ObjectKind::Ingress, "in-cluster-shop-frontend")["spec"];
    assert_eq!(ing["ingressClassName"], "alb");
    let api = &find(&d, ObjectKind::Ingress, "in-cluster-shop-api")["spec"];
    assert_eq!(api["ingressClassName"], "nginx");
    // One pod: no disruption budget.
    assert!(!d.contains(ObjectKind::PodDisruptionBudget, "in-cluster-shop-frontend"));

    let d = desired(&stack, None, None, &v2());
    let ing = &find(&d, ObjectKind::Ingress, "in-cluster-shop-frontend")["spec"];
    assert!(ing.get("ingressClassName").is_none());

    stack
        .spec
        .frontend
        .as_mut()
        .and_then(|f| f.in_cluster.as_mut())
        .unwrap()
        .ingress
        .enabled = false;
    let d = desired(&stack, None, None, &v2());
    assert!(!d.contains(ObjectKind::Ingress, "in-cluster-shop-frontend"));
    assert!(d.contains(ObjectKind::Ingress, "in-cluster-shop-api"));
}

#[test]
fn a_stack_with_nothing_in_the_cluster_wants_no_object() {
    let stack: WebStack =
        serde_yaml::from_str(include_str!("../../../../examples/network-only.yaml")).unwrap();
    assert!(!has_any(&stack));
    assert!(desired(&stack, None, None, &v2()).is_empty());
    // A database alone still gets its connection Secret, and no ConfigMap.
    let mut with_cache = stack.clone();
    with_cache.spec.cache = shop().spec.cache;
    assert!(has_any(&with_cache));
    let d = desired(&with_cache, None, None, &v2());
    assert_eq!(
        names(&d),
        vec![(ObjectKind::Secret, "network-only-connection")]
    );
}
