//! Drift repair: what the operator owns is put back after a restart and while it runs, and
//! nothing is written when nothing drifted. The real `mmf` binary against the test API
//! server (or a real cluster via `MMF_E2E_KUBECONFIG`, where only the state is asserted).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, Operator, eventually, require_tool};
use serde_json::Value;

const OPERATOR: &[&str] = &["--webhook-addr", "none", "--leader-election=false"];
const MANAGER: &str = "mmf-operator";

fn replicas(cluster: &Cluster, namespace: &str) -> Value {
    cluster
        .get_json(namespace, "deployment/payment-service")
        .unwrap()["spec"]["replicas"]
        .clone()
}

fn mmf_yaml(cluster: &Cluster, namespace: &str) -> String {
    cluster
        .get_json(namespace, "configmap/payment-service-mmf")
        .unwrap()["data"]["mmf.yaml"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Child writes by the operator, per kind (None on a real cluster).
fn child_writes(cluster: &Cluster) -> Option<[u64; 3]> {
    Some([
        cluster.writes_to("deployments", MANAGER)?,
        cluster.writes_to("configmaps", MANAGER)?,
        cluster.writes_to("services", MANAGER)?,
    ])
}

fn delta(after: Option<[u64; 3]>, before: Option<[u64; 3]>) -> Option<[u64; 3]> {
    let (after, before) = (after?, before?);
    Some([0, 1, 2].map(|i| after[i] - before[i]))
}

/// Applies the payment example (its plugin and service) in `namespace`.
fn apply_example(cluster: &Cluster, namespace: &str) {
    let example = cluster.payment_example();
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        namespace,
        "-f",
        &example.display().to_string(),
    ]);
}

/// Applies the payment example and waits until its MmfService is Ready.
fn apply_example_and_wait_ready(cluster: &Cluster, namespace: &str) {
    apply_example(cluster, namespace);
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        "mmfservice/payment-service",
        "--timeout=60s",
    ]);
}

/// Starts the operator and waits until it has reconciled the service at least once and has
/// nothing queued.
fn start_and_settle(cluster: &Cluster) -> Operator {
    let operator = cluster.operator(OPERATOR);
    let settled = eventually(Duration::from_secs(20), || {
        operator
            .metric("mmf_reconciles_total{controller=\"mmfservice\"}")
            .is_some_and(|n| n >= 1.0)
            && operator.metric("mmf_queue_depth") == Some(0.0)
    });
    assert!(settled, "never reconciled:\n{}", operator.log_text());
    operator
}

#[test]
fn owned_objects_changed_while_the_operator_was_down_are_repaired_with_one_apply_each() {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("drift", "development");
    let mut operator = cluster.operator(OPERATOR);
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &common::repo()
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
    let desired_replicas = replicas(&cluster, &namespace);
    let desired_config = mmf_yaml(&cluster, &namespace);
    assert!(operator.terminate(), "{}", operator.log_text());

    // A restart with nothing drifted writes nothing.
    let before = child_writes(&cluster);
    let mut operator = start_and_settle(&cluster);
    let quiet = delta(child_writes(&cluster), before);
    println!("figure: child writes after a restart with no drift: {quiet:?}");
    if let Some(quiet) = quiet {
        assert_eq!(quiet, [0, 0, 0], "[deployments, configmaps, services]");
    }
    assert!(operator.terminate(), "{}", operator.log_text());

    // Drift made while the operator is down is repaired on start, one apply per drifted child.
    cluster.kubectl_ok(&[
        "scale",
        "-n",
        &namespace,
        "deploy/payment-service",
        "--replicas=5",
    ]);
    cluster.kubectl_ok(&[
        "patch",
        "-n",
        &namespace,
        "cm",
        "payment-service-mmf",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"mmf.yaml":"tampered"}}"#,
    ]);
    let before = child_writes(&cluster);
    let started = Instant::now();
    let operator = start_and_settle(&cluster);
    let repaired = eventually(Duration::from_secs(12), || {
        replicas(&cluster, &namespace) == desired_replicas
            && mmf_yaml(&cluster, &namespace) == desired_config
    });
    println!(
        "figure: drift made while stopped repaired {:?} after start: {repaired}",
        started.elapsed()
    );
    assert!(
        repaired,
        "replicas {} and mmf.yaml {:?} were not repaired:\n{}",
        replicas(&cluster, &namespace),
        mmf_yaml(&cluster, &namespace),
        operator.log_text()
    );
    let settled = eventually(Duration::from_secs(10), || {
        operator.metric("mmf_queue_depth") == Some(0.0)
    });
    assert!(settled);
    let repairs = delta(child_writes(&cluster), before);
    println!("figure: child writes to repair a drifted Deployment and ConfigMap: {repairs:?}");
    if let Some(repairs) = repairs {
        assert_eq!(repairs, [1, 1, 0], "[deployments, configmaps, services]");
    }

    // Drift made while it runs is repaired within 5 s.
    let before = child_writes(&cluster);
    cluster.kubectl_ok(&[
        "scale",
        "-n",
        &namespace,
        "deploy/payment-service",
        "--replicas=5",
    ]);
    let started = Instant::now();
    let repaired = eventually(Duration::from_secs(5), || {
        replicas(&cluster, &namespace) == desired_replicas
    });
    println!(
        "figure: a live kubectl scale reverted in {:?}: {repaired}",
        started.elapsed()
    );
    assert!(repaired, "{}", operator.log_text());
    let repairs = delta(child_writes(&cluster), before);
    println!("figure: child writes to revert a live scale: {repairs:?}");
    if let Some(repairs) = repairs {
        assert_eq!(repairs, [1, 0, 0], "[deployments, configmaps, services]");
    }
}

/// Writes by the operator to the status of MmfServices and MmfPlugins (None on a real cluster).
fn status_writes(cluster: &Cluster) -> Option<[u64; 2]> {
    Some([
        cluster.writes_to("mmfservices/status", MANAGER)?,
        cluster.writes_to("mmfplugins/status", MANAGER)?,
    ])
}

#[test]
fn a_new_service_converges_with_one_apply_per_child_and_two_status_writes() {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("budget", "development");
    let operator = cluster.operator(OPERATOR);
    apply_example(&cluster, &namespace);
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        &namespace,
        "--for=condition=Ready",
        "mmfservice/payment-service",
        "mmfplugin/production-payment",
        "--timeout=60s",
    ]);
    let settled = eventually(Duration::from_secs(10), || {
        operator.metric("mmf_queue_depth") == Some(0.0)
    });
    assert!(settled, "{}", operator.log_text());
    let children = child_writes(&cluster);
    let statuses = status_writes(&cluster);
    println!("figure: child writes [deployments, configmaps, services]: {children:?}");
    println!("figure: status writes [mmfservices, mmfplugins]: {statuses:?}");
    if let (Some(children), Some(statuses)) = (children, statuses) {
        assert_eq!(children, [1, 1, 1], "[deployments, configmaps, services]");
        // The service: the evaluated status of its first pass (no separate first-sight write),
        // then Ready once the Deployment is available. The plugin: its verdict, once.
        assert_eq!(
            statuses,
            [2, 1],
            "[mmfservices, mmfplugins]\n{}",
            operator.log_text()
        );
    }
}

#[test]
fn a_first_pass_that_fails_leaves_the_first_sight_status_for_gitops_tools() {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    let cluster = Cluster::start();
    let Some(server) = cluster.server.as_ref() else {
        return; // needs the test server's fault injection
    };
    // Every apply of a Deployment fails, so the service's pass cannot finish.
    server
        .faults()
        .error_rate(Some("patch"), Some("deployments"), 1.0, 500);
    let namespace = cluster.namespace("first-sight", "development");
    let operator = cluster.operator(OPERATOR);
    apply_example(&cluster, &namespace);
    let reported = eventually(Duration::from_secs(20), || {
        cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .is_some_and(|s| s["status"]["conditions"].is_array())
    });
    assert!(reported, "{}", operator.log_text());
    let service = cluster
        .get_json(&namespace, "mmfservice/payment-service")
        .unwrap();
    let status = &service["status"];
    assert_eq!(
        status["observedGeneration"],
        service["metadata"]["generation"]
    );
    let ready = common::condition(&service, "Ready").unwrap();
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&Value::from("Unknown"), &Value::from("Reconciling"))
    );
    assert_eq!(common::condition_status(&service, "Reconciling"), "True");
    // Once the API server accepts the apply, the next pass brings the service to Ready.
    server.faults().clear();
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        &namespace,
        "--for=condition=Ready",
        "mmfservice/payment-service",
        "--timeout=90s",
    ]);
}

#[test]
fn a_service_being_deleted_in_the_foreground_gets_no_child_written_back() {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("foreground", "development");
    let operator = cluster.operator(OPERATOR);
    apply_example_and_wait_ready(&cluster, &namespace);
    let before = child_writes(&cluster);
    // The garbage collector deletes the children first; the operator must not recreate them
    // while the owner waits for them (it carries a deletionTimestamp), or the deletion never ends.
    cluster.kubectl_ok(&[
        "delete",
        "-n",
        &namespace,
        "mmfservice/payment-service",
        "--cascade=foreground",
        "--timeout=60s",
    ]);
    for child in [
        "deployment/payment-service",
        "configmap/payment-service-mmf",
        "service/payment-service",
    ] {
        assert!(
            cluster.get_json(&namespace, child).is_none(),
            "{child} outlived its owner:\n{}",
            operator.log_text()
        );
    }
    let during = delta(child_writes(&cluster), before);
    println!("figure: child writes during a foreground deletion: {during:?}");
    if let Some(during) = during {
        assert_eq!(during, [0, 0, 0], "[deployments, configmaps, services]");
    }
}
