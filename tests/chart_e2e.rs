//! The Helm chart end to end: the real Helm v4 engine installs the chart into the test API
//! server, the operator runs exactly as the chart's Deployment would start it (its args, its
//! policy ConfigMap mounted file by file), a user applies the example with kubectl, a
//! `helm upgrade` of the policy takes effect without a restart, and `helm uninstall` leaves no
//! operator object behind (the CRDs stay, as Helm intends).
//!
//! No kubelet runs here, so the test plays its part: it starts the pod's process and refreshes
//! the mounted files from the ConfigMap the way kubelet does.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::real::DeleteOnDrop;
use common::{Cluster, condition, eventually, repo, require_tool};
use serde_json::Value;

const NAMESPACE: &str = "mmf-system";

fn python() -> Option<PathBuf> {
    let python = repo().join(".venv/bin/python");
    let works = Command::new(&python)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    assert!(
        !mmf_e2e::tools::in_ci(),
        "{} lacks helm-python-sdk: run `bash .ci/test`",
        python.display()
    );
    eprintln!("skipping: no helm-python-sdk in .venv (run `bash .ci/test` once)");
    None
}

fn helm(python: &Path, cluster: &Cluster, step: &str, extra: &[&str]) -> Value {
    let output = Command::new(python)
        .arg(repo().join("tests/helm_engine.py"))
        .args([
            step,
            &repo().join("charts/mmf-operator").display().to_string(),
            "--kubeconfig",
        ])
        .arg(&cluster.kubeconfig)
        .args(["--namespace", NAMESPACE])
        .args(extra)
        .env("HOME", cluster.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "helm {step} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Writes the policy ConfigMap's keys to the paths the chart's volume maps them to.
fn refresh_mounted_policy(cluster: &Cluster, dir: &Path) {
    let deployment = cluster
        .get_json(NAMESPACE, "deployment/mmf-operator")
        .unwrap();
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "policy")
        .unwrap()
        .clone();
    let name = volume["configMap"]["name"].as_str().unwrap();
    let config_map = cluster
        .get_json(NAMESPACE, &format!("configmap/{name}"))
        .unwrap();
    for item in volume["configMap"]["items"].as_array().unwrap() {
        let path = dir.join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = config_map["data"][item["key"].as_str().unwrap()]
            .as_str()
            .unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// The container args of the chart's Deployment, with the local directory and ports.
fn pod_args(cluster: &Cluster, config_dir: &Path, webhook_port: u16) -> Vec<String> {
    let deployment = cluster
        .get_json(NAMESPACE, "deployment/mmf-operator")
        .unwrap();
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .clone();
    args.iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .filter(|a| a != "run" && !a.starts_with("--probe-addr"))
        .map(|a| {
            if a.starts_with("--config-dir") {
                format!("--config-dir={}", config_dir.display())
            } else if a.starts_with("--webhook-addr") && a != "--webhook-addr=none" {
                format!("--webhook-addr=127.0.0.1:{webhook_port}")
            } else {
                a
            }
        })
        .collect()
}

#[test]
fn helm_install_apply_upgrade_policy_and_uninstall() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let Some(python) = python() else { return };
    let cluster = Cluster::start_empty();
    // On a real cluster the chart's webhook configuration would send kube-apiserver to the
    // webhook Service's ClusterIP, an address no test may dial: install with the webhook off
    // there (tests/real_rbac.rs and tests/real_cluster.rs prove the webhook by loopback URL).
    let real = cluster.server.is_none();
    let webhook_off = r#"{"webhook":{"enabled":false}}"#;
    let values: &[&str] = if real {
        &["--set-json", webhook_off]
    } else {
        &[]
    };
    let _cleanup = real.then(|| DeleteOnDrop {
        cluster: &cluster,
        objects: vec![format!("namespace/{NAMESPACE}")],
    });
    cluster.kubectl_ok(&["create", "namespace", NAMESPACE]);
    let release = helm(&python, &cluster, "install", values);
    assert_eq!(release["status"], "deployed", "{release}");
    for crd in [
        "mmfplugins.mmf.marty.dev",
        "mmfservices.mmf.marty.dev",
        "mmfpluginrevisions.mmf.marty.dev",
    ] {
        cluster.kubectl_ok(&["get", "crd", crd]);
    }

    // Play the pod: the chart's args, the mounted policy, the webhook Service routed to us.
    let config_dir = cluster.dir.path().join("policy");
    refresh_mounted_policy(&cluster, &config_dir);
    let webhook_port = common::free_port();
    if let Some(server) = cluster.server.as_ref() {
        server.map_service(
            NAMESPACE,
            "mmf-operator-webhook",
            443,
            std::net::SocketAddr::from(([127, 0, 0, 1], webhook_port)),
        );
    }
    let mut operator = cluster.operator_with(
        &pod_args(&cluster, &config_dir, webhook_port),
        &[("POD_NAMESPACE", NAMESPACE)],
    );
    let pid = operator.child.id();

    // The user's side.
    let namespace = cluster.namespace("payments", "production");
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &repo()
            .join("plugins/production_payment_service")
            .display()
            .to_string(),
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        &namespace,
        "--for=condition=Ready",
        "mmfservice/payment-service",
        "--timeout=60s",
    ]);
    let plugins = cluster.kubectl_ok(&["get", "mmfplugins", "-n", &namespace]);
    assert!(plugins.starts_with("NAME                 VERSION   VERIFIED   READY   AGE\nproduction-payment   1.0.0     True       True"), "{plugins}");

    if !real {
        chart_webhook_denies_an_unsigned_plugin(&cluster, &namespace);
    }

    // helm upgrade with a tighter memory ceiling: kubelet refreshes the files, the operator
    // reloads them without a restart and reports the service's 256Mi limit as a violation.
    helm(
        &python,
        &cluster,
        "upgrade",
        &[
            "--set-json",
            if real { webhook_off } else { "{}" },
            "--set-json",
            r#"{"policy":{"environments":{"production":{"plugins":{"security":{"sandboxing":{"resource_limits":{"memory_mb":128}}}}}}}}"#,
        ],
    );
    refresh_mounted_policy(&cluster, &config_dir);
    let enforced = eventually(Duration::from_secs(40), || {
        let service = cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .unwrap();
        condition(&service, "PolicyCompliant").is_some_and(|c| {
            c["status"] == "False"
                && c["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("spec.resources.limits.memory: 256Mi is above the 128Mi")
        })
    });
    assert!(
        enforced,
        "the upgraded policy never took effect:\n{}",
        operator.log_text()
    );
    assert_eq!(
        operator.child.try_wait().unwrap(),
        None,
        "the operator restarted"
    );
    assert_eq!(operator.child.id(), pid);

    // helm uninstall: the operator's objects go, the CRDs (and the user's objects) stay.
    assert!(
        operator.terminate(),
        "the operator did not stop cleanly on SIGTERM:\n{}",
        operator.log_text()
    );
    helm(&python, &cluster, "uninstall", &[]);
    for (namespace, object) in [
        (NAMESPACE, "deployment/mmf-operator"),
        (NAMESPACE, "serviceaccount/mmf-operator"),
        (NAMESPACE, "service/mmf-operator-webhook"),
        (NAMESPACE, "poddisruptionbudget/mmf-operator"),
        (NAMESPACE, "role/mmf-operator"),
        (NAMESPACE, "rolebinding/mmf-operator"),
        ("", "clusterrole/mmf-operator"),
        ("", "clusterrolebinding/mmf-operator"),
        ("", "validatingwebhookconfiguration/mmf-operator"),
    ] {
        let output = cluster.kubectl(&[
            "get",
            "-n",
            if namespace.is_empty() {
                "default"
            } else {
                namespace
            },
            object,
        ]);
        assert!(
            !output.status.success(),
            "{object} is still there after helm uninstall"
        );
    }
    let left = cluster.kubectl_ok(&[
        "get",
        "configmaps",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/instance=mmf-operator",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "chart ConfigMaps left behind");
    for crd in [
        "mmfplugins.mmf.marty.dev",
        "mmfservices.mmf.marty.dev",
        "mmfpluginrevisions.mmf.marty.dev",
    ] {
        cluster.kubectl_ok(&["get", "crd", crd]);
    }
}

/// The chart's webhook configuration, its caBundle kept by the operator, denies at apply time.
fn chart_webhook_denies_an_unsigned_plugin(cluster: &Cluster, namespace: &str) {
    let unsigned = cluster.dir.path().join("rogue.yaml");
    let text =
        std::fs::read_to_string(repo().join("plugins/production_payment_service/plugin.yaml"))
            .unwrap();
    let text = text[..text.find("  signature:").unwrap()]
        .replace("name: production-payment", "name: rogue");
    std::fs::write(&unsigned, text).unwrap();
    let denied = cluster.kubectl(&[
        "apply",
        "-n",
        namespace,
        "-f",
        &unsigned.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success(),
        "an unsigned plugin was admitted into production"
    );
    assert!(
        stderr.contains("admission webhook \"strict.validate.mmf.marty.dev\" denied the request"),
        "{stderr}"
    );
    assert!(
        stderr.contains("MmfPlugin/rogue (namespace payments"),
        "{stderr}"
    );
}
