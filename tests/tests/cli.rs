//! The `webstack` command line: bad input gets a one-line error naming the field, a non-zero
//! exit and no AWS call; a good file applies, plans, shows status and destroys.

use std::sync::atomic::Ordering;
use std::time::Duration;

use webstack_tests::*;

#[test]
fn invalid_specs_are_refused_by_every_command_without_any_aws_call() {
    let tripwire = Tripwire::start();
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("tests/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let field = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# field: ")
            .unwrap()
            .to_owned();
        let path = f.to_str().unwrap();
        for command in ["validate", "plan", "apply", "destroy"] {
            let out = run_cli(&tripwire.url(), &[command, "-f", path], &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {path}: {stderr}");
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{command} {path}: one line, got: {stderr}"
            );
            assert!(
                stderr.contains(field.as_str()),
                "{command} {path}: the error names {field}: {stderr}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        tripwire.hits.load(Ordering::SeqCst),
        0,
        "no AWS endpoint was contacted"
    );
}

#[test]
fn bad_flags_and_unreadable_files_fail_in_one_line() {
    let tripwire = Tripwire::start();
    for args in [
        vec!["apply", "--bogus", "-f", "examples/network-only.yaml"],
        vec!["plan"],
        vec!["plan", "-f", "examples/network-only.yaml", "-o", "yaml"],
        vec!["apply", "-f", "does/not/exist.yaml"],
        vec!["launch"],
        vec!["run", "--shards", "2"],
        vec!["run", "--lease-seconds", "1"],
        vec!["run", "--metrics-address", "nowhere"],
        vec!["run", "--role-map", "does/not/exist.yaml"],
        vec!["run", "--ingress-class", "Not_A_Class"],
    ] {
        let out = run_cli(&tripwire.url(), &args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("webstack: "), "{args:?}: {stderr}");
    }
    assert_eq!(tripwire.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn the_cli_applies_plans_reports_status_and_destroys() {
    let moto = Moto::start();
    let file = "examples/network-only.yaml";
    let plan = run_cli(&moto.url(), &["plan", "-f", file, "-o", "json"], &[]);
    assert!(plan.status.success());
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 31);
    assert!(changes.iter().all(|c| c["action"] == "create"));

    let apply = run_cli(&moto.url(), &["apply", "-f", file, "-o", "json"], &[]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&apply.stdout).unwrap();
    assert_eq!(v["status"]["phase"], "Ready");
    assert_eq!(v["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(v["status"]["conditions"][0]["status"], "True");
    let vpc_id = v["status"]["outputs"]["network"]["vpcId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(vpc_id.starts_with("vpc-"));
    assert_eq!(v["status"]["inventory"].as_array().unwrap().len(), 31);
    let progress = String::from_utf8_lossy(&apply.stderr);
    assert!(progress.contains("created  Vpc vpc"), "{progress}");

    let plan = run_cli(&moto.url(), &["plan", "-f", file], &[]);
    assert_eq!(
        String::from_utf8_lossy(&plan.stdout).trim(),
        "No changes. AWS matches the spec."
    );
    let status = run_cli(&moto.url(), &["status", "-f", file, "-o", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["status"]["phase"], "Ready");
    assert_eq!(v["status"]["outputs"]["network"]["vpcId"], vpc_id.as_str());

    let destroy = run_cli(&moto.url(), &["destroy", "-f", file], &[]);
    assert!(
        destroy.status.success(),
        "{}",
        String::from_utf8_lossy(&destroy.stderr)
    );
    let plan = run_cli(&moto.url(), &["plan", "-f", file], &[]);
    assert!(String::from_utf8_lossy(&plan.stdout)
        .contains("Plan: 31 to create, 0 to update, 0 to replace, 0 to delete, 0 refused."));
}

/// A stack with tiers this version does not build: the network is applied, the status says
/// which tiers are missing, and apply does not claim success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reports_tiers_not_built_yet_and_exits_non_zero() {
    let moto = Moto::start();
    // Without the Secret it reads, the stack is refused, naming the field, before any call.
    let tripwire = Tripwire::start();
    let out = run_cli(
        &tripwire.url(),
        &["apply", "-f", "examples/starttech.yaml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.database.external.secretRef")
            && stderr.contains("\"starttech-mongodb\""),
        "{stderr}"
    );
    assert_eq!(tripwire.hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // StartTech with a DynamoDB table, which comes with the serverless tier.
    let mut with_table = example("starttech.yaml", "starttech");
    with_table.spec.tables = vec![serde_json::from_value(serde_json::json!({
        "name": "sessions",
        "partitionKey": {"name": "id", "type": "S"},
    }))
    .unwrap()];
    let manifest = TempManifest::new(&serde_yaml::to_string(&with_table).unwrap());
    let secret = "examples/secrets/starttech-mongodb.yaml";
    let out = run_cli(
        &moto.url(),
        &["apply", "-f", manifest.path(), "-f", secret, "-o", "json"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not Ready (TiersNotSupported)") && stderr.contains("spec.tables"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = &v["status"];
    assert_eq!(status["phase"], "Degraded");
    let conditions = status["conditions"].as_array().unwrap();
    let find = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .unwrap_or_else(|| panic!("no {t} condition"))
    };
    assert_eq!(find("Ready")["status"], "False");
    assert_eq!(find("Ready")["reason"], "TiersNotSupported");
    assert_eq!(find("NetworkReady")["status"], "True");
    let c = find("TablesReady");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "NotYetSupported");
    // The tiers built so far are in place: the external database's connection string is in
    // the stack's secret, and its value is nowhere in the output.
    for tier in [
        "Backend",
        "Registry",
        "Cache",
        "Monitoring",
        "Database",
        "Frontend",
        "Cdn",
    ] {
        assert_eq!(find(&format!("{tier}Ready"))["status"], "True", "{tier}");
    }
    for output in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(output).contains("replace-me"));
    }
    // The network of the document was built: its subnets, as the emulator reports them.
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let subnets = ec2
        .describe_subnets()
        .filters(owned_by("default/starttech"))
        .send()
        .await
        .unwrap();
    let cidrs: std::collections::BTreeSet<&str> = subnets
        .subnets()
        .iter()
        .map(|s| s.cidr_block().unwrap())
        .collect();
    assert_eq!(
        cidrs,
        ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.4.0/24"]
            .into_iter()
            .collect()
    );
    let destroy = run_cli(
        &moto.url(),
        // Destroying needs no Secret.
        &["destroy", "-f", manifest.path()],
        &[],
    );
    assert!(
        destroy.status.success(),
        "{}",
        String::from_utf8_lossy(&destroy.stderr)
    );
}
