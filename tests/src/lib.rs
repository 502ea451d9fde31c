//! The test harness: a real AWS emulator (the moto server) per test on a free loopback port,
//! a fault-injecting proxy in front of it, EC2 clients to check what the emulator holds, and
//! the `webstack` binary.

pub mod apiserver;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use webstack::api::validate::parse_manifest;
use webstack::api::WebStack;
use webstack::aws::client::AwsApi;
use webstack::aws::Connect;

pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The moto server executable: `WEBSTACK_MOTO_SERVER`, or `moto_server` on the PATH.
fn moto_command() -> String {
    std::env::var("WEBSTACK_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned())
}

/// How the emulator is started: the Python beside the moto server (its virtual environment's)
/// running `tests/harness/moto_server.py`, which is moto with the operations it lacks filled in.
fn emulator_command() -> Command {
    let moto = PathBuf::from(moto_command());
    let python = moto
        .parent()
        .map(|d| d.join("python3"))
        .filter(|p| p.exists())
        .map(|p| p.into_os_string().into_string().unwrap_or_default())
        .unwrap_or_else(python);
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/harness/moto_server.py"));
    cmd
}

fn python() -> String {
    std::env::var("WEBSTACK_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One HTTP/1.0 request on loopback; returns the status code and body.
pub fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// One JSON-protocol call to the emulator (`X-Amz-Target: <target>`), for what a test reads
/// from a service the operator's crates do not include (Secrets Manager's secret value).
pub fn aws_json(port: u16, target: &str, body: &serde_json::Value) -> serde_json::Value {
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/eu-west-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let answer = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(answer).unwrap_or_else(|e| panic!("{target}: {e}: {text}"))
}

/// A manifest written to a file of its own, for the CLI; removed when dropped.
pub struct TempManifest(PathBuf);

impl TempManifest {
    pub fn new(text: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("webstack-test-{}-{n}.yaml", std::process::id()));
        std::fs::write(&path, text).expect("a writable temporary directory");
        TempManifest(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TempManifest {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A moto server of its own, stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        for _ in 0..5 {
            let port = free_port();
            let child = emulator_command()
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ACM_VALIDATION_WAIT", "0")
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {} (set WEBSTACK_MOTO_SERVER): {e}",
                        moto_command()
                    )
                });
            let mut moto = Moto { child, port };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok((200, _)) = http(port, "GET", "/moto-api/data.json") {
                    return moto;
                }
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = moto.child.kill();
        }
        panic!("the moto server did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Clears everything the emulator holds.
    pub fn reset(&self) {
        let (status, _) = http(self.port, "POST", "/moto-api/reset").expect("moto reset");
        assert_eq!(status, 200, "moto reset");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A proxy that answers a share of the requests with throttling or 503 errors.
pub struct FaultyProxy {
    child: Child,
    pub port: u16,
}

impl FaultyProxy {
    pub fn start(upstream: &str, rate: f64, seed: u64) -> FaultyProxy {
        let script = repo_root().join("tests/harness/awsproxy.py");
        let mut child = Command::new(python())
            .arg(script)
            .args([upstream, &rate.to_string(), &seed.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fault proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("proxy port");
        let port = line.trim().parse().expect("the proxy prints its port");
        FaultyProxy { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `(forwarded, throttled, unavailable)` so far.
    pub fn stats(&self) -> (u64, u64, u64) {
        let (_, body) = http(self.port, "GET", "/__proxy/stats").expect("proxy stats");
        let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        (n("forwarded"), n("throttled"), n("unavailable"))
    }

    /// Forwarded requests whose answer was sent back to the client.
    pub fn answered(&self) -> u64 {
        let (_, body) = http(self.port, "GET", "/__proxy/stats").expect("proxy stats");
        let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
        v["answered"].as_u64().unwrap_or(0)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connection settings for the library, aimed at `endpoint`, with a fresh call layer.
pub fn connect(endpoint: &str) -> (Connect, Arc<AwsApi>) {
    let api = Arc::new(AwsApi::new(format!("test-{endpoint}"), "eu-west-1"));
    let mut connect = Connect::default();
    connect.endpoint_url = Some(endpoint.to_owned());
    connect.credentials = Some(aws_credential_types::Credentials::new(
        ACCESS_KEY, SECRET_KEY, None, None, "tests",
    ));
    connect.api = Some(api.clone());
    (connect, api)
}

/// The SDK's configuration for the emulator, to check what it holds.
pub async fn sdk_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "tests",
        ))
        .load()
        .await
}

/// An EC2 client on the emulator, to check what it holds.
/// Creates the public hosted zone `name` out of band, as a registrar's customer would before
/// a stack writes records into it; its id.
pub async fn public_zone(endpoint: &str, name: &str) -> String {
    let r53 = aws_sdk_route53::Client::new(&sdk_config(endpoint, "us-east-1").await);
    let made = r53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("test-{name}"))
        .send()
        .await
        .expect("the zone is created");
    made.hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_owned())
        .unwrap_or_default()
}

pub async fn ec2(endpoint: &str, region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(endpoint, region).await)
}

/// An even sample of at least `n` of the mutating calls `1..=total` after which a crash test
/// stops the process (all of them when there are fewer), the first and the last always
/// included. The points in between move from day to day (their offset is the day's number
/// modulo the step, or `WEBSTACK_CRASH_OFFSET`), so that successive runs cover every point; the
/// offset is printed, so that a failure can be replayed.
pub fn crash_points(total: u64, n: u64) -> Vec<u64> {
    let step = (total / n.max(1)).max(1);
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let offset = std::env::var("WEBSTACK_CRASH_OFFSET")
        .ok()
        .and_then(|o| o.parse::<u64>().ok())
        .unwrap_or(day)
        % step;
    let mut points = vec![1];
    points.extend((1 + offset..=total).step_by(step as usize));
    points.push(total);
    points.dedup();
    assert!(points.len() as u64 >= n.min(total), "{total}: {points:?}");
    eprintln!(
        "crash points: {} of {total} (WEBSTACK_CRASH_OFFSET={offset} replays them)",
        points.len()
    );
    points
}

/// Mutating calls of a CLI apply, from its `--show-calls` report.
pub fn mutating_calls(out: &Output) -> u64 {
    let text = String::from_utf8_lossy(&out.stderr);
    let report = text.split("AWS calls:").nth(1).expect("a call report");
    report
        .lines()
        .skip(1)
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (parts.len() == 3 && !webstack::aws::client::is_read_operation(parts[1]))
                .then(|| parts[2].parse::<u64>().expect("a count"))
        })
        .sum()
}

/// What RDS holds, by type (the emulator's own default groups left out).
pub async fn rds_census(rds: &aws_sdk_rds::Client) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    let instances = rds
        .describe_db_instances()
        .send()
        .await
        .expect("DescribeDBInstances");
    c.insert("db instances", instances.db_instances().len());
    let subnets = rds
        .describe_db_subnet_groups()
        .send()
        .await
        .expect("DescribeDBSubnetGroups");
    c.insert(
        "db subnet groups",
        subnets
            .db_subnet_groups()
            .iter()
            .filter(|g| g.db_subnet_group_name() != Some("default"))
            .count(),
    );
    let params = rds
        .describe_db_parameter_groups()
        .send()
        .await
        .expect("DescribeDBParameterGroups");
    c.insert(
        "db parameter groups",
        params
            .db_parameter_groups()
            .iter()
            .filter(|g| {
                !g.db_parameter_group_name()
                    .unwrap_or_default()
                    .starts_with("default.")
            })
            .count(),
    );
    c
}

/// An RDS client on the emulator.
pub async fn rds(endpoint: &str, region: &str) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&sdk_config(endpoint, region).await)
}

/// An example from `examples/`, renamed so that tests do not share stacks.
/// The Kubernetes Secrets the examples read (`examples/secrets/`).
pub fn example_secrets() -> webstack::inputs::Inputs {
    let mut inputs = webstack::inputs::Inputs::default();
    let dir = repo_root().join("examples/secrets");
    for entry in std::fs::read_dir(&dir).expect("examples/secrets") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a Secret");
        let secret: k8s_openapi::api::core::v1::Secret =
            serde_yaml::from_str(&text).expect("a Secret manifest");
        inputs.add_secret(&secret);
    }
    inputs
}

/// The path of an example's Secret manifest, for the CLI's `-f`.
pub fn example_secret_file(name: &str) -> String {
    repo_root()
        .join("examples/secrets")
        .join(name)
        .display()
        .to_string()
}

pub fn example(file: &str, name: &str) -> WebStack {
    let text =
        std::fs::read_to_string(repo_root().join("examples").join(file)).expect("example file");
    let mut stack = parse_manifest(&text).expect("the example is valid");
    stack.metadata.name = Some(name.to_owned());
    stack
}

/// The `webstack` binary built beside the test executables (`target/<profile>/deps`) or the
/// bench binaries (`target/<profile>`).
pub fn webstack_bin() -> PathBuf {
    // Another build (a release build for the memory figures of the bench).
    if let Some(bin) = std::env::var_os("WEBSTACK_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable");
    let here = exe.parent().expect("the executable's folder");
    let bin = [Some(here), here.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("webstack"))
        .find(|b| b.exists())
        .unwrap_or_else(|| here.join("webstack"));
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// The AWS call counters of a controller's `/metrics` on `port`:
/// `(service, operation, outcome) -> count`.
pub fn scrape_aws_calls(port: u16) -> BTreeMap<(String, String, String), u64> {
    let (status, body) = http(port, "GET", "/metrics").expect("scrape /metrics");
    assert_eq!(status, 200, "/metrics: {body}");
    let label = |labels: &str, name: &str| -> String {
        let start = format!("{name}=\"");
        labels
            .split(',')
            .find_map(|kv| kv.strip_prefix(&start))
            .map(|v| v.trim_end_matches('"').to_owned())
            .unwrap_or_default()
    };
    body.lines()
        .filter_map(|l| l.strip_prefix("webstack_aws_calls_total{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            let n = value.trim().parse::<f64>().ok()? as u64;
            Some((
                (
                    label(labels, "service"),
                    label(labels, "operation"),
                    label(labels, "outcome"),
                ),
                n,
            ))
        })
        .collect()
}

/// `webstack` with `endpoint` as AWS and the test credentials, nothing else of the caller's
/// AWS or pod settings.
fn webstack_command(endpoint: &str) -> Command {
    let mut cmd = Command::new(webstack_bin());
    cmd.current_dir(repo_root())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "eu-west-1")
        .env_remove("AWS_PROFILE")
        .env_remove("POD_NAMESPACE")
        .env_remove("POD_NAME")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// `webstack run` (the controller) against the cluster of `kubeconfig` and `endpoint` as AWS,
/// its standard output discarded; the caller adds flags and where its logs go.
pub fn controller_command(kubeconfig: &Path, endpoint: &str) -> Command {
    let mut cmd = webstack_command(endpoint);
    cmd.arg("run")
        .env("KUBECONFIG", kubeconfig)
        .stdout(std::process::Stdio::null());
    cmd
}

/// Runs `webstack` with the emulator's endpoint and test credentials.
pub fn run_cli(endpoint: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = webstack_command(endpoint);
    cmd.args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run webstack")
}

/// Counts of what the emulator holds, by type, over the whole region (the default VPC
/// included, which is the same before and after): duplicates and leaks show as differences.
pub async fn census(ec2: &aws_sdk_ec2::Client) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    c.insert("vpcs", vpcs.vpcs().len());
    let subnets = ec2
        .describe_subnets()
        .send()
        .await
        .expect("DescribeSubnets");
    c.insert("subnets", subnets.subnets().len());
    let igws = ec2
        .describe_internet_gateways()
        .send()
        .await
        .expect("DescribeInternetGateways");
    c.insert("internet gateways", igws.internet_gateways().len());
    c.insert(
        "gateway attachments",
        igws.internet_gateways()
            .iter()
            .map(|g| g.attachments().len())
            .sum(),
    );
    let eips = ec2
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    c.insert("elastic ips", eips.addresses().len());
    let nats = ec2
        .describe_nat_gateways()
        .send()
        .await
        .expect("DescribeNatGateways");
    c.insert(
        "nat gateways",
        nats.nat_gateways()
            .iter()
            .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
            .count(),
    );
    let rts = ec2
        .describe_route_tables()
        .send()
        .await
        .expect("DescribeRouteTables");
    c.insert("route tables", rts.route_tables().len());
    c.insert(
        "routes",
        rts.route_tables().iter().map(|t| t.routes().len()).sum(),
    );
    c.insert(
        "associations",
        rts.route_tables()
            .iter()
            .map(|t| t.associations().len())
            .sum(),
    );
    let eps = ec2
        .describe_vpc_endpoints()
        .send()
        .await
        .expect("DescribeVpcEndpoints");
    c.insert(
        "vpc endpoints",
        eps.vpc_endpoints()
            .iter()
            .filter(|e| {
                e.state().map(|s| s.as_str().to_ascii_lowercase()) != Some("deleted".into())
            })
            .count(),
    );
    let sgs = ec2
        .describe_security_groups()
        .send()
        .await
        .expect("DescribeSecurityGroups");
    c.insert("security groups", sgs.security_groups().len());
    c.insert(
        "ingress rules",
        sgs.security_groups()
            .iter()
            .flat_map(|g| g.ip_permissions())
            .map(|p| p.ip_ranges().len() + p.user_id_group_pairs().len())
            .sum(),
    );
    c
}

/// A filter on the ownership tag.
pub fn owned_by(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:webstack.io/stack")
        .values(stack)
        .build()
}

/// Resources still tagged as owned by `stack`, of every EC2 type the network tier makes.
pub async fn owned_count(ec2: &aws_sdk_ec2::Client, stack: &str) -> usize {
    let f = owned_by(stack);
    let mut n = 0;
    n += ec2
        .describe_vpcs()
        .filters(f.clone())
        .send()
        .await
        .expect("vpcs")
        .vpcs()
        .len();
    n += ec2
        .describe_subnets()
        .filters(f.clone())
        .send()
        .await
        .expect("subnets")
        .subnets()
        .len();
    n += ec2
        .describe_internet_gateways()
        .filters(f.clone())
        .send()
        .await
        .expect("igws")
        .internet_gateways()
        .len();
    n += ec2
        .describe_addresses()
        .filters(f.clone())
        .send()
        .await
        .expect("eips")
        .addresses()
        .len();
    n += ec2
        .describe_nat_gateways()
        .send()
        .await
        .expect("nats")
        .nat_gateways()
        .iter()
        .filter(|g| g.state().map(|s| s.as_str()) != Some("deleted"))
        .filter(|g| {
            g.tags()
                .iter()
                .any(|t| t.key() == Some("webstack.io/stack") && t.value() == Some(stack))
        })
        .count();
    n += ec2
        .describe_route_tables()
        .filters(f.clone())
        .send()
        .await
        .expect("rts")
        .route_tables()
        .len();
    n += ec2
        .describe_vpc_endpoints()
        .filters(f.clone())
        .send()
        .await
        .expect("endpoints")
        .vpc_endpoints()
        .iter()
        .filter(|e| e.state().map(|s| s.as_str().to_ascii_lowercase()) != Some("deleted".into()))
        .count();
    n += ec2
        .describe_security_groups()
        .filters(f)
        .send()
        .await
        .expect("sgs")
        .security_groups()
        .len();
    n
}

/// A loopback listener standing in for AWS that only counts the connections made to it.
pub struct Tripwire {
    pub port: u16,
    pub hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl Tripwire {
    pub fn start() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(conn);
            }
        });
        Tripwire { port, hits }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Counts of what the backend tier makes, over the whole region (IAM over the operator's
/// path): duplicates and leaks show as differences.
pub async fn backend_census(endpoint: &str, region: &str) -> BTreeMap<&'static str, usize> {
    let config = sdk_config(endpoint, region).await;
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&sdk_config(endpoint, "us-east-1").await);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut c = BTreeMap::new();
    let groups = asg
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("groups");
    c.insert("auto scaling groups", groups.auto_scaling_groups().len());
    let policies = asg.describe_policies().send().await.expect("policies");
    c.insert("scaling policies", policies.scaling_policies().len());
    let lbs = elb.describe_load_balancers().send().await.expect("lbs");
    c.insert("load balancers", lbs.load_balancers().len());
    let mut listeners = 0;
    for lb in lbs.load_balancers() {
        listeners += elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap_or_default())
            .send()
            .await
            .expect("listeners")
            .listeners()
            .len();
    }
    c.insert("listeners", listeners);
    let tgs = elb.describe_target_groups().send().await.expect("tgs");
    c.insert("target groups", tgs.target_groups().len());
    let lts = ec2
        .describe_launch_templates()
        .send()
        .await
        .expect("templates");
    c.insert("launch templates", lts.launch_templates().len());
    let roles = iam
        .list_roles()
        .path_prefix("/webstack/")
        .send()
        .await
        .expect("roles");
    c.insert("iam roles", roles.roles().len());
    let profiles = iam
        .list_instance_profiles()
        .path_prefix("/webstack/")
        .send()
        .await
        .expect("profiles");
    c.insert("instance profiles", profiles.instance_profiles().len());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/webstack/")
        .send()
        .await
        .expect("log groups");
    c.insert("log groups", groups.log_groups().len());
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_name_prefix("webstack/")
        .send()
        .await
        .expect("alarms");
    c.insert("alarms", alarms.metric_alarms().len());
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let listed = secrets.list_secrets().send().await.expect("secrets");
    c.insert("secrets", listed.secret_list().len());
    c
}

/// What the edge tier makes, counted through AWS's own listings: buckets, distributions,
/// origin access controls, hosted zones, the records in them beyond a zone's own (SOA and
/// NS), certificates in `region` and in us-east-1, and alarms in us-east-1.
pub async fn edge_census(endpoint: &str, region: &str) -> BTreeMap<&'static str, usize> {
    let global = sdk_config(endpoint, "us-east-1").await;
    let local = sdk_config(endpoint, region).await;
    let s3 = aws_sdk_s3::Client::new(&local);
    let cf = aws_sdk_cloudfront::Client::new(&global);
    let r53 = aws_sdk_route53::Client::new(&global);
    let mut c = BTreeMap::new();
    let buckets = s3.list_buckets().send().await.expect("buckets");
    c.insert("buckets", buckets.buckets().len());
    let dists = cf.list_distributions().send().await.expect("distributions");
    c.insert(
        "distributions",
        dists
            .distribution_list()
            .map(|l| l.items().len())
            .unwrap_or(0),
    );
    let oacs = cf
        .list_origin_access_controls()
        .send()
        .await
        .expect("origin access controls");
    c.insert(
        "origin access controls",
        oacs.origin_access_control_list()
            .map(|l| l.items().len())
            .unwrap_or(0),
    );
    let zones = r53.list_hosted_zones().send().await.expect("zones");
    c.insert("hosted zones", zones.hosted_zones().len());
    let mut records = 0;
    for z in zones.hosted_zones() {
        let sets = r53
            .list_resource_record_sets()
            .hosted_zone_id(z.id())
            .send()
            .await
            .expect("records");
        records += sets
            .resource_record_sets()
            .iter()
            .filter(|s| !matches!(s.r#type().as_str(), "SOA" | "NS"))
            .count();
    }
    c.insert("records", records);
    let mut certificates = 0;
    for config in [&local, &global] {
        certificates += aws_sdk_acm::Client::new(config)
            .list_certificates()
            .send()
            .await
            .expect("certificates")
            .certificate_summary_list()
            .len();
        if region == "us-east-1" {
            break;
        }
    }
    c.insert("certificates", certificates);
    let alarms = aws_sdk_cloudwatch::Client::new(&global)
        .describe_alarms()
        .send()
        .await
        .expect("alarms");
    c.insert("alarms in us-east-1", alarms.metric_alarms().len());
    c
}
