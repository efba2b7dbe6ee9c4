//! Objects the operator does not own: a ConfigMap that happens to have a child's name is never
//! overwritten or deleted; the conflict is reported in the MmfService status and an event, and
//! the service rolls out once the name is free. Runs on the in-memory server and unchanged on a
//! real cluster (`MMF_E2E_KUBECONFIG`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Cluster, condition, eventually, repo, require_tool};

const OPERATOR: &[&str] = &["--webhook-addr", "none", "--leader-election=false"];

#[test]
fn a_foreign_object_with_a_childs_name_is_left_alone_and_reported() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("foreign", "development");
    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "-n",
        &namespace,
        "payment-service-mmf",
        "--from-literal=keep=me",
    ]);
    let _operator = cluster.operator(OPERATOR);
    let dir = repo().join("plugins/production_payment_service");
    cluster.kubectl_ok(&["apply", "-n", &namespace, "-f", &dir.display().to_string()]);

    let expected = format!(
        "ConfigMap {namespace}/payment-service-mmf already exists and is not this MmfService's (no controller ownerReference): it is left untouched; delete or rename it, or rename the MmfService"
    );
    let mut status = serde_json::Value::Null;
    let reported = eventually(Duration::from_secs(30), || {
        let service = cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .unwrap();
        status = service["status"].clone();
        condition(&service, "Ready").is_some_and(|c| {
            c["status"] == "False" && c["reason"] == "ChildNotOwned" && c["message"] == expected
        }) && condition(&service, "Stalled").is_some_and(|c| c["status"] == "True")
    });
    assert!(reported, "the conflict was not reported: {status}");
    let config_map = cluster
        .get_json(&namespace, "configmap/payment-service-mmf")
        .unwrap();
    assert_eq!(config_map["data"], serde_json::json!({"keep": "me"}));
    assert!(config_map["metadata"]["ownerReferences"].is_null());
    assert!(
        cluster
            .get_json(&namespace, "deployment/payment-service")
            .is_none(),
        "nothing may be rolled out while a child's name is taken"
    );

    // The owner of the ConfigMap removes it: the service rolls out on the next look.
    cluster.kubectl_ok(&["delete", "-n", &namespace, "configmap/payment-service-mmf"]);
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        &namespace,
        "--for=condition=Ready",
        "mmfservice/payment-service",
        "--timeout=90s",
    ]);
}
