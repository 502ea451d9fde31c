//! The CRD on a real kube-apiserver, at both ends of what the client models: accepted,
//! defaults applied, documented for `kubectl explain`, the examples valid, the invalid specs
//! rejected by the server's own schema and CEL rules.

use std::path::PathBuf;

use kube::api::{Api, PostParams};
use webstack::api::WebStack;
use webstack_tests::apiserver::*;
use webstack_tests::repo_root;

/// Specs whose rule the operator checks but a CRD cannot express, with the reason.
const OPERATOR_ONLY: &[(&str, &str)] = &[
    (
        "24-bad-region",
        "region names are checked by the operator (AWS adds regions)",
    ),
    (
        "19-prefix-too-small-for-zones",
        "computed subnet sizes are checked by the operator",
    ),
    (
        "124-region-unknown",
        "the table of regions is the operator's (a user names a new region by its zones)",
    ),
    (
        "126-az-count-beyond-region",
        "zone counts per region are in the operator's table",
    ),
    (
        "127-zones-listed-beyond-region",
        "zone counts per region are in the operator's table",
    ),
    (
        "145-route-twice",
        "a route used twice across functions and tier routes is checked by the operator",
    ),
    (
        "146-status-region-differs",
        "the server takes status only through the status subresource",
    ),
    (
        "147-status-region-differs-from-zones",
        "the server takes status only through the status subresource",
    ),
];

fn invalid_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("tests/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_yaml(p))
        .collect();
    files.sort();
    files
}

/// `spec.tags[team]` as the API server names a map entry: `spec.tags.team` (list indexes stay).
fn map_entry_path(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
        let key = &rest[open + 1..close.min(rest.len())];
        out.push_str(&rest[..open]);
        if key.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&rest[open..=close.min(rest.len() - 1)]);
        } else {
            out.push('.');
            out.push_str(key);
        }
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

fn field_of(path: &PathBuf) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("# field: ")
        .to_owned()
}

async fn check_server(version: &str) {
    let server = ApiServer::start(version);
    install_crd(&server, &std::fs::read_to_string(crd_file()).unwrap());

    // A minimal stack round-trips with the schema's defaults.
    let minimal = "apiVersion: webstack.io/v1alpha1\nkind: WebStack\nmetadata:\n  name: minimal\n  namespace: default\nspec:\n  network:\n    vpcCidr: 10.0.0.0/16\n";
    let stack: WebStack = serde_yaml::from_str(minimal).unwrap();
    let api: Api<WebStack> = Api::namespaced(server.client().await, "default");
    api.create(&PostParams::default(), &stack).await.unwrap();
    let back = api.get("minimal").await.unwrap();
    let raw = serde_json::to_value(&back).unwrap();
    assert_eq!(raw["spec"]["deletionPolicy"], "Delete", "{version}: {raw}");
    assert_eq!(raw["spec"]["network"]["natGateways"], "None");
    assert_eq!(
        raw["spec"]["network"]["securityGroups"]["loadBalancerPorts"],
        serde_json::json!([80, 443])
    );
    assert_eq!(back.spec.network.vpc_cidr, "10.0.0.0/16");

    // `kubectl explain` reads the documentation of nested fields.
    let out = server.kubectl(&["explain", "webstack.spec.network.natGateways"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("NAT gateways that give the private subnets"),
        "{text}"
    );
    let out = server.kubectl(&["explain", "webstack.spec.database.rds.engine"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Cannot be changed once the database exists"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The examples pass the server's validation.
    for example in [
        "network-only",
        "multi-az-mysql",
        "stockholm-two-tier",
        "starttech",
        "tekamolo",
        "fargate-serverless",
    ] {
        let file = repo_root().join(format!("examples/{example}.yaml"));
        let out = server.kubectl(
            &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
            None,
        );
        assert!(
            out.status.success(),
            "{version}: {example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The invalid specs are refused by the server, naming the field.
    let mut refused = 0;
    for file in invalid_files() {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let out = server.kubectl(
            &[
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "-f",
                file.to_str().unwrap(),
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some((_, why)) = OPERATOR_ONLY.iter().find(|(s, _)| *s == stem) {
            assert!(
                out.status.success(),
                "{stem} ({why}) was refused by the server: {stderr}"
            );
            continue;
        }
        assert!(
            !out.status.success(),
            "{version}: the server accepted {stem}"
        );
        let field = field_of(&file);
        // The server names a list where the operator names the item (a CEL rule's fieldPath
        // cannot hold an index): accept the field or any list on its path.
        let lists = field.match_indices('[').map(|(i, _)| &field[..i]);
        // A map entry the operator writes `tags[key]` the server writes `tags.key`.
        let entry = map_entry_path(&field);
        let named = stderr.contains(&field)
            || stderr.contains(&entry)
            || lists.into_iter().any(|l| stderr.contains(&format!("{l}:")))
            || (field == "kind" && stderr.contains("Deployment"));
        assert!(named, "{version}: {stem}: expected {field} in: {stderr}");
        refused += 1;
    }
    assert!(refused >= 25, "{refused}");

    // Immutable fields: a changed VPC CIDR is refused by the transition rule.
    let mut changed = back.clone();
    changed.spec.network.vpc_cidr = "10.1.0.0/16".into();
    let err = api
        .replace("minimal", &PostParams::default(), &changed)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.network.vpcCidr") && err.contains("cannot be changed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crd_works_on_the_newest_api_server() {
    check_server(NEWEST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crd_works_on_the_oldest_api_server_the_client_models() {
    check_server(OLDEST).await;
}
