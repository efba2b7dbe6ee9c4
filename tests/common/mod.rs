//! End-to-end harness: a cluster (the in-memory test API server, or a real one named by
//! `MMF_E2E_KUBECONFIG`), real `kubectl`, and the real `mmf` binary as a separate process.
#![allow(dead_code, clippy::unwrap_used)]

pub mod fleet;
pub mod real;
pub mod replicas;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use mmf_e2e::TestApiServer;
#[allow(unused_imports)]
pub use mmf_e2e::tools::{require_file, require_tool};
use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A cluster to test against, with a scratch directory.
pub struct Cluster {
    pub server: Option<TestApiServer>,
    /// Runs the test server (if any) and the tests' clients on threads of their own, so test
    /// bodies can block on kubectl and a client outlives one `block_on`.
    runtime: tokio::runtime::Runtime,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// The test API server with the CRDs installed, unless `MMF_E2E_KUBECONFIG` names a real
    /// cluster.
    pub fn start() -> Cluster {
        let cluster = Cluster::start_empty();
        cluster.kubectl_ok(&["apply", "-f", &repo().join("crds").display().to_string()]);
        cluster
    }

    /// Like [`Cluster::start`] without installing the CRDs (the Helm chart brings them).
    pub fn start_empty() -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        if let Ok(kubeconfig) = std::env::var("MMF_E2E_KUBECONFIG") {
            return Cluster {
                server: None,
                runtime,
                kubeconfig: PathBuf::from(kubeconfig),
                dir,
            };
        }
        let server = runtime.block_on(TestApiServer::start()).unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let cluster = Cluster {
            server: Some(server),
            runtime,
            kubeconfig,
            dir,
        };
        cluster.kubectl_ok(&["apply", "-f", &repo().join("crds").display().to_string()]);
        cluster
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's stderr otherwise.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `kubectl get -o json`, or None when it does not exist.
    pub fn get_json(&self, namespace: &str, resource: &str) -> Option<Value> {
        let output = self.kubectl(&["get", "-n", namespace, resource, "-o", "json"]);
        output
            .status
            .success()
            .then(|| serde_json::from_slice(&output.stdout).unwrap())
    }

    /// A fresh namespace (unique per test, so a real cluster can run the suite too).
    pub fn namespace(&self, prefix: &str, environment: &str) -> String {
        let name = format!("{prefix}-{}", std::process::id() % 100_000);
        self.kubectl_ok(&["create", "namespace", &name]);
        self.kubectl_ok(&[
            "label",
            "namespace",
            &name,
            &format!("mmf.marty.dev/environment={environment}"),
        ]);
        name
    }

    /// Copies the shipped payment example into the scratch dir (to edit and re-sign).
    pub fn payment_example(&self) -> PathBuf {
        let target = self.dir.path().join("payment");
        std::fs::create_dir_all(&target).unwrap();
        for file in ["plugin.yaml", "payment-service.yaml"] {
            std::fs::copy(
                repo().join("plugins/production_payment_service").join(file),
                target.join(file),
            )
            .unwrap();
        }
        target
    }

    /// Starts `mmf run` against this cluster with the shipped config.
    pub fn operator(&self, extra: &[&str]) -> Operator {
        self.operator_with(&operator_args(extra), &[])
    }

    /// [`Cluster::operator`] through its own listener named `client` (test server only; see
    /// [`Cluster::listener_kubeconfig`]).
    pub fn operator_as(&self, client: &str, extra: &[&str]) -> Operator {
        let kubeconfig = self.listener_kubeconfig(client);
        self.operator_at(&kubeconfig, &operator_args(extra), &[])
    }

    /// Starts `mmf run ARGS --probe-addr <free port>` with extra environment variables.
    pub fn operator_with(&self, args: &[String], env: &[(&str, &str)]) -> Operator {
        self.operator_at(&self.kubeconfig, args, env)
    }

    /// [`Cluster::operator_with`] through the kubeconfig at `kubeconfig` (e.g. one of
    /// [`Cluster::listener_kubeconfig`]).
    pub fn operator_at(
        &self,
        kubeconfig: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Operator {
        let probe_port = free_port();
        let log = self.dir.path().join(format!("operator-{probe_port}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_mmf"));
        command
            .arg("run")
            .args(args)
            .args(["--probe-addr", &format!("127.0.0.1:{probe_port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let operator = Operator {
            child,
            probe_port,
            log,
        };
        operator.wait_ready();
        operator
    }

    /// A kubeconfig for a listener of its own (test server only): its requests are logged as
    /// `client` and [`mmf_e2e::Faults::cut`] can cut them off alone.
    pub fn listener_kubeconfig(&self, client: &str) -> PathBuf {
        let server = self
            .server
            .as_ref()
            .expect("a listener of its own needs the test server");
        let url = server.listen_as(client).unwrap();
        let path = self.dir.path().join(format!("kubeconfig-{client}"));
        std::fs::write(&path, server.kubeconfig_yaml_for(&url)).unwrap();
        path
    }

    /// Runs `future` to completion on the cluster's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Runs `future` in the background on the cluster's runtime.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// A kube-rs client for this cluster, made on the cluster's runtime (use it through
    /// [`Cluster::block_on`] and [`Cluster::spawn`]).
    pub fn client(&self) -> kube::Client {
        let yaml = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        self.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            kube::Client::try_from(config).unwrap()
        })
    }

    /// Writes counted by the test server for `who` (None on a real cluster).
    pub fn writes_by(&self, who: &str) -> Option<u64> {
        self.server.as_ref().map(|s| s.stats().writes_by(who))
    }

    /// Writes to `resource` (`deployments`) counted for `who` (None on a real cluster).
    pub fn writes_to(&self, resource: &str, who: &str) -> Option<u64> {
        self.server
            .as_ref()
            .map(|s| s.stats().writes_to(resource, who))
    }

    /// Every User-Agent the test server has seen (None on a real cluster).
    pub fn user_agents(&self) -> Option<Vec<String>> {
        self.server.as_ref().map(|s| s.stats().user_agents())
    }
}

/// A running `mmf run` process, killed when dropped.
pub struct Operator {
    pub child: Child,
    pub probe_port: u16,
    pub log: PathBuf,
}

impl Operator {
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let output = Command::new("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                &format!("http://127.0.0.1:{}{path}", self.probe_port),
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_owned()))
    }

    fn wait_ready(&self) {
        let ready = eventually(Duration::from_secs(30), || {
            self.get("/readyz").is_some_and(|(code, _)| code == 200)
        });
        assert!(
            ready,
            "operator never became ready; log:\n{}",
            self.log_text()
        );
    }

    /// The value of a metric line (first match), if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        body.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no lease release, like a crashed pod.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `mmf run` arguments: the shipped config, the `default` namespace, then `extra`.
pub fn operator_args(extra: &[&str]) -> Vec<String> {
    operator_args_in("default", extra)
}

/// [`operator_args`] with the operator's own namespace (its Lease's) `namespace`.
pub fn operator_args_in(namespace: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--config-dir".into(),
        repo().join("config").display().to_string(),
        "--namespace".into(),
        namespace.into(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The condition of `type_` in an object's status.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub fn condition_status(object: &Value, type_: &str) -> String {
    condition(object, type_)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// Signs a manifest with the demo key, as a user would after an edit.
pub fn sign(path: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .args(["sign", "--key"])
        .arg(repo().join("plugins/production_payment_service/demo-signing-key.pem"))
        .args(["--key-id", "mmf-demo-2026", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}
