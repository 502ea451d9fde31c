//! The commands of `webstack`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use webstack::api::validate::parse_manifest_in;
use webstack::api::WebStack;
use webstack::aws::client::CallCounts;
use webstack::engine::{Event, EventKind, Plan, Reporter};
use webstack::inputs::Inputs;
use webstack::stack::{self, Prepared, StackError};

#[derive(Parser, Debug)]
#[command(
    name = "webstack",
    version,
    about = "Plan, apply and destroy a WebStack on AWS, with no cluster"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to standard error: `text`, or `json` (one object a line,
    /// for log collectors). The level comes from `WEBSTACK_LOG` (default `warn`; `info` for
    /// `webstack run`).
    #[arg(long, global = true, value_enum, env = "WEBSTACK_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The log level when `WEBSTACK_LOG` does not set one.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Run(_) => "info",
            _ => "warn",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a WebStack file; makes no AWS call.
    Validate(FileArgs),
    /// Show what apply would create, change and delete; makes no change.
    Plan(OutputArgs),
    /// Create or update the stack until it is Ready; prints its status.
    Apply {
        #[command(flatten)]
        args: OutputArgs,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Show the stack's status as AWS reports it; makes no change.
    Status(OutputArgs),
    /// Delete everything the stack owns (or, with deletionPolicy Retain, release it).
    Destroy {
        #[command(flatten)]
        args: OutputArgs,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Print the WebStack CustomResourceDefinition (YAML).
    Crd,
    /// Run the controller: reconcile every WebStack of the cluster (from the in-cluster
    /// configuration or KUBECONFIG) with AWS credentials from the default chain.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Seconds between reconciles of a Ready stack, to correct drift (plus up to 10% jitter).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    resync_seconds: u64,
    /// Seconds before a stack that is still converging, or failed, is tried again.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    retry_seconds: u64,
    /// Stacks reconciled at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "WEBSTACK_NAMESPACE")]
    namespace: Option<String>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (`none` to serve nothing).
    #[arg(long, default_value = "0.0.0.0:8080", env = "WEBSTACK_METRICS_ADDRESS")]
    metrics_address: String,
    /// AWS requests per second per account, region and service (bursts of five times as
    /// many); the process shares them between all stacks.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10000))]
    aws_requests_per_second: u32,
    /// A YAML file naming the IAM roles each namespace's stacks may assume
    /// (`namespaces: {team-a: [arn:aws:iam::111122223333:role/x]}`); without it, no stack may
    /// name `spec.assumeRole`.
    #[arg(long, env = "WEBSTACK_ROLE_MAP")]
    role_map: Option<PathBuf>,
    /// Shards the stacks fall into, each a Lease in `--lease-namespace` that one replica holds
    /// at a time: replicas share the stacks, no stack is reconciled by two at once, and the
    /// stacks of a replica that stops are taken over within `--lease-seconds`. 1 is plain
    /// leader election; 0 takes no lease (a single process reconciles every stack).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1024))]
    shards: u32,
    /// The namespace of the shard and member Leases: the operator's own.
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Seconds a Lease holds without renewal.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    lease_seconds: u64,
    /// This replica's name among the others (default: the pod name, else the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// The IngressClass of in-cluster workloads whose spec names none (default: the
    /// cluster's default class).
    #[arg(long, env = "WEBSTACK_INGRESS_CLASS", value_parser = ingress_class)]
    ingress_class: Option<String>,
}

/// An IngressClass name: a DNS subdomain.
fn ingress_class(s: &str) -> Result<String, String> {
    let valid = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not an IngressClass name (lower-case letters, digits, '-' and '.')"
        ))
    }
}

#[derive(clap::Args, Debug)]
struct FileArgs {
    /// The WebStack manifest (YAML or JSON). Repeat it to give the Kubernetes Secrets the
    /// stack reads (such as an external database's connection string); a file may hold
    /// several documents separated by `---`, exactly one of them a WebStack.
    #[arg(short = 'f', long = "file", required = true)]
    files: Vec<PathBuf>,
}

impl FileArgs {
    /// The file that holds the WebStack, for messages.
    fn stack_file(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(clap::Args, Debug)]
struct OutputArgs {
    #[command(flatten)]
    file: FileArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Print the AWS calls made, by operation, to standard error.
    #[arg(long)]
    show_calls: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Progress lines on standard error.
struct Progress;

impl Reporter for Progress {
    fn report(&self, e: Event) {
        let verb = match e.what {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Replaced => "replaced",
            EventKind::Deleted => "deleted",
            EventKind::Released => "released",
            EventKind::Waiting => "waiting",
            EventKind::Retrying => "retrying",
            EventKind::Failed => "failed",
        };
        let id = e.id.as_deref().unwrap_or("");
        let detail = if e.detail.is_empty() {
            String::new()
        } else {
            format!("  ({})", e.detail)
        };
        eprintln!("  {verb:<9}{} {}  {id}{detail}", e.kind, e.role);
    }
}

/// The region the AWS SDK takes from the environment, for a spec that names none: `validate`
/// then checks what `plan` would check.
fn default_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
}

/// The WebStack of the files, and the Secrets given with it.
fn read(args: &FileArgs) -> Result<(WebStack, Inputs), String> {
    let mut stacks: Vec<(String, WebStack)> = Vec::new();
    let mut inputs = Inputs::default();
    for file in &args.files {
        let path = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {path}: {e}"))?;
        for (i, document) in documents(&text).into_iter().enumerate() {
            let at = format!("{path} (document {})", i + 1);
            let value: serde_yaml::Value = match serde_yaml::from_str(&document) {
                Ok(serde_yaml::Value::Null) => continue,
                Ok(v) => v,
                // The WebStack parser says what is wrong, with the field.
                Err(_) => serde_yaml::Value::Null,
            };
            match value.get("kind").and_then(|k| k.as_str()) {
                Some("Secret") => {
                    // The parser's message could quote a value: only where is said.
                    let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_value(value)
                        .map_err(|_| {
                            format!(
                                "{at}: not a valid Secret (metadata.name, and data in base64 or \
                                 stringData, each a map of strings)"
                            )
                        })?;
                    inputs.add_secret(&secret);
                }
                Some("WebStack") | None => {
                    let stack = parse_manifest_in(&document, default_region().as_deref())
                        .map_err(|e| format!("{path}: {e}"))?;
                    stacks.push((path.clone(), stack));
                }
                Some(other) => {
                    return Err(format!(
                        "{at}: kind {other} is neither a WebStack nor a Secret it reads"
                    ))
                }
            }
        }
    }
    match stacks.len() {
        1 => Ok((stacks.remove(0).1, inputs)),
        0 => Err(format!("{}: no WebStack", args.stack_file())),
        _ => Err(format!(
            "{}: {} WebStacks; give one at a time",
            args.stack_file(),
            stacks.len()
        )),
    }
}

/// The documents of a YAML stream (`---` lines between them).
fn documents(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            out.push(String::new());
        } else if let Some(last) = out.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    out.retain(|d| !d.trim().is_empty());
    out
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("webstack: {message}");
    ExitCode::from(code)
}

fn print_calls(show: bool, counts: &CallCounts) {
    if !show {
        return;
    }
    eprintln!("AWS calls: {} in all", counts.total());
    for (service, op, n) in counts.operations() {
        eprintln!("  {service:<6} {op:<36} {n}");
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(f) => match read(&f) {
            Ok((s, _)) => {
                println!("{} is a valid WebStack ({})", f.stack_file(), s.stack_id());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e, 2),
        },
        Command::Plan(a) => with_stack(&a, |p| Box::pin(plan(p, a.output))).await,
        Command::Status(a) => with_stack(&a, |p| Box::pin(status(p, a.output))).await,
        Command::Apply { args, timeout } => {
            with_stack(&args, |p| {
                Box::pin(apply(p, args.output, Duration::from_secs(timeout)))
            })
            .await
        }
        Command::Destroy { args, timeout } => {
            with_stack_to_destroy(&args, |p| {
                Box::pin(destroy(p, args.output, Duration::from_secs(timeout)))
            })
            .await
        }
        Command::Run(args) => run_controller(args).await,
        Command::Crd => {
            print!("{}", webstack::api::crd_yaml());
            ExitCode::SUCCESS
        }
    }
}

type Job<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), (String, u8)>> + 'a>>;

/// Reads and validates the file (no AWS call on failure), connects, and runs `job`.
async fn with_stack<F>(args: &OutputArgs, job: F) -> ExitCode
where
    F: for<'a> FnOnce(&'a Prepared) -> Job<'a>,
{
    with_prepared(args, false, job).await
}

/// [`with_stack`] for deleting it: the Secrets it reads are not needed.
async fn with_stack_to_destroy<F>(args: &OutputArgs, job: F) -> ExitCode
where
    F: for<'a> FnOnce(&'a Prepared) -> Job<'a>,
{
    with_prepared(args, true, job).await
}

async fn with_prepared<F>(args: &OutputArgs, destroying: bool, job: F) -> ExitCode
where
    F: for<'a> FnOnce(&'a Prepared) -> Job<'a>,
{
    let (stack, inputs) = match read(&args.file) {
        Ok(s) => s,
        Err(e) => return fail(e, 2),
    };
    let connect = webstack::aws::Connect::default();
    let prepared = if destroying {
        stack::prepare_to_destroy(stack, &connect).await
    } else {
        stack::prepare_with(stack, &connect, inputs).await
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(e @ (StackError::Invalid(_) | StackError::MissingInput(_))) => {
            return fail(format!("{}: {e}", args.file.stack_file()), 2)
        }
        Err(e) => return fail(e, 1),
    };
    let result = job(&prepared).await;
    print_calls(args.show_calls, &prepared.scope.api.counts());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => fail(message, code),
    }
}

fn render_plan(plan: &Plan) -> String {
    if plan.is_empty() && plan.kept.is_empty() {
        return "No changes. AWS matches the spec.\n".to_owned();
    }
    let mut out = String::new();
    for c in &plan.changes {
        let sign = match c.action {
            webstack::engine::Action::Create => "+",
            webstack::engine::Action::Update => "~",
            webstack::engine::Action::Replace => "-/+",
            webstack::engine::Action::Refuse => "!",
            webstack::engine::Action::Delete => "-",
        };
        let id =
            c.id.as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default();
        out.push_str(&format!("{sign} {} {} {}{id}\n", c.action, c.kind, c.role));
        for (k, v) in &c.properties {
            out.push_str(&format!("      {k} = {v}\n"));
        }
        for f in &c.changes {
            out.push_str(&format!("      {}: {} -> {}\n", f.field, f.before, f.after));
        }
    }
    for k in &plan.kept {
        let id = k.id.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "  kept {} {} ({id}): holds data; no longer declared, deleted only with the stack\n",
            k.kind, k.role
        ));
    }
    use webstack::engine::Action::*;
    out.push_str(&format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete, {} refused.\n",
        plan.count(Create),
        plan.count(Update),
        plan.count(Replace),
        plan.count(Delete),
        plan.count(Refuse)
    ));
    out
}

fn emit_json(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = writeln!(stdout);
}

async fn plan(p: &Prepared, output: Output) -> Result<(), (String, u8)> {
    let plan = p.plan().await.map_err(|e| (e.to_string(), 1))?;
    match output {
        Output::Json => emit_json(&json!({ "stack": p.stack_id(), "changes": plan.changes })),
        Output::Text => print!("{}", render_plan(&plan)),
    }
    Ok(())
}

fn print_status(p: &Prepared, status: &webstack::api::WebStackStatus, output: Output) {
    match output {
        Output::Json => emit_json(&json!({ "stack": p.stack_id(), "status": status })),
        Output::Text => {
            let phase = status.phase.map(|ph| format!("{ph:?}")).unwrap_or_default();
            println!("WebStack {}: {phase}", p.stack_id());
            for c in &status.conditions {
                let msg = if c.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.message)
                };
                println!("  {:<14} {:<6} {}{msg}", c.type_, c.status, c.reason);
            }
            if let Some(net) = status.outputs.as_ref().and_then(|o| o.network.as_ref()) {
                println!("Outputs:");
                println!("  vpcId              {}", net.vpc_id);
                println!("  publicSubnetIds    {}", net.public_subnet_ids.join(", "));
                println!("  privateSubnetIds   {}", net.private_subnet_ids.join(", "));
                println!("  natPublicIps       {}", net.nat_public_ips.join(", "));
                for (role, id) in &net.security_group_ids {
                    println!("  securityGroup      {role} {id}");
                }
            }
            if let Some(db) = status.outputs.as_ref().and_then(|o| o.database.as_ref()) {
                println!("  database           {}:{}", db.endpoint, db.port);
                println!("  databaseSecretArn  {}", db.secret_arn);
            }
            if let Some(o) = status.outputs.as_ref() {
                for (name, t) in &o.tiers {
                    println!(
                        "  tier {name:<13} {} ({}), group {} at template version {}",
                        t.load_balancer_dns,
                        t.scheme,
                        t.auto_scaling_group,
                        t.template_version.unwrap_or_default()
                    );
                    if let Some(ip) = &t.public_ip {
                        println!("  tier {name:<13} public address {ip}");
                    }
                }
                for (name, uri) in &o.repositories {
                    println!("  repository {name:<7} {uri}");
                }
                for (name, bucket) in &o.buckets {
                    println!("  bucket {name:<11} {bucket}");
                }
                if let Some(cdn) = &o.cdn {
                    println!(
                        "  distribution       {} {} ({})",
                        cdn.distribution_id, cdn.domain_name, cdn.status
                    );
                }
                if let Some(url) = &o.url {
                    println!("  url                {url}");
                }
                if let Some(dns) = &o.dns {
                    println!("  hostedZone         {}", dns.zone_id);
                    if !dns.name_servers.is_empty() {
                        println!("  nameServers        {}", dns.name_servers.join(", "));
                    }
                }
                if !o.validation_records.is_empty() {
                    println!("Validation records to write in the zone of their names (the certificates wait for them):");
                    for r in &o.validation_records {
                        println!(
                            "  {} ({}): {} CNAME {}",
                            r.certificate, r.domain, r.name, r.value
                        );
                    }
                }
            }
            for p in &status.pending {
                println!(
                    "Pending: {} {} {} is {} since {}",
                    p.kind, p.role, p.id, p.state, p.since
                );
            }
            println!("Inventory: {} AWS resources", status.inventory.len());
            for i in &status.inventory {
                println!("  {:<26} {:<32} {}", i.kind, i.role, i.id);
            }
        }
    }
}

async fn apply(p: &Prepared, output: Output, timeout: Duration) -> Result<(), (String, u8)> {
    eprintln!("Applying {} in {}", p.stack_id(), p.scope.region);
    match p.apply_until_ready(timeout, &Progress).await {
        Ok(outcome) => {
            let status = p.status(&outcome, None);
            print_status(p, &status, output);
            match status.conditions.iter().find(|c| c.type_ == "Ready") {
                Some(ready) if ready.status != "True" => Err((
                    format!("not Ready ({}): {}", ready.reason, ready.message),
                    1,
                )),
                _ => Ok(()),
            }
        }
        Err(e) => Err((e.to_string(), 1)),
    }
}

async fn status(p: &Prepared, output: Output) -> Result<(), (String, u8)> {
    let observation = p.observe().await.map_err(|e| (e.to_string(), 1))?;
    let plan = p.engine.plan(&p.graph, &observation, &p.key());
    let mut outcome = webstack::engine::ApplyOutcome {
        resources: plan.matched.clone(),
        ..Default::default()
    };
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action != webstack::engine::Action::Delete)
    {
        outcome.failures.push(webstack::engine::NodeFailure {
            node: webstack::engine::NodeId::new(c.kind, c.role.clone()),
            error: format!("needs {}", c.action),
            code: "Pending".into(),
            retryable: true,
        });
    }
    print_status(p, &p.status(&outcome, None), output);
    Ok(())
}

async fn destroy(p: &Prepared, output: Output, timeout: Duration) -> Result<(), (String, u8)> {
    eprintln!("Destroying {} in {}", p.stack_id(), p.scope.region);
    let out = p
        .destroy_until_gone(timeout, &Progress)
        .await
        .map_err(|e| (e.to_string(), 1))?;
    if output == Output::Json {
        emit_json(&json!({
            "stack": p.stack_id(),
            "deleted": out.deleted.iter().map(|o| json!({"kind": o.kind, "id": o.id, "role": o.role})).collect::<Vec<_>>(),
            "released": out.released.iter().map(|o| json!({"kind": o.kind, "id": o.id, "role": o.role})).collect::<Vec<_>>(),
            "pending": out.pending.iter().map(|o| json!({"kind": o.kind, "id": o.id, "role": o.role})).collect::<Vec<_>>(),
            "failures": out.failures.iter().map(|f| json!({"kind": f.kind, "id": f.id, "role": f.role, "error": f.error})).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "Deleted {} and released {} AWS resources of {}.",
            out.deleted.len(),
            out.released.len(),
            p.stack_id()
        );
    }
    if out.is_complete() {
        Ok(())
    } else {
        let errors: Vec<String> = out
            .failures
            .iter()
            .map(|f| format!("{} {} ({}): {}", f.kind, f.role, f.id, f.error))
            .chain(
                out.pending
                    .iter()
                    .map(|o| format!("{} {} ({}): still deleting", o.kind, o.role, o.id)),
            )
            .collect();
        Err((format!("some resources remain: {}", errors.join("; ")), 1))
    }
}

async fn run_controller(args: RunArgs) -> ExitCode {
    let metrics_address = match args.metrics_address.as_str() {
        "none" | "" => None,
        a => match a.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                return fail(
                    format!("--metrics-address: {a} is not an address such as 0.0.0.0:8080"),
                    2,
                )
            }
        },
    };
    let roles = match &args.role_map {
        None => Default::default(),
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| webstack::roles::RoleMap::parse(&text));
            match parsed {
                Ok(map) => map,
                Err(e) => return fail(format!("--role-map {}: {e}", path.display()), 2),
            }
        }
    };
    let leases = if args.shards == 0 {
        None
    } else {
        let Some(namespace) = args.lease_namespace.filter(|n| !n.is_empty()) else {
            return fail(
                "--shards needs --lease-namespace (or POD_NAMESPACE): where the Leases are kept"
                    .to_string(),
                2,
            );
        };
        let identity = args
            .identity
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("webstack-{}", std::process::id()));
        Some(webstack::controller::leases::LeaseSettings {
            namespace,
            identity,
            shards: args.shards,
            duration: Duration::from_secs(args.lease_seconds),
        })
    };
    // The command line and the role map are checked before anything is reached.
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot reach the Kubernetes API: {e}"), 1),
    };
    let settings = webstack::controller::Settings {
        roles,
        resync: Duration::from_secs(args.resync_seconds),
        retry: Duration::from_secs(args.retry_seconds),
        concurrency: args.concurrency,
        namespace: args.namespace,
        metrics_address,
        leases,
        ingress_class: args.ingress_class,
        ..Default::default()
    };
    let rate = f64::from(args.aws_requests_per_second);
    let mut connect = webstack::aws::Connect::default();
    connect.rate_limit = Some(webstack::aws::client::RateLimit {
        burst: rate * 5.0,
        per_second: rate,
    });
    tracing::info!(
        resync = args.resync_seconds,
        concurrency = args.concurrency,
        "webstack controller: watching WebStacks"
    );
    match webstack::controller::run(client, settings, connect).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.to_string(), 1),
    }
}
