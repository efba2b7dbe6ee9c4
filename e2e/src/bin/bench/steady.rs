//! The scenarios of a settled operator: quiet writes, memory, startup, and `mmf render`.

use kube::Api;
use kube::api::{DynamicObject, ListParams};

use crate::cluster::Cluster;
use crate::operator::Operator;
use crate::report::{Table, mib, millis, ratio, secs};
use crate::scenarios::{
    BenchError, Converged, NAMESPACE, Setup, converge, lease_requests, operator_requests,
    render_workload, settle, writes,
};
use crate::workload::{Workload, plugin_resource, service_resource};

/// `quiet`: writes per minute of a settled operator.
pub async fn quiet(setup: &Setup, n: usize) -> Result<(), BenchError> {
    let workload = Workload::new(NAMESPACE, n, setup.plugins);
    let Converged {
        cluster, operator, ..
    } = converge(setup, &workload, "quiet").await?;
    settle(&cluster, &operator).await;
    cluster.reset_stats();
    let applies_before = operator.metric_sum("mmf_child_applies_total");
    tokio::time::sleep(setup.quiet).await;
    let minutes = setup.quiet.as_secs_f64() / 60.0;
    let applies = operator.metric_sum("mmf_child_applies_total") - applies_before;
    let mut table = Table::new(
        format!(
            "quiet: {n} settled MmfServices for {} s ({:?} server)",
            setup.quiet.as_secs(),
            setup.server
        ),
        &["requests", "count", "per minute"],
    );
    if let Some(by_verb) = operator_requests(&cluster) {
        let w = writes(&by_verb);
        let watches = by_verb.get("watch").copied().unwrap_or(0);
        let reads: u64 = by_verb.values().sum::<u64>() - w - watches;
        table.row(vec![
            "object writes".into(),
            w.to_string(),
            format!("{:.1}", w as f64 / minutes),
        ]);
        table.row(vec![
            "object reads (get, list)".into(),
            reads.to_string(),
            format!("{:.1}", reads as f64 / minutes),
        ]);
        table.row(vec![
            "watches opened".into(),
            watches.to_string(),
            format!("{:.1}", watches as f64 / minutes),
        ]);
        let leases = lease_requests(&cluster);
        table.row(vec![
            "lease requests".into(),
            leases.to_string(),
            format!("{:.1}", leases as f64 / minutes),
        ]);
        table.footer(format!(
            "object writes per minute: {:.1}",
            w as f64 / minutes
        ));
    } else {
        table.row(vec![
            "child applies (operator metric)".into(),
            format!("{applies}"),
            format!("{:.1}", applies / minutes),
        ]);
        table.footer(format!(
            "child applies per minute: {:.1}",
            applies / minutes
        ));
    }
    table.print();
    Ok(())
}

/// The JSON size of what the operator caches: its custom resources, its children, namespaces,
/// each without `metadata.managedFields` (the operator drops them from every cache).
async fn cached_json(cluster: &Cluster) -> Result<u64, BenchError> {
    let mut total = 0u64;
    let owned = ListParams::default().labels("app.kubernetes.io/managed-by=mmf-operator");
    let sets = [
        (plugin_resource(), ListParams::default()),
        (service_resource(), ListParams::default()),
        (
            kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            owned.clone(),
        ),
        (
            kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            owned.clone(),
        ),
        (
            kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
            owned,
        ),
        (
            kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
            ListParams::default(),
        ),
    ];
    for (resource, params) in sets {
        let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource);
        let list = api
            .list(&params)
            .await
            .map_err(|e| BenchError::api(format!("listing {}", resource.plural), e))?;
        for mut item in list.items {
            item.metadata.managed_fields = None;
            total += serde_json::to_vec(&item).map_or(0, |v| v.len() as u64);
        }
    }
    Ok(total)
}

/// `memory`: RSS once converged, beside the JSON it caches; the peak during a restart.
pub async fn memory(setup: &Setup, n: usize) -> Result<(), BenchError> {
    let workload = Workload::new(NAMESPACE, n, setup.plugins);
    let Converged {
        cluster, operator, ..
    } = converge(setup, &workload, "memory").await?;
    settle(&cluster, &operator).await;
    let settled = operator.memory();
    let json = cached_json(&cluster).await?;
    operator.stop()?;
    let restarted = Operator::start(&setup.mmf, setup.concurrency, &cluster, "memory-restart")?;
    settle(&cluster, &restarted).await;
    let after = restarted.memory();
    let mut table = Table::new(
        format!(
            "memory: {n} MmfServices x {} plugins + {} children ({:?} server)",
            setup.plugins,
            3 * n,
            setup.server
        ),
        &["measure", "value"],
    );
    table.row(vec!["RSS once converged".into(), mib(settled.rss)]);
    table.row(vec![
        "  of which anonymous (heap, stacks)".into(),
        mib(settled.anonymous),
    ]);
    table.row(vec![
        "  of which pages of the binary and libraries".into(),
        mib(settled.rss.saturating_sub(settled.anonymous)),
    ]);
    table.row(vec![
        "peak (VmHWM) while converging".into(),
        mib(settled.peak),
    ]);
    table.row(vec!["JSON of the cached objects".into(), mib(json)]);
    table.row(vec!["RSS after a restart, settled".into(), mib(after.rss)]);
    table.row(vec!["peak during the restart".into(), mib(after.peak)]);
    table.footer(format!(
        "RSS/cached JSON: {}; restart peak/settled RSS: {}",
        ratio(settled.rss as f64, json as f64),
        ratio(after.peak as f64, settled.rss as f64)
    ));
    table.print();
    Ok(())
}

/// `startup`: process start to ready, and to the end of the first pass, with N services.
pub async fn startup(setup: &Setup, n: usize) -> Result<(), BenchError> {
    let workload = Workload::new(NAMESPACE, n, setup.plugins);
    let Converged {
        cluster, operator, ..
    } = converge(setup, &workload, "startup").await?;
    settle(&cluster, &operator).await;
    operator.stop()?;
    cluster.reset_stats();
    let restarted = Operator::start(&setup.mmf, setup.concurrency, &cluster, "startup-restart")?;
    let ready = restarted.ready;
    let leading = restarted.started.elapsed();
    let first_pass = leading + settle(&cluster, &restarted).await;
    let writes_after = operator_requests(&cluster).map(|r| writes(&r));
    let mut table = Table::new(
        format!(
            "startup: {n} settled MmfServices ({:?} server)",
            setup.server
        ),
        &["measure", "value"],
    );
    table.row(vec![
        "process start -> /readyz 200 (caches synced)".into(),
        millis(ready),
    ]);
    table.row(vec![
        "process start -> leading (lease taken)".into(),
        millis(leading),
    ]);
    table.row(vec![
        "process start -> first pass done (requests stop)".into(),
        millis(first_pass),
    ]);
    table.row(vec![
        "object writes in the first pass".into(),
        writes_after.map_or("n/a".into(), |w| w.to_string()),
    ]);
    table.footer(format!("ready after {}", secs(ready)));
    table.print();
    Ok(())
}

/// `render`: `mmf render` of N services.
pub async fn render(setup: &Setup, n: usize) -> Result<(), BenchError> {
    let workload = Workload::new(NAMESPACE, n, setup.plugins);
    let dir = std::env::temp_dir().join(format!("mmf-bench-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
    let result = render_workload(setup, &workload, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let (text, wall, peak) = result?;
    let documents = text.matches("\nkind: ").count() + usize::from(text.starts_with("kind: "));
    let mut table = Table::new(
        format!(
            "render: mmf render of {n} MmfServices x {} plugins",
            setup.plugins
        ),
        &["measure", "value"],
    );
    table.row(vec!["wall time".into(), millis(wall)]);
    table.row(vec![
        "peak memory (VmHWM, sampled every 2 ms)".into(),
        mib(peak),
    ]);
    table.row(vec!["objects printed".into(), documents.to_string()]);
    table.row(vec!["output".into(), mib(text.len() as u64)]);
    table.footer(format!("render: {} for {n} services", millis(wall)));
    table.print();
    Ok(())
}
