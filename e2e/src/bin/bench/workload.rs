//! The objects a scenario creates, and the waits on what the operator makes of them.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::scenarios::BenchError;

pub use mmf_e2e::workload::{Workload, plugin_resource, service_resource};

/// Writes every object of `workload` as one YAML stream to `path`.
pub fn write_yaml(workload: &Workload, path: &Path) -> Result<(), BenchError> {
    let text = workload
        .yaml()
        .map_err(|e| BenchError::Input(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| BenchError::io(path, e))
}

/// Creates `objects` of `resource` in `namespace` with `concurrency` requests in flight.
pub async fn create_all(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    objects: Vec<Value>,
    concurrency: usize,
) -> Result<(), BenchError> {
    mmf_e2e::workload::create_all(client, resource, namespace, objects, concurrency)
        .await
        .map_err(|e| match e {
            mmf_e2e::workload::WorkloadError::Api { name, source } => {
                BenchError::api(format!("creating {name}"), source)
            }
            other => BenchError::Input(other.to_string()),
        })
}

fn is_ready(object: &DynamicObject) -> bool {
    let generation = object.metadata.generation;
    let status = &object.data["status"];
    let observed = status["observedGeneration"].as_i64();
    observed.is_some()
        && observed == generation
        && status["conditions"].as_array().is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Waits until `expected` MmfServices in `namespace` are Ready for their current generation
/// (one watch, so the wait itself costs the server almost nothing); returns when the last one
/// became Ready.
pub async fn wait_services_ready(
    cluster: &Cluster,
    namespace: &str,
    expected: usize,
    timeout: Duration,
) -> Result<Instant, BenchError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), namespace, &service_resource());
    let mut ready: HashSet<String> = HashSet::new();
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = Instant::now();
    while ready.len() < expected {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                BenchError::Timeout(format!(
                    "{expected} MmfServices in {namespace} to be Ready ({} are)",
                    ready.len()
                ))
            })?;
        let Some(event) = event else { break };
        let event = event.map_err(|e| BenchError::Watch(e.to_string()))?;
        let mut note = |object: &DynamicObject| {
            let name = object.metadata.name.clone().unwrap_or_default();
            if is_ready(object) {
                if ready.insert(name) {
                    last = Instant::now();
                }
            } else {
                ready.remove(&name);
            }
        };
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => note(&object),
            watcher::Event::Delete(object) => {
                ready.remove(&object.metadata.name.clone().unwrap_or_default());
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
    Ok(last)
}

/// How many objects of `plural` (core or apps) with the operator's managed-by label exist in
/// `namespace`.
pub async fn count_children(
    client: &Client,
    namespace: &str,
    group: &str,
    kind: &str,
    plural: &str,
) -> Result<usize, BenchError> {
    let (group, version) = if group.is_empty() {
        ("", "v1")
    } else {
        (group, "v1")
    };
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let list = api
        .list_metadata(&ListParams::default().labels("app.kubernetes.io/managed-by=mmf-operator"))
        .await
        .map_err(|e| BenchError::api(format!("listing {plural} in {namespace}"), e))?;
    Ok(list.items.len())
}
