//! The objects a scenario creates, and the waits on what the operator makes of them.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::scenarios::BenchError;

/// Label on everything the bench creates.
const BENCH_LABEL: &str = "mmf.marty.dev/bench";

/// N services each loading `plugins` plugins, in one namespace.
#[derive(Clone, Debug)]
pub struct Workload {
    pub namespace: String,
    pub services: usize,
    pub plugins: usize,
    /// With `Some(k)`, the last plugin is loaded by the first `k` services only and the others
    /// load an alternative instead (so every service still loads `plugins` plugins).
    pub affected: Option<usize>,
}

pub fn plugin_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("mmf.marty.dev", "v1alpha1", "MmfPlugin"),
        "mmfplugins",
    )
}

pub fn service_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("mmf.marty.dev", "v1alpha1", "MmfService"),
        "mmfservices",
    )
}

/// A digest-pinned image reference that passes every environment's image rules.
fn image(repository: &str, n: usize) -> String {
    format!("ghcr.io/mmf-bench/{repository}@sha256:{n:064x}")
}

impl Workload {
    pub fn new(namespace: &str, services: usize, plugins: usize) -> Workload {
        Workload {
            namespace: namespace.to_owned(),
            services,
            plugins: plugins.max(1),
            affected: None,
        }
    }

    pub fn plugin_name(index: usize) -> String {
        format!("bench-plugin-{index}")
    }

    pub fn service_name(index: usize) -> String {
        format!("bench-svc-{index:05}")
    }

    /// The plugins: `plugins` of them, plus the alternative when `affected` is set.
    pub fn plugin_objects(&self) -> Vec<Value> {
        let count = self.plugins + usize::from(self.affected.is_some());
        (0..count)
            .map(|i| Workload::plugin_object(&self.namespace, &Workload::plugin_name(i), i))
            .collect()
    }

    /// One compliant MmfPlugin (development and production image rules both pass).
    pub fn plugin_object(namespace: &str, name: &str, index: usize) -> Value {
        json!({
            "apiVersion": "mmf.marty.dev/v1alpha1",
            "kind": "MmfPlugin",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {BENCH_LABEL: "true"},
            },
            "spec": {
                "version": "1.0.0",
                "description": "A plugin of the benchmark",
                "image": image("plugin", index),
                "services": [{
                    "name": format!("bench-api-{index}"),
                    "healthCheckPath": "/health",
                    "routes": [{"path": format!("/bench/{index}"), "methods": ["GET"]}],
                }],
                "configSchema": {
                    "type": "object",
                    "properties": {"level": {"type": "integer"}, "mode": {"type": "string"}},
                },
                "config": {"level": 1, "mode": "fast"},
            },
        })
    }

    /// The plugin names service `index` loads.
    fn plugins_of(&self, index: usize) -> Vec<String> {
        let mut names: Vec<String> = (0..self.plugins).map(Workload::plugin_name).collect();
        if let Some(k) = self.affected
            && index >= k
            && let Some(last) = names.last_mut()
        {
            *last = Workload::plugin_name(self.plugins);
        }
        names
    }

    pub fn service_object(&self, index: usize) -> Value {
        let plugins: Vec<Value> = self
            .plugins_of(index)
            .into_iter()
            .enumerate()
            .map(|(priority, name)| json!({"name": name, "priority": 100 - priority as i64}))
            .collect();
        json!({
            "apiVersion": "mmf.marty.dev/v1alpha1",
            "kind": "MmfService",
            "metadata": {
                "name": Workload::service_name(index),
                "namespace": self.namespace,
                "labels": {BENCH_LABEL: "true"},
            },
            "spec": {
                "image": image("service", index),
                "replicas": 1,
                "type": "fastapi",
                "port": 8080,
                "plugins": plugins,
                "resources": {
                    "requests": {"memory": "64Mi", "cpu": "50m"},
                    "limits": {"memory": "128Mi", "cpu": "100m"},
                },
            },
        })
    }

    pub fn service_objects(&self) -> Vec<Value> {
        (0..self.services).map(|i| self.service_object(i)).collect()
    }

    /// Every object as one multi-document YAML stream (the input of `mmf render`).
    pub fn write_yaml(&self, path: &Path) -> Result<(), BenchError> {
        let mut text = String::new();
        for object in self.plugin_objects().iter().chain(&self.service_objects()) {
            let yaml = serde_saphyr::to_string(object)
                .map_err(|e| BenchError::Input(format!("serializing the workload: {e}")))?;
            text.push_str("---\n");
            text.push_str(&yaml);
        }
        std::fs::write(path, text).map_err(|e| BenchError::io(path, e))
    }
}

/// Creates `objects` of `resource` in `namespace` with `concurrency` requests in flight.
pub async fn create_all(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    objects: Vec<Value>,
    concurrency: usize,
) -> Result<(), BenchError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    futures::stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move {
                let object: DynamicObject = serde_json::from_value(object)
                    .map_err(|e| BenchError::Input(format!("a bench object: {e}")))?;
                let name = object.metadata.name.clone().unwrap_or_default();
                api.create(&PostParams::default(), &object)
                    .await
                    .map_err(|e| BenchError::api(format!("creating {name}"), e))?;
                Ok::<_, BenchError>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
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
