//! `mmf run` end to end: the real binary against a cluster, driven with kubectl as a user
//! would. Runs against the in-memory test API server, or unchanged against a real cluster
//! when `MMF_E2E_KUBECONFIG` is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Cluster, condition, condition_status, eventually, require_tool, sign};

const OPERATOR: &[&str] = &["--webhook-addr", "none", "--leader-election=false"];

fn apply_payment(cluster: &Cluster, namespace: &str, dir: &std::path::Path) {
    cluster.kubectl_ok(&["apply", "-n", namespace, "-f", &dir.display().to_string()]);
}

fn wait_ready(cluster: &Cluster, namespace: &str, object: &str) {
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        object,
        "--timeout=60s",
    ]);
}

#[test]
fn the_payment_example_becomes_ready_with_a_restricted_deployment_in_production() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("prod", "production");
    let _operator = cluster.operator(OPERATOR);
    apply_payment(
        &cluster,
        &namespace,
        &common::repo().join("plugins/production_payment_service"),
    );

    wait_ready(&cluster, &namespace, "mmfplugin/production-payment");
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    let plugin = cluster
        .get_json(&namespace, "mmfplugin/production-payment")
        .unwrap();
    assert_eq!(condition_status(&plugin, "SignatureVerified"), "True");
    assert_eq!(plugin["status"]["environment"], "production");
    assert!(
        plugin["status"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let service = cluster
        .get_json(&namespace, "mmfservice/payment-service")
        .unwrap();
    assert_eq!(service["status"]["replicaSummary"], "2/2");
    assert_eq!(service["status"]["plugins"][0]["state"], "Loaded");
    assert_eq!(
        service["status"]["observedGeneration"],
        service["metadata"]["generation"]
    );
    for type_ in ["PluginsResolved", "PolicyCompliant", "Available"] {
        assert_eq!(condition_status(&service, type_), "True", "{type_}");
    }
    // kstatus: a finished rollout carries no Reconciling or Stalled condition.
    assert!(
        condition(&service, "Reconciling").is_none() && condition(&service, "Stalled").is_none(),
        "{service}"
    );

    let deployment = cluster
        .get_json(&namespace, "deployment/payment-service")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(
        pod["containers"][0]["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["memory"],
        "256Mi"
    );
    assert_eq!(
        pod["initContainers"][0]["name"],
        "plugin-production-payment"
    );
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["kind"],
        "MmfService"
    );
    assert!(
        cluster
            .get_json(&namespace, "configmap/payment-service-mmf")
            .is_some()
    );
    assert!(
        cluster
            .get_json(&namespace, "service/payment-service")
            .is_some()
    );

    // Someone scales the Deployment by hand: the operator puts its declared state back.
    cluster.kubectl_ok(&[
        "scale",
        "-n",
        &namespace,
        "deployment/payment-service",
        "--replicas=5",
    ]);
    let reverted = eventually(Duration::from_secs(30), || {
        cluster
            .get_json(&namespace, "deployment/payment-service")
            .unwrap()["spec"]["replicas"]
            == 2
    });
    assert!(
        reverted,
        "a manual change to an owned Deployment was not reverted"
    );

    // The revert rolls the Deployment once more; the columns settle back to Ready.
    let mut columns = String::new();
    let settled = eventually(Duration::from_secs(30), || {
        columns = cluster.kubectl_ok(&["get", "mmf", "-n", &namespace]);
        columns.contains("production-payment   1.0.0     True       True")
            && columns.contains("production    2/2        production-payment   True")
    });
    assert!(settled, "{columns}");
}

#[test]
fn a_plugin_config_change_rolls_the_service_and_a_quiet_cluster_sees_zero_writes() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("roll", "production");
    let operator = cluster.operator(OPERATOR);
    let example = cluster.payment_example();
    apply_payment(&cluster, &namespace, &example);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    let hash = |cluster: &Cluster| {
        cluster
            .get_json(&namespace, "deployment/payment-service")
            .unwrap()["spec"]["template"]["metadata"]["annotations"]["mmf.marty.dev/config-hash"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = hash(&cluster);

    // Publish 1.0.1 with a longer production default timeout (spec.config's is overridden by
    // it), signed: the service follows the latest version and the pods roll. (A change under
    // the same version is refused: the recorded revision 1.0.0 is never overwritten.)
    let plugin = example.join("plugin.yaml");
    let text = std::fs::read_to_string(&plugin)
        .unwrap()
        .replace("timeout_seconds: 10", "timeout_seconds: 12")
        .replacen("  version: 1.0.0\n", "  version: 1.0.1\n", 1);
    std::fs::write(&plugin, text).unwrap();
    sign(&plugin);
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &plugin.display().to_string(),
    ]);
    assert!(
        eventually(Duration::from_secs(30), || hash(&cluster) != before),
        "config hash never changed"
    );
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    let events = cluster.kubectl_ok(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &namespace,
        "-o",
        "json",
    ]);
    assert!(events.contains("RolloutStarted"), "{events}");

    // Settled (nothing queued), then nothing changes for 30 seconds, so nothing is written.
    assert!(
        eventually(Duration::from_secs(20), || operator
            .metric("mmf_queue_depth")
            == Some(0.0)),
        "{}",
        operator.log_text()
    );
    let versions = |cluster: &Cluster| {
        [
            "mmfservice/payment-service",
            "mmfplugin/production-payment",
            "deployment/payment-service",
            "configmap/payment-service-mmf",
            "service/payment-service",
        ]
        .map(|object| {
            cluster.get_json(&namespace, object).unwrap()["metadata"]["resourceVersion"].clone()
        })
    };
    let settled = versions(&cluster);
    let writes = cluster.writes_by("mmf-operator");
    std::thread::sleep(Duration::from_secs(30));
    assert_eq!(versions(&cluster), settled);
    assert_eq!(
        cluster.writes_by("mmf-operator"),
        writes,
        "the operator wrote while nothing changed"
    );
}

#[test]
fn an_unsigned_plugin_is_rejected_in_production_and_the_running_deployment_is_kept() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("strict", "production");
    let _operator = cluster.operator(OPERATOR);
    let example = cluster.payment_example();
    apply_payment(&cluster, &namespace, &example);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    let deployment_before = cluster
        .get_json(&namespace, "deployment/payment-service")
        .unwrap();

    // Version 1.0.1 with its signature removed and a changed config, and the service pinned to
    // it (a follower would stay on 1.0.0: see tests/revisions_e2e.rs).
    let plugin = example.join("plugin.yaml");
    let text = std::fs::read_to_string(&plugin).unwrap();
    let unsigned = text[..text.find("  signature:").unwrap()]
        .replace("timeout_seconds: 30", "timeout_seconds: 5")
        .replacen("  version: 1.0.0\n", "  version: 1.0.1\n", 1);
    std::fs::write(&plugin, unsigned).unwrap();
    let service = example.join("payment-service.yaml");
    let pinned = std::fs::read_to_string(&service).unwrap().replace(
        "    - name: production-payment\n",
        "    - name: production-payment\n      version: \"=1.0.1\"\n",
    );
    std::fs::write(&service, pinned).unwrap();
    apply_payment(&cluster, &namespace, &example);

    let rejected = eventually(Duration::from_secs(30), || {
        let plugin = cluster
            .get_json(&namespace, "mmfplugin/production-payment")
            .unwrap();
        condition(&plugin, "Ready")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "SignatureMissing")
    });
    assert!(rejected, "plugin never became Ready=False/SignatureMissing");
    let compliant = eventually(Duration::from_secs(30), || {
        let service = cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .unwrap();
        condition_status(&service, "PolicyCompliant") == "False"
            && condition_status(&service, "Ready") == "False"
    });
    assert!(compliant, "service never reported the violation");
    let deployment_after = cluster
        .get_json(&namespace, "deployment/payment-service")
        .unwrap();
    assert_eq!(
        deployment_after["metadata"]["generation"],
        deployment_before["metadata"]["generation"]
    );
    assert_eq!(
        deployment_after["spec"], deployment_before["spec"],
        "the running Deployment must be left untouched"
    );
    let service = cluster
        .get_json(&namespace, "mmfservice/payment-service")
        .unwrap();
    assert_eq!(
        condition_status(&service, "Available"),
        "True",
        "the old pods keep serving"
    );
    assert_eq!(condition_status(&service, "Stalled"), "True");
    let message = condition(&service, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("spec.signature is missing"), "{message}");
}

#[test]
fn an_unsigned_plugin_is_loaded_with_warnings_in_development() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("dev", "development");
    let _operator = cluster.operator(OPERATOR);
    let example = cluster.payment_example();
    let plugin = example.join("plugin.yaml");
    let text = std::fs::read_to_string(&plugin).unwrap();
    let unsigned = text[..text.find("  signature:").unwrap()]
        .replace("@sha256:", ":v1-")
        .to_owned();
    std::fs::write(&plugin, unsigned).unwrap();
    apply_payment(&cluster, &namespace, &example);
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    let plugin = cluster
        .get_json(&namespace, "mmfplugin/production-payment")
        .unwrap();
    let ready = condition(&plugin, "Ready").unwrap();
    assert_eq!(ready["status"], "True");
    assert_eq!(condition_status(&plugin, "SignatureVerified"), "True");
    assert_eq!(
        condition(&plugin, "SignatureVerified").unwrap()["reason"],
        "NotRequired"
    );
    let service = cluster
        .get_json(&namespace, "mmfservice/payment-service")
        .unwrap();
    assert_eq!(service["status"]["plugins"][0]["state"], "Loaded");
    assert_eq!(service["status"]["environment"], "development");
}

#[test]
fn deleting_a_plugin_in_use_unresolves_its_service_and_deleting_the_service_collects_its_objects() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("gc", "production");
    let _operator = cluster.operator(OPERATOR);
    apply_payment(
        &cluster,
        &namespace,
        &common::repo().join("plugins/production_payment_service"),
    );
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");

    cluster.kubectl_ok(&["delete", "-n", &namespace, "mmfplugin/production-payment"]);
    let unresolved = eventually(Duration::from_secs(30), || {
        let service = cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .unwrap();
        condition(&service, "PluginsResolved")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "PluginNotFound")
    });
    assert!(
        unresolved,
        "the service never noticed its plugin was deleted"
    );
    assert!(
        cluster
            .get_json(&namespace, "deployment/payment-service")
            .is_some(),
        "strict mode keeps the Deployment"
    );

    cluster.kubectl_ok(&[
        "delete",
        "-n",
        &namespace,
        "mmfservice/payment-service",
        "--wait=true",
    ]);
    let collected = eventually(Duration::from_secs(30), || {
        [
            "deployment/payment-service",
            "configmap/payment-service-mmf",
            "service/payment-service",
        ]
        .iter()
        .all(|object| cluster.get_json(&namespace, object).is_none())
    });
    assert!(collected, "owned objects were not garbage-collected");
}

#[test]
fn only_the_leader_writes_and_a_standby_takes_over_when_it_dies() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("ha", "production");
    let mut first = cluster.operator(&["--webhook-addr", "none"]);
    assert!(
        eventually(Duration::from_secs(20), || first.metric("mmf_leader")
            == Some(1.0)),
        "{}",
        first.log_text()
    );
    let second = cluster.operator(&["--webhook-addr", "none"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(second.metric("mmf_leader"), Some(0.0), "two leaders");

    apply_payment(
        &cluster,
        &namespace,
        &common::repo().join("plugins/production_payment_service"),
    );
    wait_ready(&cluster, &namespace, "mmfservice/payment-service");
    assert_eq!(
        second.metric("mmf_reconciles_total{controller=\"mmfservice\"}"),
        None,
        "the standby reconciled"
    );

    first.kill();
    let took_over = eventually(Duration::from_secs(25), || {
        second.metric("mmf_leader") == Some(1.0)
    });
    assert!(
        took_over,
        "the standby never took over:\n{}",
        second.log_text()
    );
    // The new leader serves new work.
    let other = cluster.payment_example();
    let service = std::fs::read_to_string(other.join("payment-service.yaml"))
        .unwrap()
        .replace("name: payment-service", "name: refunds");
    std::fs::write(other.join("payment-service.yaml"), service).unwrap();
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &other.join("payment-service.yaml").display().to_string(),
    ]);
    wait_ready(&cluster, &namespace, "mmfservice/refunds");
}
