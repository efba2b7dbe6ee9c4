//! The operator from the image (`scripts/build-image.sh`) against the real control plane: run by
//! `buildah run` (chroot isolation shares the host's network, so 127.0.0.1 is the host's), as
//! the image's UID 65532, it reconciles the shipped example until the MmfService is Ready.
#![allow(clippy::unwrap_used)]

mod common;
mod image_common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::real::real_cluster;
use common::{condition_status, eventually, free_port, repo, require_tool};
use image_common::Image;

/// The `buildah run` process; SIGTERM (forwarded to mmf) and wait when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let stopped = eventually(Duration::from_secs(15), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn probe(port: u16, path: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_operator_run_from_the_image_makes_the_example_ready_on_the_real_control_plane() {
    let Some(cluster) = real_cluster("the_operator_run_from_the_image") else {
        return;
    };
    if !require_tool("buildah") || !require_tool("curl") {
        return;
    }
    let image = Image::under_test();
    let container = image.container();
    let namespace = cluster.namespace("image", "development");

    // A self-contained kubeconfig the image's user (65532) can read.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig = shared.path().join("kubeconfig");
    let flat = cluster.kubectl_ok(&["config", "view", "--raw", "--flatten", "--minify"]);
    std::fs::write(&kubeconfig, flat).unwrap();
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config_dir = repo().join("config").display().to_string();
    let shared_dir = shared.path().display().to_string();
    let port = free_port();
    let log_path = shared.path().join("operator.log");
    let mut run = container.run_command(
        &[
            "--volume",
            &format!("{shared_dir}:{shared_dir}:ro"),
            "--volume",
            &format!("{config_dir}:/etc/mmf/config:ro"),
            "--env",
            &format!("KUBECONFIG={}", kubeconfig.display()),
            "--env",
            "RUST_LOG=info,kube=warn",
        ],
        &[
            "/usr/local/bin/mmf",
            "run",
            "--config-dir",
            "/etc/mmf/config",
            "--namespace",
            "default",
            "--probe-addr",
            &format!("127.0.0.1:{port}"),
            "--webhook-addr",
            "none",
            "--leader-election=false",
        ],
    );
    run.stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    let _operator = Running(run.spawn().unwrap());
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let ready = eventually(Duration::from_secs(60), || probe(port, "/readyz").is_some());
    assert!(
        ready,
        "the operator in the image never became ready; log:\n{}",
        log()
    );
    let example = repo().join("plugins/production_payment_service");
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &example.display().to_string(),
    ]);
    let settled = eventually(Duration::from_secs(90), || {
        cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .is_some_and(|service| condition_status(&service, "Ready") == "True")
    });
    assert!(
        settled,
        "the example never became Ready; operator log:\n{}",
        log()
    );
    // It was this operator: its metrics count the reconciliations.
    let metrics = probe(port, "/metrics").unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mmf_reconciles_total{controller=\"mmfservice\"}")),
        "{metrics}"
    );
    cluster.kubectl_ok(&["delete", "namespace", &namespace, "--wait=false"]);
}
