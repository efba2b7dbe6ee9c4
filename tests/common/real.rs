//! Helpers of the suites that need a real control plane (`tests/real_*.rs`): they run only
//! against the cluster named by `MMF_E2E_KUBECONFIG` (in `.ci/test`, the real kube-apiserver
//! started by `real-cluster run`), because the in-memory server has no controllers, no RBAC
//! and no PodSecurity admission to prove anything with.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{Cluster, eventually};

/// The real cluster, or None (printing why) outside CI when `MMF_E2E_KUBECONFIG` is unset. Under
/// `CI` a missing cluster fails the test: `.ci/test` always provides one.
pub fn real_cluster(test: &str) -> Option<Cluster> {
    if std::env::var_os("MMF_E2E_KUBECONFIG").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs a real control plane: run it through `real-cluster run --dir DIR -- cargo nextest run --test ...` (see README)"
        );
        eprintln!(
            "SKIPPED {test}: needs a real control plane (set MMF_E2E_KUBECONFIG, see README)"
        );
        return None;
    }
    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        kubectl.is_ok_and(|o| o.status.success()),
        "{test} needs kubectl on PATH (Debian: apt-get install kubectl, or the Kubernetes release binary)"
    );
    Some(Cluster::start())
}

impl Cluster {
    /// `kubectl ARGS` with `input` on stdin; returns (success, stdout, stderr).
    pub fn kubectl_input(&self, args: &[&str], input: &str) -> (bool, String, String) {
        self.kubectl_input_as(&self.kubeconfig, args, input)
    }

    /// Like [`Cluster::kubectl_input`] with another kubeconfig (another user).
    pub fn kubectl_input_as(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        input: &str,
    ) -> (bool, String, String) {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Applies JSON/YAML objects from a string, failing the test on error.
    pub fn apply_text(&self, namespace: &str, text: &str) {
        let (ok, _, stderr) = self.kubectl_input(&["apply", "-n", namespace, "-f", "-"], text);
        assert!(ok, "kubectl apply failed: {stderr}");
    }

    /// `kubectl get -o json` of a list (`.items`), by label selector.
    pub fn list(&self, namespace: &str, resource: &str, selector: &str) -> Vec<Value> {
        let text = self.kubectl_ok(&[
            "get", "-n", namespace, resource, "-l", selector, "-o", "json",
        ]);
        let list: Value = serde_json::from_str(&text).unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `kubectl get` says the object is gone.
    pub fn wait_gone(&self, namespace: &str, object: &str, timeout: Duration) -> bool {
        eventually(timeout, || self.get_json(namespace, object).is_none())
    }

    /// A kubeconfig for the same cluster that authenticates with `token` (a ServiceAccount's).
    pub fn token_kubeconfig(&self, token: &str, name: &str) -> PathBuf {
        self.token_kubeconfig_at(token, name, None)
    }

    /// [`Cluster::token_kubeconfig`] reaching the API server at `server` (a proxy to it) when
    /// given.
    pub fn token_kubeconfig_at(&self, token: &str, name: &str, server: Option<&str>) -> PathBuf {
        let admin: Value = serde_json::from_str(
            &self.kubectl_ok(&["config", "view", "--raw", "--minify", "-o", "json"]),
        )
        .unwrap();
        let mut cluster = admin["clusters"][0]["cluster"].clone();
        if let Some(server) = server {
            cluster["server"] = Value::String(server.to_owned());
        }
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "real", "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "real", "user": name}}],
            "current-context": name,
        });
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        path
    }
}

/// Deletes a cluster-scoped object when dropped (webhook configurations, RBAC), so one test's
/// leftovers never judge the next test's requests on the shared cluster.
pub struct DeleteOnDrop<'a> {
    pub cluster: &'a Cluster,
    pub objects: Vec<String>,
}

impl Drop for DeleteOnDrop<'_> {
    fn drop(&mut self) {
        for object in &self.objects {
            let _ = self
                .cluster
                .kubectl(&["delete", object, "--ignore-not-found", "--wait=false"]);
        }
    }
}
