//! The scenarios: each starts fresh servers, runs the operator, prints one table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::cluster::{Cluster, ServerKind, repo};
use crate::operator::{Operator, process_memory};
use crate::raw;
use crate::report::{Table, ratio, secs};
use crate::workload::{
    Workload, count_children, create_all, plugin_resource, service_resource, wait_services_ready,
};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting the API server: {0}")]
    Server(String),
    #[error("{what}: {source}")]
    Api { what: String, source: kube::Error },
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("watching: {0}")]
    Watch(String),
    #[error("{0}")]
    Input(String),
    #[error("the operator {0}")]
    Operator(String),
}

impl BenchError {
    pub fn io(path: &Path, source: std::io::Error) -> BenchError {
        BenchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn api(what: impl Into<String>, source: kube::Error) -> BenchError {
        BenchError::Api {
            what: what.into(),
            source,
        }
    }
}

/// What every scenario shares.
pub struct Setup {
    pub mmf: PathBuf,
    pub server: ServerKind,
    pub plugins: usize,
    pub concurrency: usize,
    pub quiet: Duration,
}

pub const NAMESPACE: &str = "bench";
const OPERATOR: &str = "mmf-operator";

/// Time allowed for `n` services to converge (generous: the figure is printed, not asserted).
fn convergence_timeout(n: usize) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(100 * n as u64)
}

/// The operator's requests (its User-Agent), without the lease traffic, by verb.
pub fn operator_requests(cluster: &Cluster) -> Option<BTreeMap<String, u64>> {
    let stats = cluster.stats()?;
    let mut by_verb = BTreeMap::new();
    for (key, count) in &stats.counts {
        if key.user_agent.starts_with(OPERATOR) && key.resource != "leases" {
            *by_verb.entry(key.verb.clone()).or_insert(0) += count;
        }
    }
    Some(by_verb)
}

pub fn lease_requests(cluster: &Cluster) -> u64 {
    cluster.stats().map_or(0, |stats| {
        stats
            .counts
            .iter()
            .filter(|(k, _)| k.user_agent.starts_with(OPERATOR) && k.resource == "leases")
            .map(|(_, v)| v)
            .sum()
    })
}

pub fn writes(by_verb: &BTreeMap<String, u64>) -> u64 {
    ["create", "update", "patch", "delete", "deletecollection"]
        .iter()
        .map(|v| by_verb.get(*v).copied().unwrap_or(0))
        .sum()
}

/// Waits until the operator has made no request (leases aside) for 2 s; on a real server, until
/// its reconcile counter has stood still for 2 s.
pub async fn settle(cluster: &Cluster, operator: &Operator) -> Duration {
    let started = Instant::now();
    let sample = || match operator_requests(cluster) {
        Some(by_verb) => by_verb.values().sum::<u64>() as f64,
        None => operator.metric_sum("mmf_reconciles_total"),
    };
    let mut last = sample();
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sample();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    started.elapsed().saturating_sub(Duration::from_secs(2))
}

/// A cluster with the workload's namespace and plugins, an operator, and the services created
/// and Ready. Returns the creating client's time and the time to the last Ready.
pub struct Converged {
    pub cluster: Cluster,
    pub operator: Operator,
    pub creating: Duration,
    pub ready: Duration,
}

pub async fn converge(
    setup: &Setup,
    workload: &Workload,
    label: &str,
) -> Result<Converged, BenchError> {
    let cluster = Cluster::start(setup.server, label).await?;
    cluster
        .namespace(&workload.namespace, "development")
        .await?;
    create_all(
        &cluster.client,
        &plugin_resource(),
        &workload.namespace,
        workload.plugin_objects(),
        setup.concurrency,
    )
    .await?;
    let operator = Operator::start(&setup.mmf, setup.concurrency, &cluster, label)?;
    settle(&cluster, &operator).await;
    cluster.reset_stats();
    let started = Instant::now();
    create_all(
        &cluster.client,
        &service_resource(),
        &workload.namespace,
        workload.service_objects(),
        setup.concurrency,
    )
    .await?;
    let creating = started.elapsed();
    let last = wait_services_ready(
        &cluster,
        &workload.namespace,
        workload.services,
        convergence_timeout(workload.services),
    )
    .await?;
    Ok(Converged {
        cluster,
        operator,
        creating,
        ready: last.saturating_duration_since(started),
    })
}

/// `mmf render` of the workload: its output and how long it took, with its peak memory.
pub fn render_workload(
    setup: &Setup,
    workload: &Workload,
    dir: &Path,
) -> Result<(String, Duration, u64), BenchError> {
    let input = dir.join("workload.yaml");
    crate::workload::write_yaml(workload, &input)?;
    let output = dir.join("rendered.yaml");
    let out = std::fs::File::create(&output).map_err(|e| BenchError::io(&output, e))?;
    let started = Instant::now();
    let mut child = Command::new(&setup.mmf)
        .arg("render")
        .arg("-f")
        .arg(&input)
        .arg("--config-dir")
        .arg(repo().join("config"))
        .args(["--env", "development", "-n", &workload.namespace])
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::io(&setup.mmf, e))?;
    let mut peak = 0;
    let status = loop {
        peak = peak.max(process_memory(child.id()).peak);
        if let Some(status) = child
            .try_wait()
            .map_err(|e| BenchError::io(&setup.mmf, e))?
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        return Err(BenchError::Input(format!("mmf render failed: {stderr}")));
    }
    let text = std::fs::read_to_string(&output).map_err(|e| BenchError::io(&output, e))?;
    Ok((text, wall, peak))
}

/// `convergence`: N services at once, beside the raw client.
pub async fn convergence(setup: &Setup, n: usize) -> Result<(), BenchError> {
    let workload = Workload::new(NAMESPACE, n, setup.plugins);

    let raw_cluster = Cluster::start(setup.server, "raw").await?;
    raw_cluster.namespace(NAMESPACE, "development").await?;
    create_all(
        &raw_cluster.client,
        &plugin_resource(),
        NAMESPACE,
        workload.plugin_objects(),
        setup.concurrency,
    )
    .await?;
    let (rendered, _, _) = render_workload(setup, &workload, raw_cluster.dir())?;
    let children = raw::children_of(&rendered)?;
    raw_cluster.reset_stats();
    let raw_time = tokio::time::timeout(
        convergence_timeout(n),
        raw::run(&raw_cluster, &workload, &children, setup.concurrency),
    )
    .await
    .map_err(|_| BenchError::Timeout("the raw client".to_owned()))??;
    let raw_writes = raw_cluster.stats().map(|s| s.writes() - n as u64);
    drop(raw_cluster);

    let run = converge(setup, &workload, "operator").await?;
    for (group, kind, plural) in [
        ("apps", "Deployment", "deployments"),
        ("", "ConfigMap", "configmaps"),
        ("", "Service", "services"),
    ] {
        let count = count_children(&run.cluster.client, NAMESPACE, group, kind, plural).await?;
        if count != n {
            return Err(BenchError::Operator(format!(
                "left {count} {plural} for {n} services"
            )));
        }
    }
    settle(&run.cluster, &run.operator).await;
    let operator_writes = operator_requests(&run.cluster).map(|r| writes(&r));

    let per =
        |w: Option<u64>| w.map_or("n/a".to_owned(), |w| format!("{:.2}", w as f64 / n as f64));
    let count = |w: Option<u64>| w.map_or("n/a".to_owned(), |w| w.to_string());
    let mut table = Table::new(
        format!(
            "convergence: {n} MmfServices x {} plugins, {:?} server, {} in flight",
            setup.plugins, setup.server, setup.concurrency
        ),
        &[
            "run",
            "first create -> all Ready",
            "creating client",
            "writes",
            "writes/service",
        ],
    );
    table.row(vec![
        "raw client (3 applies + 2 status writes)".into(),
        secs(raw_time),
        "-".into(),
        count(raw_writes),
        per(raw_writes),
    ]);
    table.row(vec![
        "operator".into(),
        secs(run.ready),
        secs(run.creating),
        count(operator_writes),
        per(operator_writes),
    ]);
    table.footer(format!(
        "operator/raw: {} time",
        ratio(run.ready.as_secs_f64(), raw_time.as_secs_f64())
    ));
    table.print();
    Ok(())
}

fn verb_row(
    phase: &str,
    by_verb: Option<BTreeMap<String, u64>>,
    n: usize,
    leases: u64,
) -> Vec<String> {
    let Some(by_verb) = by_verb else {
        return vec![
            phase.to_owned(),
            "n/a (the real API server does not count per client; use --server memory)".into(),
        ];
    };
    let get = |v: &str| by_verb.get(v).copied().unwrap_or(0).to_string();
    let w = writes(&by_verb);
    vec![
        phase.to_owned(),
        get("get"),
        get("list"),
        get("watch"),
        get("create"),
        get("patch"),
        get("update"),
        get("delete"),
        w.to_string(),
        format!("{:.2}", w as f64 / n.max(1) as f64),
        leases.to_string(),
    ]
}

/// `requests`: the operator's requests by verb for a create, a no-op resync, a restart and a
/// plugin change affecting K = N/10 services.
pub async fn requests(setup: &Setup, n: usize) -> Result<(), BenchError> {
    let k = (n / 10).max(1);
    let mut workload = Workload::new(NAMESPACE, n, setup.plugins);
    workload.affected = Some(k);
    let Converged {
        cluster, operator, ..
    } = converge(setup, &workload, "requests").await?;
    settle(&cluster, &operator).await;
    let mut table = Table::new(
        format!(
            "requests: {n} MmfServices x {} plugins, by verb ({:?} server, leases apart)",
            setup.plugins, setup.server
        ),
        &[
            "phase",
            "get",
            "list",
            "watch",
            "create",
            "patch",
            "update",
            "delete",
            "writes",
            "writes/service",
            "lease requests",
        ],
    );
    table.row(verb_row(
        "create and converge",
        operator_requests(&cluster),
        n,
        lease_requests(&cluster),
    ));

    // A no-op resync: every service touched without a spec change.
    cluster.reset_stats();
    let services: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), NAMESPACE, &service_resource());
    futures::stream::iter(0..n)
        .map(|i| {
            let services = services.clone();
            async move {
                let name = Workload::service_name(i);
                let patch =
                    json!({"metadata": {"annotations": {"mmf.marty.dev/bench-touch": "1"}}});
                services
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| BenchError::api(format!("touching {name}"), e))?;
                Ok::<_, BenchError>(())
            }
        })
        .buffer_unordered(setup.concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    settle(&cluster, &operator).await;
    table.row(verb_row(
        "no-op resync (metadata touched)",
        operator_requests(&cluster),
        n,
        lease_requests(&cluster),
    ));

    // A restart (SIGTERM, as a rolling update does).
    operator.stop()?;
    cluster.reset_stats();
    let operator = Operator::start(&setup.mmf, setup.concurrency, &cluster, "requests-restart")?;
    settle(&cluster, &operator).await;
    table.row(verb_row(
        &format!("restart (ready in {})", secs(operator.ready)),
        operator_requests(&cluster),
        n,
        lease_requests(&cluster),
    ));

    // A plugin change that K services load.
    cluster.reset_stats();
    let plugins: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), NAMESPACE, &plugin_resource());
    let changed = Workload::plugin_name(setup.plugins.max(1) - 1);
    plugins
        .patch(
            &changed,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"config": {"level": 2}}})),
        )
        .await
        .map_err(|e| BenchError::api(format!("changing {changed}"), e))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    settle(&cluster, &operator).await;
    let change = operator_requests(&cluster);
    table.row(verb_row(
        &format!("plugin change loaded by K={k}"),
        change.clone(),
        k,
        lease_requests(&cluster),
    ));
    if let Some(change) = change {
        table.footer(format!(
            "plugin change: {} writes for K={k} services = {} per affected service (goal: K status writes plus the changed children)",
            writes(&change),
            ratio(writes(&change) as f64, k as f64)
        ));
    }
    table.print();
    Ok(())
}
