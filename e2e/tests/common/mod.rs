//! Shared helpers for the e2e suite: locating kubectl / the Helm venv, running them against a
//! fresh [`TestApiServer`].
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

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

/// Prints a skip notice and returns true when kubectl is missing.
pub fn skip_without_kubectl(_test: &str) -> bool {
    kubectl_path().is_none() && !mmf_e2e::tools::require_tool("kubectl")
}

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// A test API server plus a kubeconfig and a private kubectl cache directory.
pub struct Env {
    pub server: TestApiServer,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Env {
        Self::with(TestApiServer::builder()).await
    }

    pub async fn with(b: mmf_e2e::Builder) -> Env {
        let server = b.start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(dir.path().join("kubeconfig"))
            .unwrap();
        Env { server, dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs kubectl with this server's kubeconfig; returns the raw output.
    pub async fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(kubectl_path().unwrap());
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
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

    /// Applies the Widget CRD fixture.
    pub async fn install_widget_crd(&self) {
        let crd = testdata("kubectl/crd.yaml");
        self.kubectl(&["apply", "-f", crd.to_str().unwrap()]).await;
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
    ok.then_some(candidate)
}
