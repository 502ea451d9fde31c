//! A real kube-apiserver and etcd on loopback, built from Go modules by
//! `tests/harness/envtest.sh` (see `cargo xtask setup`), one per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

/// The newest Kubernetes release the tests run against, and the oldest the client models.
pub const NEWEST: &str = "v1.37.2";
pub const OLDEST: &str = "v1.33.13";

const TOKEN: &str = "webstack-test-admin-token";

fn cache() -> PathBuf {
    std::env::var_os("WEBSTACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/webstack")
        })
}

/// The folder with `kube-apiserver` and `etcd` of a version: `KUBEBUILDER_ASSETS` when set
/// (for the newest), else the cache that `cargo xtask setup` fills.
pub fn assets(version: &str) -> PathBuf {
    if version == NEWEST {
        if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS") {
            return PathBuf::from(dir);
        }
    }
    let dir = cache().join("envtest").join(version);
    assert!(
        dir.join("kube-apiserver").exists() && dir.join("etcd").exists(),
        "no API server {version} in {}: run `cargo xtask setup` (or set KUBEBUILDER_ASSETS)",
        dir.display()
    );
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// etcd and kube-apiserver on loopback, stopped when dropped.
pub struct ApiServer {
    etcd: Child,
    apiserver: Child,
    dir: PathBuf,
    pub version: String,
    pub port: u16,
}

impl ApiServer {
    pub fn start(version: &str) -> ApiServer {
        ApiServer::start_with(version, &[])
    }

    /// An API server with more flags, such as `--runtime-config=autoscaling/v2=false` for a
    /// cluster that does not serve an API.
    pub fn start_with(version: &str, flags: &[&str]) -> ApiServer {
        let bin = assets(version);
        let dir = std::env::temp_dir().join(format!(
            "webstack-envtest-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        let (client_port, peer_port, port) = (free_port(), free_port(), free_port());
        let etcd = Command::new(bin.join("etcd"))
            .args([
                "--data-dir",
                dir.join("etcd").to_str().unwrap(),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client_port}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client_port}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let key = dir.join("sa.key");
        let public = dir.join("sa.pub");
        let ok = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success());
        let ok = Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success());
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{TOKEN},admin,admin,\"system:masters\"\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("apiserver.log")).unwrap();
        let apiserver = Command::new(bin.join("kube-apiserver"))
            .args([
                &format!("--etcd-servers=http://127.0.0.1:{client_port}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                &format!("--secure-port={port}"),
                &format!("--cert-dir={}", dir.join("certs").display()),
                &format!("--token-auth-file={}", dir.join("tokens.csv").display()),
                "--authorization-mode=RBAC",
                &format!("--service-account-key-file={}", public.display()),
                &format!("--service-account-signing-key-file={}", key.display()),
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",
                "--disable-admission-plugins=ServiceAccount",
            ])
            .args(flags)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start kube-apiserver");
        let server = ApiServer {
            etcd,
            apiserver,
            dir,
            version: version.to_owned(),
            port,
        };
        server.write_kubeconfig();
        server.wait_ready();
        server
    }

    fn write_kubeconfig(&self) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\ncurrent-context: test\n",
            self.port
        );
        std::fs::write(self.kubeconfig(), text).unwrap();
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            let out = Command::new(kubectl())
                .arg("--kubeconfig")
                .arg(self.kubeconfig())
                .args(["get", "--raw", "/readyz"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let log = std::fs::read_to_string(self.dir.join("apiserver.log")).unwrap_or_default();
        panic!(
            "kube-apiserver {} did not become ready:\n{}",
            self.version,
            &log[log.len().saturating_sub(3000)..]
        );
    }

    pub async fn client(&self) -> Client {
        let config = Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// kubectl: `WEBSTACK_KUBECTL`, or `kubectl` on the PATH.
pub fn kubectl() -> PathBuf {
    std::env::var_os("WEBSTACK_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// The repository's CRD file.
pub fn crd_file() -> PathBuf {
    crate::repo_root().join("crds/webstack.yaml")
}

/// Installs a CRD (YAML) and waits until it is served.
pub fn install_crd(server: &ApiServer, yaml: &str) {
    let out = server.kubectl(&["apply", "--server-side", "-f", "-"], Some(yaml));
    assert!(
        out.status.success(),
        "installing the CRD: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `kubectl wait` fails at once, instead of waiting, on a CRD that has no conditions yet:
    // ask again until the server has written them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = server.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/webstacks.webstack.io",
            ],
            None,
        );
        if out.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            stderr.contains("status.conditions") && std::time::Instant::now() < deadline,
            "the CRD was not established: {stderr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The CRD with every CEL rule removed, as a cluster that does not enforce them serves it.
pub fn crd_without_cel() -> String {
    let text = std::fs::read_to_string(crd_file()).unwrap();
    let mut value: serde_json::Value = serde_yaml_value(&text);
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("x-kubernetes-validations");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    serde_json::to_string(&value).unwrap()
}

fn serde_yaml_value(text: &str) -> serde_json::Value {
    let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    serde_json::to_value(v).unwrap()
}

/// Whether a path names a file of this repository's invalid corpus.
pub fn is_yaml(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some("yaml")
}
