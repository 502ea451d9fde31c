//! The Helm chart (`charts/webstack-operator`).
//!
//! The chart is linted and rendered with a real Helm (`WEBSTACK_HELM`, which `cargo xtask
//! setup` fetches), the flags it passes are checked against the `webstack run` binary, every
//! rendered object is applied to a real API server (server-side dry run), and the chart is
//! installed there and uninstalled.
//!
//! The sample values (`tests/fixtures/chart/irsa.yaml`) carry a `roleMap`, so every test that
//! renders them sees the role map's ConfigMap, its mount and `--role-map`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::{chart, show, strings, succeed};
use webstack_tests::apiserver::{self, ApiServer, NEWEST};
use webstack_tests::{repo_root, webstack_bin};

const RELEASE: &str = "webstack";
const NAMESPACE: &str = "webstack-system";
const SAMPLE_VALUES: &str = "tests/fixtures/chart/irsa.yaml";
/// The ConfigMap of the role map (`roleMap`), in the release's namespace.
const ROLE_MAP: &str = "ConfigMap/webstack-webstack-operator-role-map";
/// Where the Deployment mounts it, and the file `--role-map` names.
const ROLE_MAP_DIR: &str = "/etc/webstack";
const ROLE_MAP_FILE: &str = "/etc/webstack/role-map.yaml";

fn sample_values() -> String {
    repo_root().join(SAMPLE_VALUES).display().to_string()
}

/// The `roleMap` of the sample values.
fn sample_role_map() -> Value {
    let text = std::fs::read_to_string(sample_values()).unwrap();
    let values =
        serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap();
    values["roleMap"].clone()
}

/// helm: `WEBSTACK_HELM`, set by `cargo xtask test` (and printed by `cargo xtask setup`).
fn helm_bin() -> PathBuf {
    let path = std::env::var_os("WEBSTACK_HELM").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "WEBSTACK_HELM is not set: run `cargo xtask setup` and set WEBSTACK_HELM to the helm it prints \
             (or run the suite with `cargo xtask test`)"
        )
    });
    assert!(
        path.is_file(),
        "WEBSTACK_HELM={} does not exist: run `cargo xtask setup`",
        path.display()
    );
    path
}

fn helm(args: &[&str]) -> Output {
    Command::new(helm_bin())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run helm")
}

/// `helm template` of the chart with extra arguments, as text.
fn template_text(extra: &[&str]) -> String {
    let chart = chart().display().to_string();
    let mut args = vec![
        "template",
        RELEASE,
        chart.as_str(),
        "--namespace",
        NAMESPACE,
    ];
    args.extend_from_slice(extra);
    succeed(&format!("helm {}", args.join(" ")), helm(&args))
}

/// The documents of a multi-document YAML text, as JSON values.
fn documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            let v: serde_yaml::Value = serde_yaml::from_str(&current)
                .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{current}"));
            let v = serde_json::to_value(v).unwrap();
            if !v.is_null() {
                docs.push(v);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// The rendered objects by "Kind/name".
fn render(extra: &[&str]) -> BTreeMap<String, Value> {
    documents(&template_text(extra))
        .into_iter()
        .map(|d| {
            let key = format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            );
            (key, d)
        })
        .collect()
}

fn the<'a>(objects: &'a BTreeMap<String, Value>, key: &str) -> &'a Value {
    objects.get(key).unwrap_or_else(|| {
        panic!(
            "no {key} among the rendered objects: {:?}",
            objects.keys().collect::<Vec<_>>()
        )
    })
}

fn container(objects: &BTreeMap<String, Value>) -> &Value {
    &the(objects, "Deployment/webstack-webstack-operator")["spec"]["template"]["spec"]["containers"]
        [0]
}

/// The value following `flag` in the container's arguments.
fn flag(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn env_of(c: &Value) -> BTreeMap<String, Value> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// The verbs each resource ("group/resource") gets from the rules of a Role or ClusterRole.
fn grants(role: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                out.entry(format!("{group}/{resource}"))
                    .or_default()
                    .extend(strings(&rule["verbs"]));
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `items` and `more`, as a set.
fn set_with(items: &[&str], more: &[&str]) -> BTreeSet<String> {
    items.iter().chain(more).map(|s| s.to_string()).collect()
}

/// Least privilege: no wildcard, Secrets never listed or watched, and exactly the verbs the
/// operator needs on its own kinds.
fn assert_operator_rules(role: &Value) {
    for rule in role["rules"].as_array().unwrap() {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                !strings(&rule[field]).iter().any(|s| s.contains('*')),
                "a wildcard in {field}: {rule}"
            );
        }
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "no non-resource URLs: {rule}"
        );
    }
    let g = grants(role);
    let secrets = &g["/secrets"];
    assert!(
        secrets.contains("get") && !secrets.contains("list") && !secrets.contains("watch"),
        "Secrets are read by name only (get), never listed or watched: {secrets:?}"
    );
    assert_eq!(
        g["webstack.io/webstacks"],
        set(&["get", "list", "watch", "patch", "update"])
    );
    assert_eq!(
        g["webstack.io/webstacks/status"],
        set(&["get", "patch", "update"])
    );
    assert_eq!(g["webstack.io/webstacks/finalizers"], set(&["update"]));
    assert_eq!(g["events.k8s.io/events"], set(&["create", "patch"]));
    assert_eq!(g["/events"], set(&["create", "patch"]));
    // Listed by a stack's labels to delete what it no longer declares; never watched.
    let workload = set(&["get", "list", "create", "patch", "update", "delete"]);
    for kind in [
        "apps/deployments",
        "/services",
        "/configmaps",
        "networking.k8s.io/ingresses",
        "autoscaling/horizontalpodautoscalers",
        "policy/poddisruptionbudgets",
    ] {
        assert_eq!(g.get(kind), Some(&workload), "{kind}");
    }
    assert!(
        !g.keys().any(|k| k.starts_with("coordination.k8s.io/")),
        "Leases only in the release's namespace, not in the watched ones: {g:?}"
    );
    let known: BTreeSet<&str> = [
        "webstack.io/webstacks",
        "webstack.io/webstacks/status",
        "webstack.io/webstacks/finalizers",
        "events.k8s.io/events",
        "/events",
        "/secrets",
        "apps/deployments",
        "/services",
        "/configmaps",
        "networking.k8s.io/ingresses",
        "autoscaling/horizontalpodautoscalers",
        "policy/poddisruptionbudgets",
    ]
    .into();
    let extra: Vec<_> = g.keys().filter(|k| !known.contains(k.as_str())).collect();
    assert!(extra.is_empty(), "grants nobody asked for: {extra:?}");
}

/// The objects every rendering has, whatever the values (without a watched namespace): one
/// Deployment, its ServiceAccount, the metrics Service, cluster-wide RBAC and the Role for the
/// shard Leases. No PodDisruptionBudget; a ConfigMap only for a `roleMap`.
const CLUSTER_WIDE: &[&str] = &[
    "ClusterRole/webstack-webstack-operator",
    "ClusterRoleBinding/webstack-webstack-operator",
    "Deployment/webstack-webstack-operator",
    LEASE_ROLE,
    LEASE_BINDING,
    "Service/webstack-webstack-operator-metrics",
    "ServiceAccount/webstack-webstack-operator",
];
const LEASE_ROLE: &str = "Role/webstack-webstack-operator-leases";
const LEASE_BINDING: &str = "RoleBinding/webstack-webstack-operator-leases";

/// The container's arguments after `run`, as flag and value pairs, in order.
fn run_args(c: &Value) -> Vec<(String, String)> {
    let args = strings(&c["args"]);
    assert_eq!(args.first().map(String::as_str), Some("run"), "{args:?}");
    assert!(args.len() % 2 == 1, "every flag has a value: {args:?}");
    args[1..]
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

/// `n` pods, rolled (they share the stacks through Leases), told their own name and namespace.
fn assert_pods(deployment: &Value, n: u64) {
    assert_eq!(deployment["spec"]["replicas"], n);
    assert!(
        deployment["spec"].get("strategy").is_none(),
        "the default rolling update: a stopping pod hands its shards over"
    );
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env = env_of(c);
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
}

/// The Role for the shard Leases: in the release's namespace, Leases only.
fn assert_lease_role(objects: &BTreeMap<String, Value>) {
    let role = the(objects, LEASE_ROLE);
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    let g = grants(role);
    assert_eq!(
        g.keys().collect::<Vec<_>>(),
        ["coordination.k8s.io/leases"],
        "{g:?}"
    );
    assert_eq!(
        g["coordination.k8s.io/leases"],
        set(&["get", "list", "watch", "create", "patch", "update", "delete"])
    );
    let binding = the(objects, LEASE_BINDING);
    assert_eq!(binding["metadata"]["namespace"], NAMESPACE);
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
}

#[test]
fn chart_lints_with_default_and_sample_values() {
    let chart = chart().display().to_string();
    let values = sample_values();
    succeed(
        "helm lint (default values)",
        helm(&["lint", "--strict", &chart]),
    );
    succeed(
        "helm lint (sample values)",
        helm(&["lint", "--strict", &chart, "-f", &values]),
    );
}

#[test]
fn default_values_render_a_locked_down_controller() {
    let objects = render(&[]);
    let kinds: BTreeSet<_> = objects.keys().cloned().collect();
    assert_eq!(
        kinds,
        set(CLUSTER_WIDE),
        "no PodDisruptionBudget, no ServiceMonitor unless enabled, no role map's ConfigMap \
         without a roleMap"
    );
    for (key, o) in &objects {
        let labels = &o["metadata"]["labels"];
        for label in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ] {
            assert!(labels[label].is_string(), "{key} has no label {label}");
        }
    }

    let deployment = the(&objects, "Deployment/webstack-webstack-operator");
    assert_pods(deployment, 1);
    assert_lease_role(&objects);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "webstack-webstack-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(
        deployment["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none(),
        "no pod annotations by default: {}",
        deployment["spec"]["template"]["metadata"]
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}])
    );
    let c = container(&objects);
    assert_eq!(
        c["image"],
        format!(
            "ghcr.io/webstack-io/webstack-operator:{}",
            chart_yaml()["appVersion"].as_str().unwrap()
        ),
        "the tag defaults to the chart's appVersion"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    assert_eq!(c["resources"]["requests"]["memory"], "64Mi");
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi");
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "tmp", "mountPath": "/tmp"}])
    );

    assert_eq!(c["command"], json!(["/usr/local/bin/webstack"]));
    assert_eq!(
        run_args(c),
        pairs(&[
            ("--resync-seconds", "300"),
            ("--retry-seconds", "15"),
            ("--concurrency", "4"),
            ("--metrics-address", "0.0.0.0:8080"),
            ("--log-format", "text"),
            ("--aws-requests-per-second", "20"),
            ("--shards", "1"),
            ("--lease-seconds", "15"),
        ]),
        "no --namespace: every namespace is watched; no --role-map: no stack may assume a role; \
         one shard: leader election"
    );

    let env = env_of(c);
    assert_eq!(
        env.keys().collect::<Vec<_>>(),
        ["POD_NAME", "POD_NAMESPACE", "WEBSTACK_LOG"],
        "no region unless set"
    );
    assert_eq!(env["WEBSTACK_LOG"]["value"], "info");

    assert_eq!(c["ports"][0]["name"], "metrics");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");

    let service = the(&objects, "Service/webstack-webstack-operator-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");

    let sa = the(&objects, "ServiceAccount/webstack-webstack-operator");
    assert!(
        sa["metadata"].get("annotations").is_none(),
        "no annotations by default: {sa}"
    );

    assert_operator_rules(the(&objects, "ClusterRole/webstack-webstack-operator"));
    let binding = the(&objects, "ClusterRoleBinding/webstack-webstack-operator");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(
        binding["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "webstack-webstack-operator", "namespace": NAMESPACE})
    );
}

#[test]
fn sample_values_render_irsa_a_region_a_request_rate_and_json_logs() {
    let values = sample_values();
    let objects = render(&["-f", &values]);
    let kinds: BTreeSet<_> = objects.keys().cloned().collect();
    assert_eq!(
        kinds,
        set_with(CLUSTER_WIDE, &[ROLE_MAP]),
        "the ServiceMonitor stays off; the roleMap brings its ConfigMap"
    );
    let deployment = the(&objects, "Deployment/webstack-webstack-operator");
    assert_pods(deployment, 3);
    assert_lease_role(&objects);
    let sa = the(&objects, "ServiceAccount/webstack-webstack-operator");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/webstack-operator"
    );
    assert_eq!(
        sa["metadata"]["annotations"]["example.com/owner"], "platform-team",
        "serviceAccount.annotations are kept next to the IRSA one"
    );

    let c = container(&objects);
    assert_eq!(
        run_args(c),
        pairs(&[
            ("--resync-seconds", "300"),
            ("--retry-seconds", "15"),
            ("--concurrency", "4"),
            ("--metrics-address", "0.0.0.0:8080"),
            ("--log-format", "json"),
            ("--aws-requests-per-second", "50"),
            ("--shards", "6"),
            ("--lease-seconds", "20"),
            ("--role-map", ROLE_MAP_FILE),
            ("--ingress-class", "nginx"),
        ])
    );
    let env = env_of(c);
    assert_eq!(env["AWS_REGION"]["value"], "eu-west-1");
    assert_eq!(env["WEBSTACK_LOG"]["value"], "info,webstack=debug");
    assert_eq!(env["AWS_STS_REGIONAL_ENDPOINTS"]["value"], "regional");

    let pod = &deployment["spec"]["template"];
    let annotations = pod["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        ["checksum/role-map", "example.com/scrape"],
        "podAnnotations, and the role map's checksum"
    );
    assert_eq!(annotations["example.com/scrape"], "true");
    assert_eq!(pod["metadata"]["labels"]["example.com/team"], "platform");
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/instance"], RELEASE,
        "podLabels add to the chart's labels"
    );
    assert_operator_rules(the(&objects, "ClusterRole/webstack-webstack-operator"));
}

#[test]
fn watching_one_namespace_uses_a_role_there() {
    let values = sample_values();
    for extra in [
        vec!["--set", "watchNamespace=team-a"],
        vec!["-f", values.as_str(), "--set", "watchNamespace=team-a"],
    ] {
        let objects = render(&extra);
        let kinds: BTreeSet<_> = objects.keys().cloned().collect();
        let with_role_map: &[&str] = if extra.contains(&values.as_str()) {
            &[ROLE_MAP]
        } else {
            &[]
        };
        assert_eq!(
            kinds,
            set_with(
                &[
                    "Deployment/webstack-webstack-operator",
                    "Role/webstack-webstack-operator",
                    "RoleBinding/webstack-webstack-operator",
                    LEASE_ROLE,
                    LEASE_BINDING,
                    "Service/webstack-webstack-operator-metrics",
                    "ServiceAccount/webstack-webstack-operator",
                ],
                with_role_map
            ),
            "no cluster-wide grant when watching one namespace ({extra:?})"
        );
        if let Some(cm) = objects.get(ROLE_MAP) {
            assert_eq!(
                cm["metadata"]["namespace"], NAMESPACE,
                "the role map stays in the operator's namespace, out of the watched one's reach"
            );
        }
        let role = the(&objects, "Role/webstack-webstack-operator");
        assert_eq!(role["metadata"]["namespace"], "team-a");
        assert_operator_rules(role);
        let binding = the(&objects, "RoleBinding/webstack-webstack-operator");
        assert_eq!(binding["metadata"]["namespace"], "team-a");
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        let args = run_args(container(&objects));
        assert_eq!(
            args.last(),
            Some(&("--namespace".to_owned(), "team-a".to_owned())),
            "{args:?}"
        );
        assert_eq!(
            args.iter().filter(|(f, _)| f == "--namespace").count(),
            1,
            "{args:?}"
        );
    }
}

#[test]
fn service_monitor_renders_when_enabled() {
    let objects = render(&[
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=prometheus",
        "--set",
        "metrics.serviceMonitor.interval=1m",
    ]);
    let sm = the(&objects, "ServiceMonitor/webstack-webstack-operator");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "1m");
    let service = the(&objects, "Service/webstack-webstack-operator-metrics");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the metrics Service"
        );
    }
}

/// The role map as the operator reads it: the path its Deployment mounts the ConfigMap's key at
/// (`None` without a role map), and the file's text.
fn role_map_file(objects: &BTreeMap<String, Value>) -> Option<(String, String)> {
    let pod = &the(objects, "Deployment/webstack-webstack-operator")["spec"]["template"]["spec"];
    let Some(cm) = objects.get(ROLE_MAP) else {
        assert!(
            !strings(&container(objects)["args"]).contains(&"--role-map".to_owned()),
            "--role-map without its ConfigMap"
        );
        return None;
    };
    let name = cm["metadata"]["name"].as_str().unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == name)
        .unwrap_or_else(|| panic!("no volume of the ConfigMap {name}: {volumes:?}"));
    let mounts = container(objects)["volumeMounts"].as_array().unwrap();
    let mount = mounts
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap_or_else(|| panic!("the volume {volume} is not mounted: {mounts:?}"));
    let data = cm["data"].as_object().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["role-map.yaml"],
        "one file: {cm}"
    );
    let path = format!("{}/role-map.yaml", mount["mountPath"].as_str().unwrap());
    Some((path, data["role-map.yaml"].as_str().unwrap().to_owned()))
}

/// The `checksum/role-map` annotation of the pod, if any.
fn role_map_checksum(objects: &BTreeMap<String, Value>) -> Option<String> {
    the(objects, "Deployment/webstack-webstack-operator")["spec"]["template"]["metadata"]
        ["annotations"]["checksum/role-map"]
        .as_str()
        .map(str::to_owned)
}

/// The sample values' roleMap becomes a ConfigMap in the operator's namespace, holding exactly
/// that mapping under `namespaces`, mounted read-only and named by `--role-map`; the pod carries
/// its checksum, so that a new mapping restarts the operator (which reads it when it starts).
#[test]
fn role_map_is_a_config_map_the_operator_reads() {
    let role_map = sample_role_map();
    let namespaces = role_map
        .as_object()
        .expect("the sample values have a roleMap");
    assert_eq!(namespaces.len(), 2, "two namespaces: {role_map}");
    assert!(
        namespaces.values().all(|roles| !strings(roles).is_empty()),
        "{role_map}"
    );

    let values = sample_values();
    let objects = render(&["-f", &values]);
    let cm = the(&objects, ROLE_MAP);
    assert_eq!(cm["apiVersion"], "v1");
    assert_eq!(
        cm["metadata"]["namespace"], NAMESPACE,
        "in the operator's own namespace, out of the tenants' reach"
    );
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/instance"],
        RELEASE
    );
    let (path, text) = role_map_file(&objects).unwrap();
    let parsed =
        serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap();
    assert_eq!(
        parsed,
        json!({ "namespaces": role_map }),
        "the file is the roleMap under `namespaces`, nothing else:\n{text}"
    );

    let pod = &the(&objects, "Deployment/webstack-webstack-operator")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "role-map", "configMap": {"name": "webstack-webstack-operator-role-map"}},
        ])
    );
    let c = container(&objects);
    assert_eq!(
        c["volumeMounts"],
        json!([
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "role-map", "mountPath": ROLE_MAP_DIR, "readOnly": true},
        ])
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "the mount leaves the root file system read-only"
    );
    let args = strings(&c["args"]);
    assert_eq!(path, ROLE_MAP_FILE);
    assert_eq!(
        flag(&args, "--role-map").as_deref(),
        Some(path.as_str()),
        "--role-map names the mounted file: {args:?}"
    );

    let checksum = role_map_checksum(&objects).expect("a checksum/role-map annotation");
    assert_eq!(
        checksum,
        webstack::aws::hex_digest(&text),
        "checksum/role-map is the sha256 of the ConfigMap's data"
    );
    // It follows the mapping, and nothing else.
    let more = render(&[
        "-f",
        &values,
        "--set",
        "roleMap.team-c[0]=arn:aws:iam::444455556666:role/webstack-team-c",
    ]);
    let (_, more_text) = role_map_file(&more).unwrap();
    assert!(more_text.contains("team-c"), "{more_text}");
    assert_eq!(
        role_map_checksum(&more),
        Some(webstack::aws::hex_digest(&more_text))
    );
    assert_ne!(
        role_map_checksum(&more),
        Some(checksum.clone()),
        "a new mapping rolls the pod"
    );
    let unrelated = render(&["-f", &values, "--set", "logLevel=debug"]);
    assert_eq!(role_map_checksum(&unrelated), Some(checksum));
}

/// Without a roleMap (the default, or the sample one taken away with `roleMap=null`), no stack
/// may assume a role: no ConfigMap, mount, flag or checksum.
#[test]
fn no_role_map_by_default() {
    let values = sample_values();
    for extra in [
        vec![],
        vec!["--set", "watchNamespace=team-a"],
        vec!["-f", values.as_str(), "--set", "roleMap=null"],
    ] {
        let objects = render(&extra);
        assert!(
            !objects.keys().any(|k| k.starts_with("ConfigMap/")),
            "no ConfigMap ({extra:?}): {:?}",
            objects.keys().collect::<Vec<_>>()
        );
        assert_eq!(role_map_file(&objects), None, "{extra:?}");
        assert_eq!(role_map_checksum(&objects), None, "{extra:?}");
        let c = container(&objects);
        assert!(
            !strings(&c["args"]).contains(&"--role-map".to_owned()),
            "no --role-map ({extra:?}): {}",
            c["args"]
        );
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "tmp", "mountPath": "/tmp"}]),
            "{extra:?}"
        );
    }
}

/// `helm template` with one `--set` must fail, naming `field`.
fn assert_refused(set: &str, field: &str) {
    let chart = chart().display().to_string();
    let out = helm(&["template", RELEASE, &chart, "--set", set]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(field),
        "helm template --set {set} should fail naming {field}: {}",
        show(&out)
    );
}

#[test]
fn values_schema_rejects_bad_values() {
    for (set, field) in [
        ("logFormat=xml", "logFormat"),
        ("concurrency=0", "concurrency"),
        ("resyncSeconds=100000", "resyncSeconds"),
        ("aws.requestsPerSecond=0", "requestsPerSecond"),
        ("aws.requestsPerSecond=10001", "requestsPerSecond"),
        ("aws.irsaRoleArn=not-an-arn", "irsaRoleArn"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("replicaCount=two", "replicaCount"),
        ("replicaCount=0", "replicaCount"),
        ("sharding.shards=0", "shards"),
        ("sharding.shards=1025", "shards"),
        ("sharding.leaseSeconds=2", "leaseSeconds"),
        ("ingressClass=Not_A_Class", "ingressClass"),
        ("sharding.leaderElection=true", "leaderElection"),
        ("unknownValue=1", "unknownValue"),
        // Values of features the operator does not have are refused, not ignored.
        ("podDisruptionBudget.minAvailable=1", "podDisruptionBudget"),
    ] {
        assert_refused(set, field);
    }
}

/// Several pods share the stacks through the shard Leases.
#[test]
fn replicas_and_shards_render_as_flags() {
    let objects = render(&[
        "--set",
        "replicaCount=4",
        "--set",
        "sharding.shards=12",
        "--set",
        "sharding.leaseSeconds=30",
    ]);
    assert_pods(the(&objects, "Deployment/webstack-webstack-operator"), 4);
    let args = run_args(container(&objects));
    assert_eq!(flag_of(&args, "--shards"), Some("12"));
    assert_eq!(flag_of(&args, "--lease-seconds"), Some("30"));
}

fn flag_of<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
}

/// The schema refuses a roleMap the operator would refuse (it exits 2 on a malformed role map):
/// a malformed role ARN, a key that is no namespace name, more than 100 roles for a namespace.
#[test]
fn values_schema_checks_the_role_map() {
    let too_many: Vec<String> = (0..101)
        .map(|i| format!("arn:aws:iam::444455556666:role/r{i}"))
        .collect();
    let too_many = format!("roleMap.team-a={{{}}}", too_many.join(","));
    for (set, field) in [
        ("roleMap.team-a[0]=not-an-arn", "roleMap"),
        (
            "roleMap.team-a[0]=arn:aws:iam::4444:role/short-account",
            "roleMap",
        ),
        (
            "roleMap.team-a[0]=arn:aws:iam::444455556666:user/x",
            "roleMap",
        ),
        (
            "roleMap.team-a[0]=arn:aws:iam::444455556666:role/",
            "roleMap",
        ),
        (
            "roleMap.team-a[0]=arn:aws:iam::444455556666:role/a b",
            "roleMap",
        ),
        ("roleMap.team-a=arn:aws:iam::444455556666:role/x", "roleMap"),
        (
            "roleMap.Team_A[0]=arn:aws:iam::444455556666:role/x",
            "Team_A",
        ),
        ("roleMap=team-a", "roleMap"),
        (too_many.as_str(), "maxItems"),
    ] {
        assert_refused(set, field);
    }
    // Every character IAM allows in a role's path and name, in another partition (the comma
    // escaped for --set).
    let arn = "arn:aws-us-gov:iam::444455556666:role/path/web+stack=a,b.c@d_e-f";
    let objects = render(&[
        "--set",
        &format!("roleMap.team-a[0]={}", arn.replace(',', "\\,")),
    ]);
    let (_, text) = role_map_file(&objects).unwrap();
    let parsed =
        serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap();
    assert_eq!(parsed, json!({"namespaces": {"team-a": [arn]}}));
}

/// The options `webstack <args>` documents in its `--help`: each flag with whether it takes a
/// value and, when clap lists them, the values it accepts.
fn documented_options(args: &[&str]) -> BTreeMap<String, (bool, Option<Vec<String>>)> {
    let out = Command::new(webstack_bin())
        .args(args)
        .arg("--help")
        .output()
        .expect("run webstack");
    let help = succeed(&format!("webstack {} --help", args.join(" ")), out);
    type Options = BTreeMap<String, (bool, Option<Vec<String>>)>;
    /// Records the values an option's description lists.
    fn finish(name: &Option<String>, description: &str, options: &mut Options) {
        let Some(name) = name else { return };
        let values = description
            .split_once("[possible values: ")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(list, _)| list.split(',').map(|v| v.trim().to_owned()).collect());
        if let Some((_, known)) = options.get_mut(name) {
            *known = values;
        }
    }
    let mut options = Options::new();
    let mut current: Option<String> = None;
    let mut description = String::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        // An option's line: `  -h, --help`, `      --concurrency <CONCURRENCY>  text...`.
        if trimmed.starts_with('-') && indent <= 6 {
            finish(&current, &description, &mut options);
            description.clear();
            let head = trimmed.split("  ").next().unwrap_or(trimmed);
            let long = head
                .split([',', ' '])
                .find(|w| w.starts_with("--"))
                .map(str::to_owned);
            if let Some(long) = &long {
                options.insert(long.clone(), (head.contains('<'), None));
            }
            description.push_str(&trimmed[head.len()..]);
            current = long;
        } else if current.is_some() {
            description.push(' ');
            description.push_str(trimmed);
        }
    }
    finish(&current, &description, &mut options);
    options
}

/// Every flag the Deployment passes is one `webstack run` documents, with a value when it
/// takes one (among the listed ones, when it lists them), and none twice.
#[test]
fn rendered_args_are_known_to_webstack_run() {
    let options = documented_options(&["run"]);
    for must in ["--resync-seconds", "--log-format", "--namespace"] {
        assert!(
            options.contains_key(must),
            "cannot read `webstack run --help`: no {must} in {options:?}"
        );
    }
    let values = sample_values();
    for extra in [
        vec![],
        vec!["-f", values.as_str()],
        vec!["--set", "watchNamespace=team-a"],
        vec!["-f", values.as_str(), "--set", "watchNamespace=team-a"],
    ] {
        let objects = render(&extra);
        let c = container(&objects);
        assert_eq!(c["command"], json!(["/usr/local/bin/webstack"]));
        let args = strings(&c["args"]);
        assert_eq!(args.first().map(String::as_str), Some("run"), "{args:?}");
        let mut seen = BTreeSet::new();
        let mut rest = args[1..].iter();
        while let Some(arg) = rest.next() {
            let Some((takes_value, accepted)) = options.get(arg.as_str()) else {
                panic!(
                    "the chart ({extra:?}) passes {arg}, which `webstack run --help` does not \
                     document: {args:?}\nknown: {:?}",
                    options.keys().collect::<Vec<_>>()
                );
            };
            assert!(
                seen.insert(arg.clone()),
                "{arg} passed twice ({extra:?}): {args:?}"
            );
            if !takes_value {
                continue;
            }
            let value = rest
                .next()
                .unwrap_or_else(|| panic!("{arg} has no value ({extra:?}): {args:?}"));
            assert!(
                !value.starts_with("--"),
                "{arg} is followed by {value}, not a value ({extra:?})"
            );
            if let Some(accepted) = accepted {
                assert!(
                    accepted.contains(value),
                    "{arg} {value}: `webstack run` accepts only {accepted:?}"
                );
            }
        }
    }
}

/// The rendered arguments pass the binary's own parser (ranges included): with no cluster to
/// reach (no in-cluster environment, a kubeconfig that does not exist), `webstack run` gets
/// past its arguments and stops at once, unable to build a Kubernetes client, instead of
/// failing with a usage error (exit code 2). The role map the chart renders is written where
/// the test can put it, and `--role-map` names that copy: the operator reads it (a malformed
/// one would also end in exit code 2) before it looks for a cluster.
#[test]
fn rendered_args_pass_the_parser_of_webstack_run() {
    let values = sample_values();
    let nowhere = std::env::temp_dir().join(format!("webstack-chart-{}", std::process::id()));
    let copies =
        std::env::temp_dir().join(format!("webstack-chart-role-map-{}", std::process::id()));
    let mut role_maps = 0;
    for extra in [
        vec![],
        vec!["-f", values.as_str(), "--set", "watchNamespace=team-a"],
    ] {
        let objects = render(&extra);
        let mut args = strings(&container(&objects)["args"]);
        if let Some((path, text)) = role_map_file(&objects) {
            let at = args
                .iter()
                .position(|a| a == "--role-map")
                .unwrap_or_else(|| panic!("a role map's ConfigMap but no --role-map: {args:?}"));
            assert_eq!(args.get(at + 1), Some(&path), "{args:?}");
            std::fs::create_dir_all(&copies).unwrap();
            let copy = copies.join("role-map.yaml");
            std::fs::write(&copy, text).unwrap();
            args[at + 1] = copy.display().to_string();
            role_maps += 1;
        }
        let mut command = Command::new(webstack_bin());
        command
            .args(&args)
            .env("KUBECONFIG", nowhere.join("kubeconfig"))
            .env("HOME", &nowhere)
            // What the Deployment's downward API gives the pod.
            .env("POD_NAME", "webstack-webstack-operator-5d8f9-x2x7q")
            .env("POD_NAMESPACE", NAMESPACE)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for var in [
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "WEBSTACK_NAMESPACE",
            "WEBSTACK_METRICS_ADDRESS",
            "WEBSTACK_LOG_FORMAT",
            "WEBSTACK_ROLE_MAP",
        ] {
            command.env_remove(var);
        }
        let mut child = command.spawn().expect("run webstack");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().expect("wait for webstack").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "webstack {} did not stop without a cluster: {}",
                    args.join(" "),
                    show(&out)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            !out.status.success() && out.status.code() != Some(2),
            "webstack {} ({extra:?}) should get past its arguments and fail for want of a \
             cluster, not with a usage error: {}",
            args.join(" "),
            show(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Kubernetes API"),
            "webstack {} ({extra:?}) should stop for want of a cluster: {}",
            args.join(" "),
            show(&out)
        );
    }
    let _ = std::fs::remove_dir_all(&copies);
    assert_eq!(role_maps, 1, "the sample values' role map was read");
}

fn chart_yaml() -> Value {
    let text = std::fs::read_to_string(chart().join("Chart.yaml")).unwrap();
    serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap()
}

#[test]
fn chart_metadata_and_crd() {
    let meta = chart_yaml();
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["kubeVersion"], ">=1.33.0-0");
    let ours = std::fs::read(apiserver::crd_file()).unwrap();
    let shipped = std::fs::read(chart().join("crds/webstack.yaml"))
        .expect("charts/webstack-operator/crds/webstack.yaml");
    assert!(
        ours == shipped,
        "charts/webstack-operator/crds/webstack.yaml differs from crds/webstack.yaml: \
         cp crds/webstack.yaml charts/webstack-operator/crds/webstack.yaml"
    );
    let crds: Vec<_> = std::fs::read_dir(chart().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(crds, ["webstack.yaml"], "the chart ships one CRD");
}

/// Every leaf of values.yaml (a path such as `metrics.serviceMonitor.enabled`) is in the
/// README's table and in the schema.
#[test]
fn every_value_is_documented_and_in_the_schema() {
    let text = std::fs::read_to_string(chart().join("values.yaml")).unwrap();
    let values =
        serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap();
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
            .expect("values.schema.json is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);

    // Objects whose keys are the user's (maps) or a Kubernetes type's are documented whole.
    const WHOLE: &[&str] = &[
        "resources",
        "podSecurityContext",
        "securityContext",
        "nodeSelector",
        "affinity",
        "podAnnotations",
        "podLabels",
        "serviceAccount.annotations",
        "metrics.service.annotations",
        "metrics.serviceMonitor.labels",
        "roleMap",
    ];
    fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) if !WHOLE.contains(&prefix) && !map.is_empty() => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&path, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut paths = Vec::new();
    leaves("", &values, &mut paths);
    let undocumented: Vec<_> = paths
        .iter()
        .filter(|p| !readme.contains(&format!("| `{p}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "values missing from the README's table: {undocumented:?}"
    );
    let unschemed: Vec<_> = paths
        .iter()
        .filter(|p| {
            let mut node = &schema;
            for part in p.split('.') {
                node = &node["properties"][part];
            }
            node.is_null()
        })
        .collect();
    assert!(
        unschemed.is_empty(),
        "values missing from values.schema.json: {unschemed:?}"
    );
}

fn kubectl_ok(server: &ApiServer, what: &str, args: &[&str], stdin: Option<&str>) -> String {
    succeed(what, server.kubectl(args, stdin))
}

/// Whether the operator's ServiceAccount may do something (`kubectl auth can-i` as it).
fn can(server: &ApiServer, args: &[&str]) -> bool {
    let who = format!("--as=system:serviceaccount:{NAMESPACE}:webstack-webstack-operator");
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.push(&who);
    let out = server.kubectl(&all, None);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => panic!("kubectl auth can-i {args:?}: {}", show(&out)),
    }
}

#[test]
fn chart_applies_and_installs_on_a_real_api_server() {
    let helm = helm_bin();
    let server = ApiServer::start(NEWEST);
    for ns in [NAMESPACE, "team-a"] {
        kubectl_ok(
            &server,
            "create namespace",
            &["create", "namespace", ns],
            None,
        );
    }

    // Every object of every rendering passes the server's validation (the ServiceMonitor stays
    // off: this server has no Prometheus Operator CRD).
    let values = sample_values();
    for (what, extra) in [
        ("default values", vec!["--include-crds"]),
        ("sample values", vec!["-f", values.as_str()]),
        ("watchNamespace", vec!["--set", "watchNamespace=team-a"]),
        (
            "sample values and watchNamespace",
            vec!["-f", values.as_str(), "--set", "watchNamespace=team-a"],
        ),
    ] {
        let text = template_text(&extra);
        let out = server.kubectl(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=chart-test",
                "-f",
                "-",
            ],
            Some(&text),
        );
        assert!(
            out.status.success(),
            "the API server refused the chart rendered with {what}: {}",
            show(&out)
        );
    }

    // helm install (no --wait: this server runs no pods), as a user would.
    let kubeconfig = server.kubeconfig().display().to_string();
    let chart = chart().display().to_string();
    let run = |args: &[&str]| {
        let out = Command::new(&helm)
            .args(args)
            .args(["--kubeconfig", &kubeconfig])
            .output()
            .expect("run helm");
        succeed(&format!("helm {}", args.join(" ")), out)
    };
    run(&[
        "install",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "-f",
        &values,
    ]);

    let crd = kubectl_ok(
        &server,
        "get crd",
        &["get", "crd", "webstacks.webstack.io", "-o", "json"],
        None,
    );
    let crd: Value = serde_json::from_str(&crd).unwrap();
    assert!(
        crd["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established")),
        "the CRD Helm installed is served: {}",
        crd["status"]
    );
    let get = |kind: &str, name: &str, ns: Option<&str>| -> Value {
        let mut args = vec!["get", kind, name, "-o", "json"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        serde_json::from_str(&kubectl_ok(
            &server,
            &format!("get {kind} {name}"),
            &args,
            None,
        ))
        .unwrap()
    };
    let name = "webstack-webstack-operator";
    let deployment = get("deployment", name, Some(NAMESPACE));
    assert_eq!(deployment["spec"]["replicas"], 3);
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(
        flag(&args, "--aws-requests-per-second").as_deref(),
        Some("50"),
        "{args:?}"
    );
    assert_eq!(flag(&args, "--log-format").as_deref(), Some("json"));
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    let sa = get("serviceaccount", name, Some(NAMESPACE));
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/webstack-operator"
    );
    get("clusterrole", name, None);
    get("clusterrolebinding", name, None);
    get("service", &format!("{name}-metrics"), Some(NAMESPACE));
    // The role map as the server stores it: the sample roleMap, and the pod's checksum of it.
    let role_map = get("configmap", &format!("{name}-role-map"), Some(NAMESPACE));
    let text = role_map["data"]["role-map.yaml"].as_str().unwrap();
    assert_eq!(
        serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(text).unwrap()).unwrap(),
        json!({ "namespaces": sample_role_map() })
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["checksum/role-map"],
        webstack::aws::hex_digest(text)
    );
    assert_eq!(
        flag(&args, "--role-map").as_deref(),
        Some(ROLE_MAP_FILE),
        "{args:?}"
    );
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let others = kubectl_ok(
        &server,
        "get the release's other namespaced objects",
        &[
            "get",
            "configmaps,poddisruptionbudgets",
            "-n",
            NAMESPACE,
            "-l",
            &selector,
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(
        others.trim(),
        format!("configmap/{name}-role-map"),
        "no PodDisruptionBudget; one ConfigMap, the role map"
    );

    // What the server grants the operator's ServiceAccount.
    for (args, allowed) in [
        (vec!["watch", "webstacks.webstack.io", "-A"], true),
        (
            vec![
                "patch",
                "webstacks.webstack.io",
                "--subresource=status",
                "-n",
                "team-a",
            ],
            true,
        ),
        (
            vec![
                "update",
                "webstacks.webstack.io",
                "--subresource=finalizers",
                "-n",
                "team-a",
            ],
            true,
        ),
        (
            vec!["delete", "webstacks.webstack.io", "-n", "team-a"],
            false,
        ),
        (vec!["create", "events.events.k8s.io", "-n", "team-a"], true),
        (vec!["get", "secrets/shop-mongodb", "-n", "team-a"], true),
        (vec!["list", "secrets", "-n", "team-a"], false),
        (vec!["watch", "secrets", "-n", "team-a"], false),
        (vec!["patch", "deployments.apps", "-n", "team-a"], true),
        (vec!["list", "deployments.apps", "-n", "team-a"], true),
        (vec!["watch", "deployments.apps", "-n", "team-a"], false),
        (vec!["create", "pods", "-n", "team-a"], false),
        (
            vec!["create", "leases.coordination.k8s.io", "-n", NAMESPACE],
            true,
        ),
        (
            vec!["watch", "leases.coordination.k8s.io", "-n", NAMESPACE],
            true,
        ),
        (
            vec!["create", "leases.coordination.k8s.io", "-n", "team-a"],
            false,
        ),
        (
            vec!["create", "customresourcedefinitions.apiextensions.k8s.io"],
            false,
        ),
    ] {
        assert_eq!(
            can(&server, &args),
            allowed,
            "kubectl auth can-i {} as the operator",
            args.join(" ")
        );
    }

    let listed = run(&["list", "--namespace", NAMESPACE, "-o", "json"]);
    let releases: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(releases[0]["name"], RELEASE, "{listed}");
    assert_eq!(releases[0]["status"], "deployed", "{listed}");

    run(&["uninstall", RELEASE, "--namespace", NAMESPACE]);
    let gone = server.kubectl(&["get", "deployment", name, "-n", NAMESPACE], None);
    assert!(
        !gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "helm uninstall removes the Deployment: {}",
        show(&gone)
    );
    let gone = server.kubectl(&["get", "clusterrole", name], None);
    assert!(
        !gone.status.success(),
        "helm uninstall removes the ClusterRole"
    );
    let role_map = format!("{name}-role-map");
    let gone = server.kubectl(&["get", "configmap", &role_map, "-n", NAMESPACE], None);
    assert!(
        !gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "helm uninstall removes the role map: {}",
        show(&gone)
    );
    // As for every chart's crds/ folder, Helm keeps the CRD (and with it every WebStack).
    kubectl_ok(
        &server,
        "get crd after uninstall",
        &["get", "crd", "webstacks.webstack.io"],
        None,
    );
}
