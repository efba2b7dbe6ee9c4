//! What only a real control plane can prove: Deployments rolled out by kube-controller-manager
//! and kube-scheduler onto kwok nodes, PodSecurity admission judging the rendered pods,
//! kube-apiserver itself calling the admission webhook, server-side apply with the real
//! structured-merge-diff, and real garbage collection and namespace deletion.
//!
//! Run against the cluster of `MMF_E2E_KUBECONFIG` (see `common::real`); `.ci/test` runs it
//! through `real-cluster run`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::real::{DeleteOnDrop, real_cluster};
use common::{Cluster, condition_status, eventually, repo};
use serde_json::Value;

const SELECTOR: &str = "app.kubernetes.io/instance=payment-service";
const NO_WEBHOOK: &[&str] = &["--webhook-addr", "none", "--leader-election=false"];

fn apply_example(cluster: &Cluster, namespace: &str) {
    let dir = repo().join("plugins/production_payment_service");
    cluster.kubectl_ok(&["apply", "-n", namespace, "-f", &dir.display().to_string()]);
}

fn wait_ready(cluster: &Cluster, namespace: &str, object: &str) {
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        object,
        "--timeout=90s",
    ]);
}

/// The ReplicaSets of the example's Deployment, newest last.
fn replica_sets(cluster: &Cluster, namespace: &str) -> Vec<Value> {
    let mut sets = cluster.list(namespace, "replicasets", SELECTOR);
    sets.sort_by_key(|rs| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .unwrap_or("0")
            .parse::<u32>()
            .unwrap_or(0)
    });
    sets
}

fn running_pods_on_kwok(cluster: &Cluster, namespace: &str) -> Vec<Value> {
    cluster
        .list(namespace, "pods", SELECTOR)
        .into_iter()
        .filter(|p| {
            p["status"]["phase"] == "Running"
                && p["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kwok-node-"))
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

#[test]
fn deployments_roll_out_for_real_and_a_config_change_replaces_the_replica_set() {
    let Some(cluster) = real_cluster("deployments_roll_out_for_real") else {
        return;
    };
    let namespace = cluster.namespace("rollout", "development");
    let _operator = cluster.operator(NO_WEBHOOK);
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");

    // kube-controller-manager made one ReplicaSet; the scheduler bound its pods to kwok nodes.
    let sets = replica_sets(&cluster, &namespace);
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0]["status"]["readyReplicas"], 2);
    assert_eq!(running_pods_on_kwok(&cluster, &namespace).len(), 2);
    let service = cluster
        .get_json(&namespace, "mmfservice/payment-service")
        .unwrap();
    assert_eq!(condition_status(&service, "Available"), "True");
    assert_eq!(service["status"]["replicaSummary"], "2/2");

    // A plugin configuration change rolls the pods: a new ReplicaSet, the old one scaled to 0.
    let patch = r#"{"spec":{"plugins":[{"name":"production-payment","priority":100,"config":{"currency":"USD"}}]}}"#;
    cluster.kubectl_ok(&[
        "patch",
        "-n",
        &namespace,
        "mmfservice/payment-service",
        "--type",
        "merge",
        "-p",
        patch,
    ]);
    let mut sets = Vec::new();
    let rolled = eventually(Duration::from_secs(60), || {
        sets = replica_sets(&cluster, &namespace);
        sets.len() == 2
            && sets[0]["spec"]["replicas"] == 0
            && sets[1]["status"]["readyReplicas"] == 2
            && running_pods_on_kwok(&cluster, &namespace).len() == 2
    });
    assert!(rolled, "no second ReplicaSet took over: {sets:?}");
    let config_map = cluster
        .get_json(&namespace, "configmap/payment-service-mmf")
        .unwrap();
    assert!(
        config_map["data"]["production-payment.yaml"]
            .as_str()
            .unwrap()
            .contains("currency: USD"),
        "{config_map}"
    );
    let settled = eventually(Duration::from_secs(60), || {
        let service = cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .unwrap();
        condition_status(&service, "Ready") == "True"
            && service["status"]["observedGeneration"] == service["metadata"]["generation"]
            && service["status"]["replicaSummary"] == "2/2"
    });
    assert!(settled, "the MmfService did not settle after the rollout");
}

#[test]
fn a_restricted_pod_security_namespace_admits_the_rendered_production_pods() {
    let Some(cluster) = real_cluster("pod_security_restricted") else {
        return;
    };
    let namespace = cluster.namespace("psa", "production");
    cluster.kubectl_ok(&[
        "label",
        "namespace",
        &namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    ]);
    // The judge is awake: a privileged pod is refused in this namespace.
    let refused = cluster.kubectl(&[
        "run",
        "-n",
        &namespace,
        "privileged",
        "--image=registry.example/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "--privileged",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("violates PodSecurity \"restricted:latest\""),
        "{stderr}"
    );

    let _operator = cluster.operator(NO_WEBHOOK);
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    let sets = replica_sets(&cluster, &namespace);
    assert_eq!(sets.len(), 1);
    let failures: Vec<&Value> = sets[0]["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "ReplicaFailure")
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(running_pods_on_kwok(&cluster, &namespace).len(), 2);
}

fn unsigned_plugin() -> String {
    let signed =
        std::fs::read_to_string(repo().join("plugins/production_payment_service/plugin.yaml"))
            .unwrap();
    let without_signature = &signed[..signed.find("  signature:").unwrap()];
    without_signature.replace("name: production-payment", "name: unsigned-payment")
}

#[test]
fn kube_apiserver_calls_the_webhook_and_kubectl_prints_the_denial() {
    let Some(cluster) = real_cluster("apiserver_calls_the_webhook") else {
        return;
    };
    let namespace = cluster.namespace("webhook", "production");
    let operator_namespace = cluster.namespace("webhook-op", "development");
    let configuration = format!("mmf-real-webhook-{}", std::process::id());
    let _cleanup = DeleteOnDrop {
        cluster: &cluster,
        objects: vec![format!("validatingwebhookconfiguration/{configuration}")],
    };
    let port = common::free_port();
    let args: Vec<String> = [
        "--config-dir",
        &repo().join("config").display().to_string(),
        "--namespace",
        &operator_namespace,
        "--leader-election=false",
        "--webhook-addr",
        &format!("127.0.0.1:{port}"),
        "--webhook-url",
        &format!("https://127.0.0.1:{port}/validate"),
        "--webhook-configuration",
        &configuration,
    ]
    .map(String::from)
    .to_vec();
    let _operator = cluster.operator_with(&args, &[]);
    let live = cluster.kubectl_ok(&[
        "get",
        "validatingwebhookconfiguration",
        &configuration,
        "-o",
        "json",
    ]);
    let live: Value = serde_json::from_str(&live).unwrap();
    for webhook in live["webhooks"].as_array().unwrap() {
        assert_eq!(
            webhook["clientConfig"]["url"],
            format!("https://127.0.0.1:{port}/validate")
        );
        assert!(webhook["clientConfig"]["caBundle"].as_str().is_some());
    }

    let (ok, _, stderr) =
        cluster.kubectl_input(&["apply", "-n", &namespace, "-f", "-"], &unsigned_plugin());
    assert!(!ok, "an unsigned plugin was admitted in production");
    assert!(
        stderr.contains(
            "admission webhook \"strict.validate.mmf.marty.dev\" denied the request: mmf-operator denied this MmfPlugin"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "MmfPlugin/unsigned-payment (namespace {namespace}): spec.signature is missing"
        )),
        "{stderr}"
    );
    assert!(
        cluster
            .get_json(&namespace, "mmfplugin/unsigned-payment")
            .is_none()
    );
    // The signed example passes the same webhook.
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
}

fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["manager"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Overwrites the operator-owned `part-of` label of `object` and waits until the operator has
/// put it back; returns the restored object.
fn tamper_and_see_restored(cluster: &Cluster, namespace: &str, object: &str) -> Value {
    cluster.kubectl_ok(&[
        "label",
        "-n",
        namespace,
        object,
        "app.kubernetes.io/part-of=tampered",
        "--overwrite",
    ]);
    let mut live = Value::Null;
    let restored = eventually(Duration::from_secs(30), || {
        live = cluster.get_json(namespace, object).unwrap();
        live["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mmf"
    });
    assert!(
        restored,
        "an owned label of {object} was not restored: {live}"
    );
    live
}

#[test]
fn server_side_apply_keeps_other_managers_fields_and_restores_the_operators() {
    let Some(cluster) = real_cluster("server_side_apply") else {
        return;
    };
    let namespace = cluster.namespace("ssa", "development");
    let _operator = cluster.operator(NO_WEBHOOK);
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");

    cluster.kubectl_ok(&[
        "annotate",
        "-n",
        &namespace,
        "deployment/payment-service",
        "example.com/owner=team-payments",
    ]);
    tamper_and_see_restored(&cluster, &namespace, "configmap/payment-service-mmf");
    // The Deployment too, then check the other manager's annotation survived the re-apply.
    let deployment = tamper_and_see_restored(&cluster, &namespace, "deployment/payment-service");
    assert_eq!(
        deployment["metadata"]["annotations"]["example.com/owner"],
        "team-payments"
    );
    // kubectl hides managedFields unless asked.
    let with_fields = cluster.kubectl_ok(&[
        "get",
        "-n",
        &namespace,
        "deployment/payment-service",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let managers = managers(&serde_json::from_str(&with_fields).unwrap());
    assert!(managers.iter().any(|m| m == "mmf-operator"), "{managers:?}");
    assert!(
        managers.iter().any(|m| m == "kubectl-annotate"),
        "{managers:?}"
    );
}

#[test]
fn garbage_collection_in_the_background_and_the_foreground_and_namespace_deletion() {
    let Some(cluster) = real_cluster("garbage_collection") else {
        return;
    };
    let namespace = cluster.namespace("gc", "development");
    let _operator = cluster.operator(NO_WEBHOOK);
    let children = [
        "deployment/payment-service",
        "configmap/payment-service-mmf",
        "service/payment-service",
    ];

    // Background: the MmfService goes at once, the garbage collector takes its children and
    // the Deployment's ReplicaSets and pods after it.
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    cluster.kubectl_ok(&[
        "delete",
        "-n",
        &namespace,
        "mmfservice/payment-service",
        "--cascade=background",
    ]);
    for child in children {
        assert!(
            cluster.wait_gone(&namespace, child, Duration::from_secs(60)),
            "{child} was not collected"
        );
    }
    assert!(eventually(Duration::from_secs(60), || {
        cluster.list(&namespace, "pods", SELECTOR).is_empty()
            && cluster.list(&namespace, "replicasets", SELECTOR).is_empty()
    }));

    // Foreground: kubectl returns once the owner is gone, and it goes only after its children
    // (they carry blockOwnerDeletion).
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    cluster.kubectl_ok(&[
        "delete",
        "-n",
        &namespace,
        "mmfservice/payment-service",
        "--cascade=foreground",
        "--timeout=90s",
    ]);
    for child in children {
        assert!(
            cluster.get_json(&namespace, child).is_none(),
            "{child} outlived its owner in a foreground deletion"
        );
    }

    // Namespace deletion finishes with the plugin (and a service) still inside.
    apply_example(&cluster, &namespace);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    cluster.kubectl_ok(&["delete", "namespace", &namespace, "--timeout=120s"]);
    let gone = cluster.kubectl(&["get", "namespace", &namespace]);
    assert!(!gone.status.success(), "namespace {namespace} still exists");
}
