//! The chart's RBAC, enforced by a real kube-apiserver: the operator runs as the chart's
//! ServiceAccount (a TokenRequest token), started with the chart's own arguments, and the
//! example becomes Ready through its webhook in production. Then each rule of the chart's
//! ClusterRole and Role is removed in turn, and something must fail: least privilege, proved.
//!
//! The chart's webhook configuration is applied with its `clientConfig.service` rewritten to a
//! loopback URL (as envtest does): the real API server must never dial a ClusterIP here.
#![allow(clippy::unwrap_used)]

mod chart_common;
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chart_common::{Rendered, Values, args, helm_python, render_in};
use common::real::{DeleteOnDrop, real_cluster};
use common::{Cluster, Operator, condition_status, free_port, repo};
use serde_json::{Value, json};

const RELEASE: &str = "mmf-operator";

/// The chart's RBAC objects for a release in `namespace`; the cluster-scoped ones renamed so
/// they cannot collide with another install on the shared cluster.
fn rbac(rendered: &Rendered, namespace: &str, unique: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    for kind in [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ] {
        let mut object = rendered.get(kind, RELEASE).clone();
        if kind.starts_with("Cluster") {
            object["metadata"]["name"] = json!(unique);
        }
        if kind == "ClusterRoleBinding" {
            object["roleRef"]["name"] = json!(unique);
        }
        if kind.ends_with("Binding") {
            assert_eq!(object["subjects"][0]["namespace"], namespace);
        }
        objects.push(object);
    }
    objects
}

/// The chart's ValidatingWebhookConfiguration, pointed at the operator on loopback.
fn loopback_webhooks(rendered: &Rendered, port: u16) -> Value {
    let mut configuration = rendered
        .get("ValidatingWebhookConfiguration", RELEASE)
        .clone();
    for webhook in configuration["webhooks"].as_array_mut().unwrap() {
        let client = &mut webhook["clientConfig"];
        assert!(client["service"].is_object(), "{client}");
        *client = json!({"url": format!("https://127.0.0.1:{port}/validate")});
    }
    configuration
}

fn apply(cluster: &Cluster, object: &Value) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    cluster.apply_text(namespace, &object.to_string());
}

/// What one run saw: Ok when the example became Ready and the operator met no RBAC denial.
fn example_works(cluster: &Cluster, operator: &Operator, namespace: &str) -> Result<(), String> {
    let dir = repo().join("plugins/production_payment_service");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut applied = false;
    let mut changed = false;
    let mut last = String::new();
    while Instant::now() < deadline {
        let log = operator.log_text();
        // An RBAC denial names the user ("... is forbidden: User \"system:serviceaccount:..."),
        // unlike other 403s such as a terminating namespace refusing new objects.
        if let Some(line) = log.lines().find(|l| l.contains("forbidden: User")) {
            return Err(format!("the operator was refused: {line}"));
        }
        if !applied {
            let out =
                cluster.kubectl(&["apply", "-n", namespace, "-f", &dir.display().to_string()]);
            applied = out.status.success();
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        } else if let Some(service) = cluster.get_json(namespace, "mmfservice/payment-service") {
            let ready = condition_status(&service, "Ready") == "True";
            let observed = service["status"]["observedGeneration"].as_i64();
            if !changed && ready {
                // Then a configuration change, which rolls the pods and says so in an event:
                // what `kubectl describe` shows (the events rule is needed for it).
                let out = cluster.kubectl(&[
                    "patch",
                    "-n",
                    namespace,
                    "mmfservice/payment-service",
                    "--type",
                    "json",
                    "-p",
                    r#"[{"op":"replace","path":"/spec/plugins/0/config/currency","value":"USD"}]"#,
                ]);
                changed = out.status.success();
                last = String::from_utf8_lossy(&out.stderr).into_owned();
            } else if changed {
                let events = operator_events(cluster, namespace);
                if ready && observed == Some(2) && events > 0 {
                    return Ok(());
                }
                last = format!(
                    "after the config change, Ready {ready}, observedGeneration {observed:?}, \
                     {events} event(s) from mmf-operator: {}",
                    service["status"]
                );
            } else {
                last = format!("MmfService not Ready: {}", service["status"]);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("not done after 40 s: {last}"))
}

/// Events in `namespace` reported by the operator (events.k8s.io, as its Recorder writes them).
fn operator_events(cluster: &Cluster, namespace: &str) -> usize {
    cluster
        .get_json(namespace, "events.events.k8s.io")
        .and_then(|list| {
            list["items"].as_array().map(|items| {
                items
                    .iter()
                    .filter(|e| e["reportingController"] == "mmf-operator")
                    .count()
            })
        })
        .unwrap_or(0)
}

/// Starts `mmf run` as the ServiceAccount, with the chart's arguments (local paths and ports).
fn start_operator(
    cluster: &Cluster,
    kubeconfig: &std::path::Path,
    chart_args: &[String],
    webhook_port: u16,
    namespace: &str,
) -> Operator {
    let probe_port = free_port();
    let log = cluster
        .dir
        .path()
        .join(format!("operator-{probe_port}.log"));
    let args: Vec<String> = chart_args
        .iter()
        .filter(|a| *a != "run" && !a.starts_with("--probe-addr"))
        .map(|a| {
            if a.starts_with("--config-dir") {
                format!("--config-dir={}", repo().join("config").display())
            } else if a.starts_with("--webhook-addr") {
                format!("--webhook-addr=127.0.0.1:{webhook_port}")
            } else {
                a.clone()
            }
        })
        .collect();
    let child = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .arg("run")
        .args(&args)
        .args(["--probe-addr", &format!("127.0.0.1:{probe_port}")])
        // The test points the chart's configuration at loopback: the certificate must say so.
        .args(["--webhook-cert-host", "127.0.0.1"])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", namespace)
        .env("RUST_LOG", "info,kube=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Operator {
        child,
        probe_port,
        log,
    }
}

/// Clears what an earlier run created, so every `create` rule is exercised again.
fn reset(cluster: &Cluster, namespace: &str) {
    for object in ["lease/mmf-operator", "secret/mmf-operator-webhook-tls"] {
        cluster.kubectl_ok(&["delete", "-n", namespace, object, "--ignore-not-found"]);
    }
}

#[test]
fn the_operator_works_as_the_charts_service_account_and_needs_every_rule() {
    let Some(python) = helm_python("real_rbac") else {
        return;
    };
    let Some(cluster) = real_cluster("real_rbac") else {
        return;
    };
    let namespace = cluster.namespace("rbac-op", "development");
    let unique = format!("mmf-operator-rbac-{}", std::process::id());
    let _cleanup = DeleteOnDrop {
        cluster: &cluster,
        objects: vec![
            format!("clusterrole/{unique}"),
            format!("clusterrolebinding/{unique}"),
            format!("validatingwebhookconfiguration/{RELEASE}"),
        ],
    };
    let rendered = render_in(&python, &Values::defaults(), &namespace).unwrap();
    let objects = rbac(&rendered, &namespace, &unique);
    for object in &objects {
        apply(&cluster, object);
    }
    let webhook_port = free_port();
    apply(&cluster, &loopback_webhooks(&rendered, webhook_port));
    let token = cluster.kubectl_ok(&[
        "create",
        "token",
        RELEASE,
        "-n",
        &namespace,
        "--duration=2h",
    ]);
    let kubeconfig = cluster.token_kubeconfig(token.trim(), "chart-service-account");
    let whoami = cluster.kubectl_ok(&[
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        whoami,
        format!("system:serviceaccount:{namespace}:{RELEASE}")
    );
    let chart_args = args(&rendered, RELEASE);

    // With the chart's roles as they are, everything works.
    let app = cluster.namespace("rbac-app", "production");
    let operator = start_operator(&cluster, &kubeconfig, &chart_args, webhook_port, &namespace);
    let outcome = example_works(&cluster, &operator, &app);
    drop(operator);
    assert_eq!(outcome, Ok(()), "with the chart's RBAC");

    // Each rule removed in turn: something fails.
    let mut unneeded = Vec::new();
    for kind in ["ClusterRole", "Role"] {
        let index = objects.iter().position(|o| o["kind"] == kind).unwrap();
        let role = &objects[index];
        let rules = role["rules"].as_array().unwrap();
        for skip in 0..rules.len() {
            let mut reduced = role.clone();
            reduced["rules"] = json!(
                rules
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, r)| r.clone())
                    .collect::<Vec<_>>()
            );
            apply(&cluster, &reduced);
            reset(&cluster, &namespace);
            apply(&cluster, &loopback_webhooks(&rendered, webhook_port));
            let app = cluster.namespace(
                &format!("rbac-{}-{skip}", kind.to_lowercase()),
                "production",
            );
            let operator =
                start_operator(&cluster, &kubeconfig, &chart_args, webhook_port, &namespace);
            let outcome = example_works(&cluster, &operator, &app);
            drop(operator);
            println!("{kind} without {}: {outcome:?}", rules[skip]);
            if outcome.is_ok() {
                unneeded.push(format!("{kind} rule {}", rules[skip]));
            }
            cluster.kubectl(&["delete", "namespace", &app, "--wait=false"]);
        }
        apply(&cluster, role);
    }
    assert!(
        unneeded.is_empty(),
        "rules nothing needed (remove them, or list them as deliberate): {unneeded:#?}"
    );
}
