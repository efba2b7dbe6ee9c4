//! API faults: the real `mmf` binary against the in-memory test API server while 10% of its
//! writes fail (500, 429 with `Retry-After: 1`, 409 in rotation, seeded), every watch is
//! dropped every 3 s and one watch is answered `410 Gone`: 500 MmfServices (3 plugins each, the
//! bench's workload) converge to exactly the state of a fault-free run, with a bounded number of
//! requests (no hot loop).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Cluster, eventually, fleet, require_tool};
use mmf_e2e::workload::Workload;
use mmf_e2e::{Injected, WriteFaults};
use serde_json::Value;

/// MmfServices (`MMF_FLEET_SERVICES` overrides, e.g. for a quicker local run).
fn services() -> usize {
    std::env::var("MMF_FLEET_SERVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}
const PLUGINS: usize = 3;
const OPERATOR: &[&str] = &["--webhook-addr", "none", "--leader-election=false"];
const AGENT: &str = "mmf-operator";

/// What one run ended with.
struct Run {
    state: BTreeMap<String, Value>,
    /// Every request the operator sent, and its writes (injected failures included).
    requests: u64,
    writes: u64,
    /// Watch requests the operator sent.
    watches: u64,
    injected: Injected,
    converged: Duration,
}

fn converge(faulty: bool) -> Run {
    let cluster = Cluster::start();
    let server = cluster.server.as_ref().unwrap();
    let namespace = cluster.namespace("faults", "development");
    let faults = server.faults();
    if faulty {
        faults.write_faults(WriteFaults {
            rate: 0.1,
            seed: 2026,
            user_agent: Some(AGENT.into()),
        });
        faults.drop_watches_every(Some(Duration::from_secs(3)));
    }
    let operator = cluster.operator(OPERATOR);
    if faulty {
        // The operator's watches are open: the next one it starts (after the first drop)
        // finds its resourceVersion expired and must list again.
        faults.expire_next_watches(None, 1);
    }
    let started = Instant::now();
    let client = cluster.client();
    cluster.block_on(fleet::create(
        &client,
        &Workload::new(&namespace, services(), PLUGINS),
    ));
    let converged = eventually(Duration::from_secs(150), || {
        fleet::ready_count(&cluster, &namespace) == services()
            && operator.metric("mmf_queue_depth") == Some(0.0)
    });
    assert!(
        converged,
        "{} of {} Ready:\n{}",
        fleet::ready_count(&cluster, &namespace),
        services(),
        operator
            .log_text()
            .lines()
            .filter(|line| !line.contains(" INFO "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let converged = started.elapsed();
    let state = fleet::state(&cluster, &namespace);
    let stats = server.stats();
    let by_operator = |k: &mmf_e2e::RequestKey| k.user_agent.starts_with(AGENT);
    let sum = |f: &dyn Fn(&mmf_e2e::RequestKey) -> bool| -> u64 {
        stats
            .counts
            .iter()
            .filter(|(k, _)| by_operator(k) && f(k))
            .map(|(_, n)| n)
            .sum()
    };
    let run = Run {
        state,
        requests: sum(&|_| true),
        writes: sum(&|k| k.is_write()),
        watches: sum(&|k| k.verb == "watch"),
        injected: faults.injected(),
        converged,
    };
    faults.clear();
    run
}

#[test]
fn five_hundred_services_converge_through_failing_writes_dropped_watches_and_a_410_to_the_fault_free_state()
 {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    if std::env::var_os("MMF_E2E_KUBECONFIG").is_some() {
        println!("SKIPPED: fault injection needs the in-memory test API server");
        return;
    }
    let clean = converge(false);
    let faulty = converge(true);
    println!(
        "figure: fault-free: converged in {:?}, {} operator requests ({} writes, {} watches)",
        clean.converged, clean.requests, clean.writes, clean.watches
    );
    println!(
        "figure: with faults: converged in {:?}, {} operator requests ({} writes, {} watches); injected {:?}",
        faulty.converged, faulty.requests, faulty.writes, faulty.watches, faulty.injected
    );
    assert_eq!(
        clean.state.len(),
        services() * 4,
        "a status and 3 children per service"
    );
    assert!(
        clean.state == faulty.state,
        "{}",
        fleet::differences(&clean.state, &faulty.state)
    );
    let failed: u64 = faulty.injected.errors.values().sum();
    assert!(failed > 0 && faulty.injected.watch_drops > 0 && faulty.injected.gone == 1);

    // The bound. A failed write ends its reconcile, which is retried after a backoff: the retry
    // repeats at most that reconcile's requests, which are writes only (reads come from the
    // watch caches): 3 child applies, the status patch and events, at most 7 (the bench
    // measures 6.95 writes per converged service, first reconciles included). kube-rs retries
    // a 429 itself, one more request each, within the same 7. A dropped watch costs each open
    // watch one new watch request, and the 410 one list and one watch: at most 2 per open
    // watch per drop, where the open watches are the fault-free run's watch requests (one per
    // cache). So, beyond the fault-free run's requests:
    //   extra <= failed * 7 + (drops + 1) * watches * 2
    // A hot loop (a retry without backoff, a relist per event) exceeds it many times over.
    let bound = clean.requests + failed * 7 + (faulty.injected.watch_drops + 1) * clean.watches * 2;
    println!(
        "figure: operator requests with faults {} <= bound {bound} (fault-free {}, {failed} failed writes)",
        faulty.requests, clean.requests
    );
    assert!(faulty.requests <= bound);
}

#[test]
fn a_child_deleted_or_changed_while_its_watch_relists_is_repaired() {
    if !require_tool("kubectl") || !require_tool("curl") {
        return;
    }
    if std::env::var_os("MMF_E2E_KUBECONFIG").is_some() {
        println!("SKIPPED: fault injection needs the in-memory test API server");
        return;
    }
    let cluster = Cluster::start();
    let server = cluster.server.as_ref().unwrap();
    let namespace = cluster.namespace("relist", "development");
    let operator = cluster.operator(OPERATOR);
    let client = cluster.client();
    cluster.block_on(fleet::create(&client, &Workload::new(&namespace, 2, 1)));
    let ready = eventually(Duration::from_secs(30), || {
        fleet::ready_count(&cluster, &namespace) == 2
    });
    assert!(ready, "{}", operator.log_text());
    let configmap = format!("{}-mmf", Workload::service_name(0));
    let deployment = Workload::service_name(1);
    let replicas = |cluster: &Cluster| {
        cluster
            .get_json(&namespace, &format!("deployment/{deployment}"))
            .unwrap()["spec"]["replicas"]
            .clone()
    };
    let desired_replicas = replicas(&cluster);

    // Every watch is dropped; those of ConfigMaps and Deployments resume into 410 Gone and
    // their relists fail until healed (the others resume where they were): what happens
    // meanwhile reaches the operator only through the relists.
    let faults = server.faults();
    faults.error_rate(Some("list"), Some("configmaps"), 1.0, 500);
    faults.error_rate(Some("list"), Some("deployments"), 1.0, 500);
    faults.expire_next_watches(Some("configmaps"), 1);
    faults.expire_next_watches(Some("deployments"), 1);
    faults.drop_watches();
    cluster.kubectl_ok(&["delete", "-n", &namespace, "configmap", &configmap]);
    cluster.kubectl_ok(&[
        "scale",
        "-n",
        &namespace,
        &format!("deploy/{deployment}"),
        "--replicas=5",
    ]);
    faults.clear();
    let healed = Instant::now();
    let repaired = eventually(Duration::from_secs(10), || {
        cluster
            .get_json(&namespace, &format!("configmap/{configmap}"))
            .is_some()
            && replicas(&cluster) == desired_replicas
    });
    println!(
        "figure: a ConfigMap deleted and a Deployment scaled during a relist repaired {:?} after the relist could succeed: {repaired}",
        healed.elapsed()
    );
    assert!(repaired, "{}", operator.log_text());
}
