//! Restarts: the operator is SIGKILLed while 500 MmfServices are being created, a Deployment
//! and a ConfigMap it made are changed while it is down, and it is started again: everything
//! converges, every child has exactly one controller ownerReference to an existing MmfService
//! (no duplicates, no orphans, one child of each kind per service) and the drift is repaired.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Cluster, eventually, fleet, require_tool};
use mmf_e2e::workload::Workload;

const SERVICES: usize = 500;
/// Reconciles in flight: the debug build waits on the API server's round trips more than on
/// its CPU, so more of them shorten the run.
const OPERATOR: &[&str] = &[
    "--webhook-addr",
    "none",
    "--leader-election=false",
    "--concurrency",
    "16",
];

fn child_counts(cluster: &Cluster, namespace: &str) -> BTreeMap<&'static str, usize> {
    fleet::children(cluster, namespace)
        .into_iter()
        .map(|(plural, objects)| (plural, objects.len()))
        .collect()
}

#[test]
fn a_sigkill_while_creating_500_services_converges_after_restart_without_duplicates_orphans_or_drift()
 {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("restart", "development");
    let mut operator = cluster.operator(OPERATOR);
    let client = cluster.client();
    let workload = Workload::new(&namespace, SERVICES, 3);
    let creating = cluster.spawn(async move { fleet::create(&client, &workload).await });

    // Kill it in the middle: once it has made some children, while services are still being
    // created.
    let midway = eventually(Duration::from_secs(60), || {
        child_counts(&cluster, &namespace)["deployments"] >= 10
    });
    assert!(midway, "{}", operator.log_text());
    operator.kill();
    let at_kill = child_counts(&cluster, &namespace);
    let services_at_kill = fleet::services(&cluster, &namespace).len();
    println!("figure: SIGKILL with {services_at_kill} services created, children {at_kill:?}");
    assert!(
        at_kill["deployments"] < SERVICES,
        "killed too late: {at_kill:?}"
    );
    cluster.block_on(creating).unwrap();

    // Drift made while it is down.
    let children = fleet::children(&cluster, &namespace);
    let deployment = children["deployments"][0].metadata.name.clone().unwrap();
    let configmap = &children["configmaps"][0];
    let configmap_name = configmap.metadata.name.clone().unwrap();
    let desired_data = configmap.data["data"].clone();
    let desired_replicas = children["deployments"][0].data["spec"]["replicas"].clone();
    cluster.kubectl_ok(&[
        "scale",
        "-n",
        &namespace,
        &format!("deploy/{deployment}"),
        "--replicas=5",
    ]);
    cluster.kubectl_ok(&[
        "patch",
        "-n",
        &namespace,
        "cm",
        &configmap_name,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"mmf.yaml":"tampered"}}"#,
    ]);

    let restarted = Instant::now();
    let operator = cluster.operator(OPERATOR);
    let converged = eventually(Duration::from_secs(120), || {
        fleet::ready_count(&cluster, &namespace) == SERVICES
            && operator.metric("mmf_queue_depth") == Some(0.0)
    });
    println!(
        "figure: all {SERVICES} Ready {:?} after the restart: {converged}",
        restarted.elapsed()
    );
    assert!(converged, "{}", operator.log_text());
    assert_eq!(
        fleet::ownership_problems(&cluster, &namespace),
        Vec::<String>::new()
    );
    assert_eq!(
        child_counts(&cluster, &namespace),
        BTreeMap::from([
            ("configmaps", SERVICES),
            ("deployments", SERVICES),
            ("services", SERVICES)
        ])
    );
    let children = fleet::children(&cluster, &namespace);
    let find = |plural: &str, name: &str| {
        children[plural]
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some(name))
            .unwrap()
            .data
            .clone()
    };
    assert_eq!(
        find("deployments", &deployment)["spec"]["replicas"],
        desired_replicas
    );
    assert_eq!(find("configmaps", &configmap_name)["data"], desired_data);
}
