//! Leader failover and lease loss: two `mmf run` replicas, told apart by the server (a listener
//! each on the in-memory test API server; a ServiceAccount each and kube-apiserver's audit log
//! on the real control plane, see `common/replicas.rs`). Killing the leader, or cutting its
//! connection so it cannot renew, hands the work to the other within the lease's timing, and no
//! two processes ever write at the same time.
//! Lease 15 s, renewed 10 s after the last renewal (so the renew deadline is 10 s), watchdog
//! retry 2 s (src/controller/leader.rs; `mmf run` has no flags for them).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::replicas::Replicas;
use common::{Cluster, Operator, eventually, fleet, require_tool};
use mmf_e2e::workload::Workload;
use mmf_e2e::{Cut, LoggedRequest};

const FIRST: usize = 100;
const MORE: usize = 50;
const OPERATOR: &[&str] = &["--webhook-addr", "none"];
const LEASE: Duration = Duration::from_secs(15);
const RENEW_DEADLINE: Duration = Duration::from_secs(10);

fn is_leader(operator: &Operator) -> bool {
    operator.metric("mmf_leader") == Some(1.0)
}

/// A leads, B stands by, and A has made the first services Ready.
struct Pair {
    cluster: Cluster,
    namespace: String,
    workload: Workload,
    replicas: Replicas,
    a: Operator,
    b: Operator,
}

fn start_pair(prefix: &str) -> Option<Pair> {
    if !require_tool("kubectl") || !require_tool("curl") {
        return None;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace(prefix, "development");
    // The Lease lives in the test's namespace: a fresh one, whoever held another before.
    let mut replicas = Replicas::new(&cluster, &namespace)?;
    let a = replicas.start(&cluster, "replica-a", OPERATOR);
    assert!(
        eventually(Duration::from_secs(30), || is_leader(&a)),
        "{}",
        a.log_text()
    );
    let b = replicas.start(&cluster, "replica-b", OPERATOR);
    assert!(!is_leader(&b), "two leaders:\n{}", b.log_text());
    let workload = Workload::new(&namespace, FIRST + MORE, 3);
    let client = cluster.client();
    cluster.block_on(async {
        fleet::create_plugins(&client, &workload).await;
        fleet::create_services(&client, &workload, 0..FIRST).await;
    });
    let ready = eventually(Duration::from_secs(120), || {
        fleet::ready_count(&cluster, &namespace) == FIRST
    });
    assert!(ready, "{}", a.log_text());
    Some(Pair {
        cluster,
        namespace,
        workload,
        replicas,
        a,
        b,
    })
}

impl Pair {
    fn clock(&self) -> Duration {
        self.replicas.clock(&self.cluster)
    }

    fn request_log(&self) -> Vec<LoggedRequest> {
        self.replicas.request_log(&self.cluster)
    }

    /// More services: only a leader can make them Ready.
    fn create_more(&self) {
        let client = self.cluster.client();
        self.cluster.block_on(fleet::create_services(
            &client,
            &self.workload,
            FIRST..FIRST + MORE,
        ));
    }

    fn wait_all_ready(&self, leader: &Operator) {
        let ready = eventually(Duration::from_secs(120), || {
            fleet::ready_count(&self.cluster, &self.namespace) == FIRST + MORE
        });
        assert!(ready, "{}", leader.log_text());
    }
}

fn is_lease(r: &LoggedRequest) -> bool {
    r.resource == "leases"
}

/// When `client`'s first and last non-lease writes arrived.
fn write_interval(log: &[LoggedRequest], client: &str) -> Option<(Duration, Duration)> {
    let mut writes = log
        .iter()
        .filter(|r| r.client == client && r.is_write() && !is_lease(r))
        .map(|r| r.at);
    let first = writes.next()?;
    Some((first, writes.next_back().unwrap_or(first)))
}

/// When `client` last wrote the Lease before `before`.
fn last_renewal(log: &[LoggedRequest], client: &str, before: Duration) -> Option<Duration> {
    log.iter()
        .filter(|r| r.client == client && r.is_write() && is_lease(r) && r.at < before)
        .map(|r| r.at)
        .next_back()
}

#[test]
fn when_the_leader_is_killed_the_standby_takes_over_within_the_lease_and_they_never_write_together()
{
    let Some(mut pair) = start_pair("failover") else {
        return;
    };
    let killed = pair.clock();
    pair.a.kill();
    pair.create_more();
    let took_over = eventually(LEASE + Duration::from_secs(5), || is_leader(&pair.b));
    assert!(took_over, "{}", pair.b.log_text());
    let took_over = pair.clock() - killed;
    pair.wait_all_ready(&pair.b);

    let log = pair.request_log();
    let renewed = last_renewal(&log, "replica-a", killed).unwrap();
    let a = write_interval(&log, "replica-a").unwrap();
    let b = write_interval(&log, "replica-b").unwrap();
    println!(
        "figure: leader killed {:?} after its last renewal; standby leading {took_over:?} after the kill, first write {:?} after it",
        killed - renewed,
        b.0 - killed
    );
    println!("figure: non-lease writes: replica-a {a:?}, replica-b {b:?}");
    assert!(
        b.0 - renewed <= LEASE + Duration::from_secs(3),
        "the standby took over {:?} after the last renewal",
        b.0 - renewed
    );
    assert!(
        a.1 < b.0,
        "writes overlap: replica-a {a:?}, replica-b {b:?}"
    );
}

#[test]
fn a_leader_that_cannot_renew_stops_before_its_lease_expires_and_the_standby_takes_over() {
    let Some(mut pair) = start_pair("leaseloss") else {
        return;
    };
    let cut = pair.clock();
    pair.replicas
        .cut(&pair.cluster, "replica-a", Cut::BlackHole);
    pair.create_more();
    // Watch both at once: when the cut leader exits and when the standby leads.
    let (mut exited_at, mut took_over) = (None, None);
    let both = eventually(LEASE + Duration::from_secs(15), || {
        let now = pair.replicas.clock(&pair.cluster);
        if exited_at.is_none() && pair.a.child.try_wait().unwrap().is_some() {
            exited_at = Some(now);
        }
        if took_over.is_none() && is_leader(&pair.b) {
            took_over = Some(now - cut);
        }
        exited_at.is_some() && took_over.is_some()
    });
    // Healed: a leader that had not stopped would write again now.
    pair.replicas.heal(&pair.cluster, "replica-a");
    assert!(
        both,
        "cut leader exited at {exited_at:?}, standby leading {took_over:?} after the cut:\n{}\n{}",
        pair.a.log_text(),
        pair.b.log_text()
    );
    let (exited_at, took_over) = (exited_at.unwrap(), took_over.unwrap());
    pair.wait_all_ready(&pair.b);
    let status = pair.a.child.wait().unwrap();

    let log = pair.request_log();
    let renewed = last_renewal(&log, "replica-a", cut).unwrap();
    let a = write_interval(&log, "replica-a").unwrap();
    let b = write_interval(&log, "replica-b").unwrap();
    println!(
        "figure: connection cut {:?} after the last renewal; standby leading {took_over:?} after the cut; cut leader exited ({status}) by {:?} after its last renewal",
        cut - renewed,
        exited_at - renewed
    );
    println!("figure: non-lease writes: replica-a {a:?}, replica-b {b:?}");
    assert!(!status.success(), "a lost lease is a failure exit");
    assert!(
        pair.a
            .log_text()
            .contains("lost the leader lease; exiting so a fresh start cannot overlap"),
        "{}",
        pair.a.log_text()
    );
    assert!(a.1 < cut, "replica-a wrote after the cut: {a:?}");
    assert!(
        a.1 < b.0,
        "writes overlap: replica-a {a:?}, replica-b {b:?}"
    );
    assert!(
        exited_at - renewed <= RENEW_DEADLINE + Duration::from_secs(5),
        "the cut leader ran {:?} past its last renewal",
        exited_at - renewed
    );
}
