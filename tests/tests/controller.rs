//! The controller end to end: a real kube-apiserver, the AWS emulator, and the controller
//! (in-process, or as the `webstack run` process where it is killed).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use webstack::api::WebStack;
use webstack::aws::client::{CRASH_AFTER_MUTATIONS_ENV, CRASH_EXIT_CODE};
use webstack::controller::{self, Settings};
use webstack_tests::apiserver::*;
use webstack_tests::*;

fn settings() -> Settings {
    Settings {
        resync: Duration::from_secs(300),
        retry: Duration::from_secs(1),
        concurrency: 4,
        ..Default::default()
    }
}

/// The emulator, an API server with the CRD, and the controller running in this process.
struct InProcess {
    moto: Moto,
    server: ApiServer,
    client: kube::Client,
    /// The WebStacks of `default`.
    api: Api<WebStack>,
    /// The AWS calls the controller made.
    calls: std::sync::Arc<webstack::aws::client::AwsApi>,
    run: tokio::task::JoinHandle<Result<(), controller::RunError>>,
}

async fn in_process(server: ApiServer, settings: Settings) -> InProcess {
    let moto = Moto::start();
    install_crd(&server, &std::fs::read_to_string(crd_file()).unwrap());
    let client = server.client().await;
    let (connect, calls) = connect(&moto.url());
    let run = tokio::spawn(controller::run(client.clone(), settings, connect));
    let api: Api<WebStack> = Api::namespaced(client.clone(), "default");
    InProcess {
        moto,
        server,
        client,
        api,
        calls,
        run,
    }
}

fn manifest(file: &str) -> WebStack {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Polls until `done` holds for the named stack, or fails after `limit`.
async fn wait_for(
    api: &Api<WebStack>,
    name: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&WebStack) -> bool,
) -> WebStack {
    let deadline = Instant::now() + limit;
    loop {
        let last = api.get_opt(name).await.unwrap();
        if let Some(ws) = &last {
            if done(ws) {
                return ws.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name}: timed out waiting for {what}; last: {:?}",
            last.and_then(|w| w.status)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the stack's condition `type_` has `status`.
fn condition(ws: &WebStack, type_: &str, status: &str) -> bool {
    ws.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == status)
    })
}

fn ready(ws: &WebStack) -> bool {
    let s = ws.status.as_ref();
    s.and_then(|s| s.observed_generation) == ws.metadata.generation
        && s.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webstack_reaches_ready_updates_in_place_and_is_deleted_with_its_resources() {
    let InProcess {
        moto,
        server: _server,
        client,
        api,
        run,
        ..
    } = in_process(ApiServer::start(NEWEST), settings()).await;
    let ec2 = ec2(&moto.url(), "eu-west-1").await;

    api.create(
        &PostParams::default(),
        &manifest("examples/network-only.yaml"),
    )
    .await
    .unwrap();
    let ws = wait_for(
        &api,
        "network-only",
        Duration::from_secs(120),
        "Ready",
        ready,
    )
    .await;
    let status = ws.status.clone().unwrap();
    assert_eq!(status.phase, Some(webstack::api::Phase::Ready));
    assert!(ws
        .metadata
        .finalizers
        .as_ref()
        .unwrap()
        .contains(&controller::FINALIZER.to_string()));
    let net = status.outputs.unwrap().network.unwrap();
    assert_eq!(status.inventory.len(), 31);
    // The outputs and the inventory are what AWS holds.
    let vpcs = ec2
        .describe_vpcs()
        .vpc_ids(&net.vpc_id)
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.0.0.0/16"));
    let owner = vpcs.vpcs()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("webstack.io/stack"))
        .and_then(|t| t.value())
        .unwrap()
        .to_owned();
    assert_eq!(owner, "default/network-only");
    let subnet_ids: Vec<&str> = status
        .inventory
        .iter()
        .filter(|i| i.kind == "Subnet")
        .map(|i| i.id.as_str())
        .collect();
    let subnets = ec2
        .describe_subnets()
        .set_subnet_ids(Some(subnet_ids.iter().map(|s| s.to_string()).collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(subnets.subnets().len(), 4);
    let ready_condition = ws
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .clone();

    // Events tell what was created.
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "default");
    let list = events
        .list(&ListParams::default().fields("involvedObject.name=network-only"))
        .await
        .unwrap();
    let created = list
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Created"))
        .count();
    assert!(
        created >= 1,
        "Created events: {:?}",
        list.items
            .iter()
            .map(|e| (&e.reason, &e.message))
            .collect::<Vec<_>>()
    );

    // NAT single -> per zone converges in place.
    let patch = json!({"spec": {"network": {"natGateways": "PerAz"}}});
    api.patch(
        "network-only",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let ws = wait_for(
        &api,
        "network-only",
        Duration::from_secs(120),
        "Ready after the change",
        ready,
    )
    .await;
    let after = ws.status.clone().unwrap();
    assert_eq!(
        after.outputs.unwrap().network.unwrap().vpc_id,
        net.vpc_id,
        "the VPC was kept"
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&net.vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
        .count();
    assert_eq!(live, 2);
    // Ready stayed True through the change: its transition time did not move.
    let ready_after = after
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        ready_after.last_transition_time,
        ready_condition.last_transition_time
    );

    // Deleting the object deletes the stack's AWS resources, then the object.
    api.delete("network-only", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.get_opt("network-only").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the object was not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(owned_count(&ec2, "default/network-only").await, 0);
    run.abort();
}

/// Files of the invalid corpus that a cluster without CEL still refuses (schema bounds,
/// enums, unknown fields, names) never reach the controller; the rest must be caught by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_that_reach_the_controller_get_ready_false_naming_the_field_and_no_aws_call()
{
    let tripwire = Tripwire::start();
    let server = ApiServer::start(NEWEST);
    install_crd(&server, &crd_without_cel());
    let client = server.client().await;
    let (connect, _) = connect(&tripwire.url());
    let run = tokio::spawn(controller::run(client.clone(), settings(), connect));
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("tests/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut admitted = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let field = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# field: ")
            .to_owned();
        // A status in a file is the CLI's business: the API server takes status only through
        // the status subresource, so those samples are valid objects here.
        if text.contains("\nstatus:") {
            continue;
        }
        let namespace = format!("invalid-{i}");
        server.kubectl(&["create", "namespace", &namespace], None);
        // Each sample in a namespace of its own, so that all can exist at once.
        let text = text.replace("  namespace: default\n", "");
        let out = server.kubectl(&["apply", "-n", &namespace, "-f", "-"], Some(&text));
        if out.status.success() {
            admitted.push((namespace, field, file.clone()));
        }
    }
    assert!(
        admitted.len() >= 25,
        "only {} invalid specs got past a CEL-less server",
        admitted.len()
    );
    for (namespace, field, file) in &admitted {
        let api: Api<WebStack> = Api::namespaced(client.clone(), namespace);
        let name = api.list(&ListParams::default()).await.unwrap().items[0]
            .metadata
            .name
            .clone()
            .unwrap();
        let ws = wait_for(&api, &name, Duration::from_secs(60), "Ready=False", |ws| {
            condition(ws, "Ready", "False")
        })
        .await;
        let status = ws.status.unwrap();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason, "InvalidSpec", "{}", file.display());
        assert!(
            ready.message.contains(field.as_str()),
            "{}: expected {field} in {:?}",
            file.display(),
            ready.message
        );
        assert_eq!(status.phase, Some(webstack::api::Phase::Failed));
    }
    assert_eq!(
        tripwire.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no AWS call was made"
    );
    run.abort();
}

/// The controller process is killed right after a mutating AWS call; a new one converges to
/// exactly what a clean apply makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_mid_reconcile_converges_without_duplicates() {
    let moto = Moto::start();
    let ec2 = ec2(&moto.url(), "eu-west-1").await;
    let pristine = census(&ec2).await;
    let clean = run_cli(
        &moto.url(),
        &["apply", "-f", "examples/network-only.yaml"],
        &[],
    );
    assert!(clean.status.success());
    let reference = census(&ec2).await;
    assert!(run_cli(
        &moto.url(),
        &["destroy", "-f", "examples/network-only.yaml"],
        &[]
    )
    .status
    .success());
    assert_eq!(census(&ec2).await, pristine);

    let server = ApiServer::start(NEWEST);
    install_crd(&server, &std::fs::read_to_string(crd_file()).unwrap());
    let client = server.client().await;
    let api: Api<WebStack> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &manifest("examples/network-only.yaml"),
    )
    .await
    .unwrap();
    let kubeconfig = server.kubeconfig();
    let controller = |crash: Option<&str>| {
        let mut cmd = controller_command(&kubeconfig, &moto.url());
        cmd.args(["--retry-seconds", "1", "--metrics-address", "none"])
            .stderr(std::process::Stdio::null());
        if let Some(k) = crash {
            cmd.env(CRASH_AFTER_MUTATIONS_ENV, k);
        }
        cmd.spawn().expect("start webstack run")
    };
    // Requests in flight when the process stops may still take effect, so a second run has
    // fewer creates left than a clean apply: stop it early too.
    for k in ["7", "3"] {
        let mut run = controller(Some(k));
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = run.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = run.kill();
                panic!("the controller did not stop after mutating call {k}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            status.code(),
            Some(CRASH_EXIT_CODE),
            "the controller stopped after mutating call {k}"
        );
    }
    let mut second = controller(None);
    let ws = wait_for(
        &api,
        "network-only",
        Duration::from_secs(120),
        "Ready after the restart",
        ready,
    )
    .await;
    assert_eq!(ws.status.unwrap().inventory.len(), 31);
    assert_eq!(
        census(&ec2).await,
        reference,
        "no duplicate and no leak after the crashes"
    );
    let _ = second.kill();
    let _ = second.wait();
}

/// A stack that reads a Kubernetes Secret waits for it (reason `SecretNotFound`, no AWS
/// call), then copies its value into the stack's Secrets Manager secret, and the value is in
/// neither the status nor the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_waits_for_the_secret_it_reads_and_never_shows_its_value() {
    use k8s_openapi::api::core::v1::Secret;
    let InProcess {
        moto,
        server: _server,
        client,
        api,
        calls: api_calls,
        run,
    } = in_process(ApiServer::start(NEWEST), settings()).await;

    // StartTech's API tier and its MongoDB Atlas database; the rest comes with other tiers.
    let mut stack = manifest("examples/starttech.yaml");
    stack.spec.frontend = None;
    stack.spec.cdn = None;
    stack.spec.cache = None;
    stack.spec.monitoring = None;
    stack.spec.repositories.clear();
    api.create(&PostParams::default(), &stack).await.unwrap();
    let waiting = wait_for(
        &api,
        "starttech",
        Duration::from_secs(60),
        "SecretNotFound",
        |ws| {
            ws.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "SecretNotFound")
            })
        },
    )
    .await;
    let status = waiting.status.unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("spec.database.external.secretRef"),
        "{}",
        ready.message
    );
    assert_eq!(status.phase, Some(webstack::api::Phase::Provisioning));
    assert_eq!(api_calls.counts().total(), 0, "no AWS call while it waits");

    let value = "mongodb+srv://app:s3cr3t-in-kubernetes@cluster0.example.net/app";
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "starttech-mongodb"},
        "stringData": {"uri": value},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let built = wait_for(
        &api,
        "starttech",
        Duration::from_secs(180),
        "DatabaseReady",
        |ws| condition(ws, "DatabaseReady", "True"),
    )
    .await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk_config(&moto.url(), "eu-west-1").await);
    let listed = sm.list_secrets().send().await.unwrap();
    let copied = listed
        .secret_list()
        .iter()
        .find(|s| s.name().is_some_and(|n| n.contains("database-external")))
        .expect("the copied secret");
    let stored = sm
        .get_secret_value()
        .secret_id(copied.arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stored.secret_string(), Some(value));
    let shown = serde_json::to_string(&built.status).unwrap();
    assert!(!shown.contains("s3cr3t"), "{shown}");
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "default");
    for e in events.list(&ListParams::default()).await.unwrap() {
        assert!(!e.message.unwrap_or_default().contains("s3cr3t"));
    }

    api.delete("starttech", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.get_opt("starttech").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the stack was not deleted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(sm
        .list_secrets()
        .send()
        .await
        .unwrap()
        .secret_list()
        .is_empty());
    run.abort();
}

/// The controller stops promptly on SIGTERM in every state, including while its first list
/// of WebStacks is still being retried because the API server does not answer; its probes
/// say it is alive but not ready meanwhile.
#[test]
fn sigterm_stops_the_controller_while_its_first_list_is_retried() {
    let dir = std::env::temp_dir().join(format!("webstack-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // An API server address where nothing listens.
    let nothing = free_port();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: https://127.0.0.1:{nothing}\n    insecure-skip-tls-verify: true\nusers:\n- name: x\n  user:\n    token: x\ncontexts:\n- name: x\n  context:\n    cluster: x\n    user: x\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let metrics = free_port();
    let mut run = controller_command(&kubeconfig, "http://127.0.0.1:9")
        .args(["--metrics-address", &format!("127.0.0.1:{metrics}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start webstack run");
    let deadline = Instant::now() + Duration::from_secs(20);
    let probes = loop {
        if let (Ok((live, _)), Ok((ready, _))) = (
            http(metrics, "GET", "/healthz"),
            http(metrics, "GET", "/readyz"),
        ) {
            break (live, ready);
        }
        assert!(Instant::now() < deadline, "the probes never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        probes,
        (200, 503),
        "alive, not ready without its first list"
    );
    // Let it retry the list a few times.
    std::thread::sleep(Duration::from_secs(3));
    assert!(run.try_wait().unwrap().is_none(), "still running");
    let sent = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = run.kill();
            panic!("webstack run ignored SIGTERM for 5 seconds");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "a stop on SIGTERM is a clean exit: {status:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stack may assume only the IAM roles the operator's role map allows for its namespace: a
/// stack naming any other gets `Ready=False` (`RoleNotAllowed`, naming the field) and makes no
/// AWS call, and goes away on deletion without one; an allowed role is assumed (the emulator's
/// STS) and the stack is built in that role's account, not the operator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_assumes_only_the_roles_its_namespace_may_use() {
    const ROLE: &str = "arn:aws:iam::111111111111:role/webstack-team-a";
    let mut settings = settings();
    settings.roles =
        webstack::roles::RoleMap::parse(&format!("namespaces:\n  team-a:\n    - {ROLE}\n"))
            .unwrap();
    let InProcess {
        moto,
        server,
        client,
        calls,
        run,
        ..
    } = in_process(ApiServer::start(NEWEST), settings).await;
    for ns in ["team-a", "team-b"] {
        server.kubectl(&["create", "namespace", ns], None);
    }
    let with_role = |name: &str| {
        let mut ws = manifest("examples/network-only.yaml");
        ws.metadata.name = Some(name.into());
        ws.metadata.namespace = None;
        ws.spec.assume_role = Some(webstack::api::AssumeRoleSpec {
            role_arn: ROLE.into(),
            external_id: Some("team-a-external".into()),
        });
        ws
    };

    let refused: Api<WebStack> = Api::namespaced(client.clone(), "team-b");
    refused
        .create(&PostParams::default(), &with_role("borrowed"))
        .await
        .unwrap();
    let ws = wait_for(
        &refused,
        "borrowed",
        Duration::from_secs(60),
        "Ready=False",
        |ws| condition(ws, "Ready", "False"),
    )
    .await;
    let condition = ws.status.unwrap().conditions[0].clone();
    assert_eq!(condition.reason, "RoleNotAllowed");
    assert!(
        condition.message.contains("spec.assumeRole.roleArn")
            && condition.message.contains("team-b"),
        "{}",
        condition.message
    );
    assert_eq!(calls.counts().total(), 0, "no AWS call for a refused role");
    refused
        .delete("borrowed", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_gone(&refused, "borrowed").await;
    assert_eq!(calls.counts().total(), 0, "nor to delete it");

    let allowed: Api<WebStack> = Api::namespaced(client.clone(), "team-a");
    allowed
        .create(&PostParams::default(), &with_role("own"))
        .await
        .unwrap();
    wait_for(&allowed, "own", Duration::from_secs(120), "Ready", ready).await;
    // Built in the role's account: the operator's own account holds nothing of it.
    let mine = ec2(&moto.url(), "eu-west-1").await;
    assert_eq!(owned_count(&mine, "team-a/own").await, 0);
    let base = sdk_config(&moto.url(), "eu-west-1").await;
    let assumed = aws_config::sts::AssumeRoleProvider::builder(ROLE)
        .session_name("test")
        .configure(&base)
        .build()
        .await;
    let theirs = aws_sdk_ec2::Client::new(
        &base
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(assumed),
            )
            .build(),
    );
    assert!(owned_count(&theirs, "team-a/own").await > 0);
    allowed
        .delete("own", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_gone(&allowed, "own").await;
    assert_eq!(owned_count(&theirs, "team-a/own").await, 0);
    run.abort();
}

async fn wait_for_gone(api: &Api<WebStack>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(ws) = api.get_opt(name).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "{name} was never deleted: {:?}",
            ws.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One reconcile as a replica's log tells it: when it started and, unless the replica was
/// killed first, when it ended.
#[derive(Debug)]
struct Reconcile {
    replica: usize,
    stack: String,
    started: u64,
    ended: Option<u64>,
}

/// The reconciles in a replica's JSON log.
fn reconciles_in(log: &std::path::Path, replica: usize) -> Vec<Reconcile> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut started: Vec<Reconcile> = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = &v["fields"];
        let (Some(message), Some(stack), Some(at)) = (
            f["message"].as_str(),
            f["stack"].as_str(),
            f["started_ms"].as_u64(),
        ) else {
            continue;
        };
        match message {
            "reconcile started" => started.push(Reconcile {
                replica,
                stack: stack.to_owned(),
                started: at,
                ended: None,
            }),
            _ if message == "reconcile ended" || message.starts_with("reconcile stopped") => {
                if let Some(r) = started
                    .iter_mut()
                    .find(|r| r.stack == stack && r.started == at)
                {
                    r.ended = f["ended_ms"].as_u64();
                }
            }
            _ => {}
        }
    }
    started
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Who holds each shard Lease now (expired ones count as held by nobody).
async fn shard_holders(client: &kube::Client, shards: u32) -> Vec<Option<String>> {
    use webstack::controller::shards::{shard_lease, LeaseView};
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "default");
    let now = std::time::SystemTime::now();
    let mut holders = Vec::new();
    for s in 0..shards {
        let lease = leases.get_opt(&shard_lease(s)).await.unwrap();
        holders.push(lease.and_then(|l| LeaseView::of(&l).holder_at(now).map(str::to_owned)));
    }
    holders
}

/// Waits until every shard is held and each replica in `replicas` holds `each` of them.
async fn wait_for_shares(client: &kube::Client, replicas: &[&str], each: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holders = shard_holders(client, 6).await;
        let settled = holders.iter().all(Option::is_some)
            && replicas
                .iter()
                .all(|r| holders.iter().filter(|h| h.as_deref() == Some(*r)).count() == each);
        if settled {
            return holders.into_iter().flatten().collect();
        }
        assert!(
            Instant::now() < deadline,
            "the shards never settled at {each} for each of {replicas:?}: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Child processes killed when the test ends, passed or not.
struct Processes(Vec<std::process::Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for p in &mut self.0 {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl std::ops::Index<usize> for Processes {
    type Output = std::process::Child;
    fn index(&self, i: usize) -> &Self::Output {
        &self.0[i]
    }
}

impl std::ops::IndexMut<usize> for Processes {
    fn index_mut(&mut self, i: usize) -> &mut Self::Output {
        &mut self.0[i]
    }
}

/// Three `webstack run` replicas share six shard Leases two each; every stack is reconciled by
/// the one replica holding its shard; when one replica is killed, another takes its stacks
/// over once its lease has expired; when one stops on SIGTERM it gives its shards back at
/// once; and no stack is ever reconciled by two replicas at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_stacks_and_take_over_a_stopped_ones() {
    const LEASE_SECONDS: u64 = 6;
    let moto = Moto::start();
    let server = ApiServer::start(NEWEST);
    install_crd(&server, &std::fs::read_to_string(crd_file()).unwrap());
    let client = server.client().await;
    let dir = std::env::temp_dir().join(format!("webstack-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["replica-a", "replica-b", "replica-c"];
    let log = |i: usize| dir.join(format!("{}.log", names[i]));
    let start = |i: usize| {
        controller_command(&server.kubeconfig(), &moto.url())
            .args(["--log-format", "json", "--metrics-address", "none"])
            .args(["--shards", "6", "--lease-namespace", "default"])
            .args(["--identity", names[i]])
            .args(["--lease-seconds", &LEASE_SECONDS.to_string()])
            .args(["--resync-seconds", "3", "--retry-seconds", "1"])
            .env("WEBSTACK_LOG", "webstack=debug")
            .stderr(std::fs::File::create(log(i)).unwrap())
            .spawn()
            .expect("start webstack run")
    };
    let mut replicas = Processes((0..3).map(start).collect());
    let holders = wait_for_shares(&client, &names, 2).await;

    // One stack in each shard: each replica has two.
    let api: Api<WebStack> = Api::namespaced(client.clone(), "default");
    let mut stacks: Vec<String> = vec![String::new(); 6];
    for i in 0.. {
        let name = format!("s{i}");
        let shard = webstack::controller::shards::shard_of(&format!("default/{name}"), 6);
        if stacks[shard as usize].is_empty() {
            stacks[shard as usize] = name;
        }
        if stacks.iter().all(|s| !s.is_empty()) {
            break;
        }
    }
    for name in &stacks {
        let mut ws = manifest("examples/network-only.yaml");
        ws.metadata.name = Some(name.clone());
        ws.spec.network.az_count = Some(1);
        api.create(&PostParams::default(), &ws).await.unwrap();
    }
    for name in &stacks {
        wait_for(&api, name, Duration::from_secs(180), "Ready", ready).await;
    }
    // A few resyncs.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let all = |replicas: &[usize]| -> Vec<Reconcile> {
        replicas
            .iter()
            .flat_map(|&i| reconciles_in(&log(i), i))
            .collect()
    };
    let seen = all(&[0, 1, 2]);
    for (shard, name) in stacks.iter().enumerate() {
        let stack = format!("default/{name}");
        let by: std::collections::BTreeSet<usize> = seen
            .iter()
            .filter(|r| r.stack == stack)
            .map(|r| r.replica)
            .collect();
        let holder = names.iter().position(|n| *n == holders[shard]).unwrap();
        assert_eq!(
            by,
            [holder].into(),
            "{stack} (shard {shard}) is reconciled by its shard's holder only"
        );
        assert!(
            seen.iter().filter(|r| r.stack == stack).count() >= 2,
            "{stack} was resynced"
        );
    }

    // Kill the holder of the first stack's shard: its stacks wait for its leases to expire,
    // then another replica takes them.
    let victim = names.iter().position(|n| *n == holders[0]).unwrap();
    let orphans: Vec<String> = stacks
        .iter()
        .enumerate()
        .filter(|(s, _)| holders[*s] == names[victim])
        .map(|(_, n)| format!("default/{n}"))
        .collect();
    replicas[victim].kill().unwrap();
    replicas[victim].wait().unwrap();
    let killed = unix_ms();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken = loop {
        let after: Vec<Reconcile> = all(&survivors)
            .into_iter()
            .filter(|r| r.started > killed)
            .collect();
        let first: Vec<u64> = orphans
            .iter()
            .filter_map(|o| {
                after
                    .iter()
                    .filter(|r| &r.stack == o)
                    .map(|r| r.started)
                    .min()
            })
            .collect();
        if first.len() == orphans.len() {
            break first.into_iter().max().unwrap() - killed;
        }
        assert!(
            Instant::now() < deadline,
            "the killed replica's stacks {orphans:?} were never taken over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("stacks of a killed replica reconciled by another after {taken} ms (lease {LEASE_SECONDS} s)");
    assert!(
        taken <= (LEASE_SECONDS + 3) * 1000,
        "taken over {taken} ms after the kill: more than the lease duration and the take-over"
    );
    let pair: Vec<&str> = survivors.iter().map(|i| names[*i]).collect();
    wait_for_shares(&client, &pair, 3).await;

    // A replica stopped with SIGTERM gives its shards back: the last one holds them all well
    // before a lease could have expired.
    let (leaving, staying) = (survivors[0], survivors[1]);
    let term = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &replicas[leaving].id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(replicas[leaving].wait().unwrap().success());
    wait_for_shares(&client, &[names[staying]], 6).await;
    let handed = term.elapsed();
    println!("shards handed over {handed:?} after SIGTERM");
    assert!(
        handed < Duration::from_secs(LEASE_SECONDS),
        "a replica stopping on SIGTERM releases its leases"
    );

    // Never two reconcilers of one stack at once (a killed replica's last reconcile runs
    // until the kill).
    let seen = all(&[0, 1, 2]);
    let now = unix_ms();
    let end = |r: &Reconcile| {
        r.ended
            .unwrap_or(if r.replica == victim { killed } else { now })
    };
    for a in &seen {
        for b in &seen {
            if a.replica < b.replica && a.stack == b.stack {
                let (a_end, b_end) = (end(a), end(b));
                assert!(
                    a_end <= b.started || b_end <= a.started,
                    "{} reconciled by two replicas at once: {a:?} and {b:?}",
                    a.stack
                );
            }
        }
    }
    drop(replicas);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stack's objects in the cluster, by kind and name (the operator's labels).
async fn cluster_objects(client: &kube::Client, stack: &str) -> Vec<String> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
    use k8s_openapi::api::networking::v1::Ingress;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    async fn names<K>(client: &kube::Client, kind: &str, stack: &str, out: &mut Vec<String>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), "default");
        let lp = ListParams::default().labels(&format!("webstack.io/stack={stack}"));
        let Ok(list) = api.list_metadata(&lp).await else {
            return;
        };
        out.extend(
            list.items
                .into_iter()
                .map(|m| format!("{kind}/{}", m.metadata.name.unwrap_or_default())),
        );
    }
    let mut out = Vec::new();
    names::<ConfigMap>(client, "ConfigMap", stack, &mut out).await;
    names::<Secret>(client, "Secret", stack, &mut out).await;
    names::<Service>(client, "Service", stack, &mut out).await;
    names::<Deployment>(client, "Deployment", stack, &mut out).await;
    names::<Ingress>(client, "Ingress", stack, &mut out).await;
    names::<HorizontalPodAutoscaler>(client, "HorizontalPodAutoscaler", stack, &mut out).await;
    names::<PodDisruptionBudget>(client, "PodDisruptionBudget", stack, &mut out).await;
    out.sort();
    out
}

/// Deletes the stack; its objects in the cluster go before it does.
async fn delete_with_objects(api: &Api<WebStack>, client: &kube::Client, name: &str) {
    api.delete(name, &DeleteParams::default()).await.unwrap();
    wait_for_gone(api, name).await;
    assert_eq!(cluster_objects(client, name).await, Vec::<String>::new());
}

/// Polls until the stack's objects in the cluster are `expected`.
async fn wait_for_objects(client: &kube::Client, stack: &str, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = cluster_objects(client, stack).await;
        if found == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stack}: objects {found:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn secret_values(secret: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap()))
        .collect()
}

/// Acceptance 4: the in-cluster tier's Deployment, Service, Ingress, autoscaler, disruption
/// budget, endpoints ConfigMap and connection Secret, owned by the stack and applied
/// server-side; a spec change updates them and deletes what is no longer declared; deleting
/// the stack deletes them (the test API server has no garbage collector).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_workloads_follow_the_stack_and_go_with_it() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
    use k8s_openapi::api::networking::v1::Ingress;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let settings = Settings {
        ingress_class: Some("public".into()),
        ..settings()
    };
    let InProcess {
        moto,
        server: _server,
        client,
        api,
        run,
        ..
    } = in_process(ApiServer::start(NEWEST), settings).await;
    let mut stack = manifest("examples/in-cluster.yaml");
    // The test deletes the stack at the end.
    if let Some(rds) = stack.spec.database.as_mut().and_then(|d| d.rds.as_mut()) {
        rds.deletion_protection = false;
        rds.final_snapshot = false;
    }
    // The API's Ingress takes the operator's class.
    stack.spec.backend.as_mut().unwrap().tiers[0]
        .in_cluster
        .as_mut()
        .unwrap()
        .ingress
        .class_name = None;
    api.create(&PostParams::default(), &stack).await.unwrap();
    let ws = wait_for(
        &api,
        "in-cluster-shop",
        Duration::from_secs(180),
        "Ready",
        |ws| ready(ws) && condition(ws, "WorkloadsReady", "True"),
    )
    .await;
    let uid = ws.metadata.uid.clone().unwrap();
    let status = ws.status.clone().unwrap();
    assert_eq!(status.phase, Some(webstack::api::Phase::Ready));
    let every = [
        "ConfigMap/in-cluster-shop-endpoints",
        "Secret/in-cluster-shop-connection",
        "Service/in-cluster-shop-frontend",
        "Deployment/in-cluster-shop-frontend",
        "Ingress/in-cluster-shop-frontend",
        "PodDisruptionBudget/in-cluster-shop-frontend",
        "Service/in-cluster-shop-api",
        "Deployment/in-cluster-shop-api",
        "Ingress/in-cluster-shop-api",
        "HorizontalPodAutoscaler/in-cluster-shop-api",
        "PodDisruptionBudget/in-cluster-shop-api",
    ];
    wait_for_objects(&client, "in-cluster-shop", &every).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let api_deployment = deployments.get("in-cluster-shop-api").await.unwrap();
    let meta = &api_deployment.metadata;
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("WebStack", uid.as_str())
    );
    assert_eq!(owner.controller, Some(true));
    let managers: Vec<(String, String)> = meta
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("webstack-operator".to_owned(), "Apply".to_owned())],
        "applied server-side under one field manager"
    );
    let owned = serde_json::to_string(&meta.managed_fields.as_ref().unwrap()[0].fields_v1).unwrap();
    assert!(owned.contains("f:template"), "{owned}");
    assert!(
        !owned.contains("f:replicas"),
        "the autoscaler owns the count: {owned}"
    );
    let spec = api_deployment.spec.unwrap();
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com/shop/api:2.0.1")
    );
    let frontend = deployments.get("in-cluster-shop-frontend").await.unwrap();
    assert_eq!(frontend.spec.unwrap().replicas, Some(2));

    let hpa: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa = hpa.get("in-cluster-shop-api").await.unwrap().spec.unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 6));
    assert_eq!(hpa.scale_target_ref.name, "in-cluster-shop-api");
    let pdb: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pdb = pdb.get("in-cluster-shop-api").await.unwrap().spec.unwrap();
    assert_eq!(
        pdb.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = services
        .get("in-cluster-shop-api")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(svc.ports.unwrap()[0].port, 80);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let ingress = ingresses
        .get("in-cluster-shop-api")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(ingress.ingress_class_name.as_deref(), Some("public"));
    let rule = &ingress.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("shop.example.com"));
    let frontend_ingress = ingresses.get("in-cluster-shop-frontend").await.unwrap();
    assert_eq!(
        frontend_ingress.spec.unwrap().ingress_class_name.as_deref(),
        Some("nginx"),
        "the spec's class beats the operator's"
    );
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let config = configs
        .get("in-cluster-shop-endpoints")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(
        config["WEBSTACK_API_URL"],
        "http://in-cluster-shop-api.default.svc"
    );

    // The connection Secret holds the endpoints AWS reports and the password's ARN, and no
    // password.
    let outputs = status.outputs.unwrap();
    let database = outputs.database.unwrap();
    let cache = outputs.cache.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let values = secret_values(&secrets.get("in-cluster-shop-connection").await.unwrap());
    assert_eq!(values["DATABASE_HOST"], database.endpoint);
    assert_eq!(values["DATABASE_PORT"], database.port.to_string());
    assert_eq!(values["DATABASE_PASSWORD_SECRET_ARN"], database.secret_arn);
    assert_eq!(values["CACHE_HOST"], cache.endpoint);
    let sm = aws_sdk_secretsmanager::Client::new(&sdk_config(&moto.url(), "eu-west-1").await);
    let kept = sm
        .get_secret_value()
        .secret_id(&database.secret_arn)
        .send()
        .await
        .unwrap();
    let password = serde_json::from_str::<serde_json::Value>(kept.secret_string().unwrap())
        .unwrap()["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!password.is_empty());
    assert!(
        !values.values().any(|v| v.contains(&password)),
        "no password value in Kubernetes unless the spec asks: {values:?}"
    );

    // A spec change: a new image, the frontend's Ingress dropped, the password asked for.
    let patch = json!({"spec": {
        "connectionSecret": {"includePassword": true},
        "frontend": {"inCluster": {"ingress": {"enabled": false}}},
        "backend": {"tiers": [{
            "name": "api", "runtime": "InCluster", "port": 3000,
            "healthCheck": {"path": "/healthz"},
            "scaling": {"min": 3, "max": 6, "cpuTargetPercent": 65},
            "environment": {"LOG_LEVEL": "debug"},
            "inCluster": {"image": "registry.example.com/shop/api:2.0.2", "port": 3000},
        }]},
    }});
    api.patch(
        "in-cluster-shop",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let mut without_ingress: Vec<&str> = every.to_vec();
    without_ingress.retain(|o| *o != "Ingress/in-cluster-shop-frontend");
    wait_for_objects(&client, "in-cluster-shop", &without_ingress).await;
    wait_for(
        &api,
        "in-cluster-shop",
        Duration::from_secs(60),
        "Ready after the change",
        |ws| ready(ws) && condition(ws, "WorkloadsReady", "True"),
    )
    .await;
    let changed = deployments.get("in-cluster-shop-api").await.unwrap();
    let container = &changed.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com/shop/api:2.0.2")
    );
    assert_eq!(
        container.env.as_ref().unwrap()[0].value.as_deref(),
        Some("debug")
    );
    let hpa: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        hpa.get("in-cluster-shop-api")
            .await
            .unwrap()
            .spec
            .unwrap()
            .min_replicas,
        Some(3)
    );
    let values = secret_values(&secrets.get("in-cluster-shop-connection").await.unwrap());
    assert_eq!(values.get("DATABASE_PASSWORD"), Some(&password));

    // The frontend goes: its objects go with it.
    let patch = json!({"spec": {"frontend": {"kind": "None", "inCluster": null}}});
    api.patch(
        "in-cluster-shop",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let mut api_only = without_ingress.clone();
    api_only.retain(|o| !o.ends_with("-frontend"));
    wait_for_objects(&client, "in-cluster-shop", &api_only).await;

    // Deleting the stack deletes its objects, then its AWS resources, then the object.
    delete_with_objects(&api, &client, "in-cluster-shop").await;
    run.abort();
}

/// A cluster that does not serve `autoscaling/v2`: the workload runs a fixed count, and the
/// stack says so in a condition naming the field; nothing crashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_autoscaling_v2_a_scaled_workload_gets_a_condition_not_a_crash() {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = ApiServer::start_with(NEWEST, &["--runtime-config=autoscaling/v2=false"]);
    let InProcess {
        moto: _moto,
        server: _server,
        client,
        api,
        run,
        ..
    } = in_process(server, settings()).await;
    let mut stack = manifest("examples/in-cluster.yaml");
    stack.spec.database = None;
    stack.spec.cache = None;
    stack.spec.frontend = None;
    api.create(&PostParams::default(), &stack).await.unwrap();
    let ws = wait_for(
        &api,
        "in-cluster-shop",
        Duration::from_secs(120),
        "WorkloadsReady=False",
        |ws| condition(ws, "WorkloadsReady", "False"),
    )
    .await;
    let status = ws.status.unwrap();
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "WorkloadsReady")
        .unwrap();
    assert_eq!(c.reason, "AutoscalingUnavailable");
    assert!(
        c.message.starts_with("spec.backend.tiers[0].scaling: ")
            && c.message.contains("autoscaling/v2"),
        "{}",
        c.message
    );
    assert_eq!(status.phase, Some(webstack::api::Phase::Degraded));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deployments.get("in-cluster-shop-api").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(2), "scaling.min, fixed");
    wait_for_objects(
        &client,
        "in-cluster-shop",
        &[
            "ConfigMap/in-cluster-shop-endpoints",
            "Service/in-cluster-shop-api",
            "Deployment/in-cluster-shop-api",
            "Ingress/in-cluster-shop-api",
            "PodDisruptionBudget/in-cluster-shop-api",
        ],
    )
    .await;
    assert!(!run.is_finished(), "the controller still runs");
    delete_with_objects(&api, &client, "in-cluster-shop").await;
    run.abort();
}
