//! Shared helpers for the e2e suite: locating kubectl / the Helm venv, running them against a
//! fresh [`TestApiServer`] or, when `MMF_E2E_KUBECONFIG` is set, the real cluster it names.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use mmf_e2e::TestApiServer;

/// `$KUBECTL`, else `kubectl` on PATH, else `/usr/bin/kubectl`.
pub fn kubectl_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KUBECTL") {
        return Some(PathBuf::from(p));
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("kubectl");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let p = PathBuf::from("/usr/bin/kubectl");
    p.is_file().then_some(p)
}

/// Prints a skip notice and returns true when kubectl is missing; under `CI` it fails instead
/// (one rule for every tool: `mmf_e2e::tools`).
pub fn skip_without_kubectl(_test: &str) -> bool {
    kubectl_path().is_none() && !mmf_e2e::tools::require_tool("kubectl")
}

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// The real cluster named by `MMF_E2E_KUBECONFIG`, if any.
pub fn real_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("MMF_E2E_KUBECONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A namespace name unique to this process and call.
fn unique_namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An API server (the real cluster of `MMF_E2E_KUBECONFIG`, else a fresh in-memory
/// [`TestApiServer`]), a kubeconfig, a private kubectl cache directory and a namespace of this
/// test's own, which kubectl and [`Env::client`] use by default. On a real cluster, dropping the
/// `Env` deletes the namespace and every CRD installed through [`Env::install_crd`].
pub struct Env {
    /// `None` on a real cluster.
    pub server: Option<TestApiServer>,
    pub dir: tempfile::TempDir,
    pub namespace: String,
    crds: Mutex<Vec<String>>,
}

impl Env {
    /// The real cluster when `MMF_E2E_KUBECONFIG` is set, else a fresh in-memory server.
    pub async fn start() -> Env {
        match real_kubeconfig() {
            Some(path) => {
                let dir = tempfile::tempdir().unwrap();
                std::fs::copy(&path, dir.path().join("kubeconfig")).unwrap_or_else(|e| {
                    panic!("cannot read MMF_E2E_KUBECONFIG {}: {e}", path.display())
                });
                Self::finish(None, dir).await
            }
            None => Self::with(TestApiServer::builder()).await,
        }
    }

    /// Always a fresh in-memory server (for tests that need its stats, faults or simulators).
    pub async fn memory() -> Env {
        Self::with(TestApiServer::builder()).await
    }

    /// Always a fresh in-memory server built from `b`.
    pub async fn with(b: mmf_e2e::Builder) -> Env {
        let server = b.start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(dir.path().join("kubeconfig"))
            .unwrap();
        Self::finish(Some(server), dir).await
    }

    async fn finish(server: Option<TestApiServer>, dir: tempfile::TempDir) -> Env {
        let env = Env {
            server,
            dir,
            namespace: unique_namespace(),
            crds: Mutex::new(Vec::new()),
        };
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(env.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = Api::<Namespace>::all(env.client().await);
        // A control plane that has just started may refuse requests for a few seconds.
        let mut last = None;
        for _ in 0..100 {
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => return env,
                Err(kube::Error::Api(e)) if e.code == 409 => return env,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("creating namespace {}: {last:?}", env.namespace);
    }

    pub fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// The in-memory server; panics (naming the test's need) on a real cluster.
    pub fn memory_server(&self) -> &TestApiServer {
        self.server
            .as_ref()
            .expect("this test needs the in-memory server (stats/faults/simulators)")
    }

    /// A kube client whose default namespace is this test's namespace.
    pub async fn client(&self) -> kube::Client {
        let kc = Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        config.default_namespace = self.namespace.clone();
        kube::Client::try_from(config).unwrap()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A kubectl command for this server, defaulting to this test's namespace.
    pub fn kubectl_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(kubectl_path().unwrap());
        cmd.arg(format!("--namespace={}", self.namespace))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl with this server's kubeconfig; returns the raw output.
    pub async fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = self.kubectl_command(args).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_stdin(args, None).await
    }

    pub async fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_output(args, stdin).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub async fn kubectl_fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_output(args, stdin).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// Server-side applies the CRD in `testdata/<rel>` and waits until it is Established; on a
    /// real cluster the CRD is deleted when this `Env` is dropped.
    pub async fn install_crd(&self, rel: &str) {
        let yaml = std::fs::read_to_string(testdata(rel)).unwrap();
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&yaml).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        self.own_crd(&name);
        let api = Api::<CustomResourceDefinition>::all(self.client().await);
        api.patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        for _ in 0..600 {
            let got = api.get(&name).await.unwrap();
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("CRD {name} never became Established");
    }

    /// Applies the Widget CRD fixture.
    pub async fn install_widget_crd(&self) {
        self.install_crd("kubectl/crd.yaml").await;
    }

    /// Deletes the cluster-scoped CRD `name` when this `Env` is dropped (real cluster only).
    pub fn own_crd(&self, name: &str) {
        let mut crds = self.crds.lock().unwrap();
        if !crds.iter().any(|c| c == name) {
            crds.push(name.to_string());
        }
    }
}

impl Drop for Env {
    /// On a real cluster: deletes the namespace (without waiting) and the CRDs this test
    /// installed (waiting, so the next test can install them afresh).
    fn drop(&mut self) {
        if self.server.is_some() {
            return;
        }
        let Some(kubectl) = kubectl_path() else {
            eprintln!("cannot clean up namespace {}: no kubectl", self.namespace);
            return;
        };
        let run = |args: &[&str]| {
            let out = std::process::Command::new(&kubectl)
                .args(args)
                .env("KUBECONFIG", self.kubeconfig())
                .env("KUBECACHEDIR", self.dir.path().join("cache"))
                .env("HOME", self.dir.path())
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!(
                    "cleanup kubectl {args:?} failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => eprintln!("cleanup kubectl {args:?}: {e}"),
            }
        };
        run(&[
            "delete",
            "namespace",
            &self.namespace,
            "--ignore-not-found",
            "--wait=false",
        ]);
        let crds = std::mem::take(&mut *self.crds.lock().unwrap());
        for crd in crds {
            run(&[
                "delete",
                "crd",
                &crd,
                "--ignore-not-found",
                "--timeout=120s",
            ]);
        }
    }
}

/// Python with `helm_python` importable: `$MMF_E2E_PYTHON`, else `<repo>/.venv/bin/python`.
pub fn helm_python() -> Option<PathBuf> {
    let candidate = match std::env::var("MMF_E2E_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    };
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import helm_python"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set: no python with helm_python at {} (set MMF_E2E_PYTHON or pip install -r e2e/requirements.txt into <repo>/.venv)",
            candidate.display()
        );
    }
    ok.then_some(candidate)
}
