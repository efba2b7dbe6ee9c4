//! The workload the bench and the reliability suite create: N MmfServices each loading P
//! MmfPlugins (digest-pinned images that pass every environment's rules), and a concurrent
//! creator for them.

use futures::{StreamExt, TryStreamExt};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// Why creating the workload failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A generated object did not deserialize as a Kubernetes object (a bug in this module).
    #[error("the workload object {name}: {source}")]
    Object {
        /// The object's name.
        name: String,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// The API server refused a create.
    #[error("creating {name}: {source}")]
    Api {
        /// The object's name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// The objects could not be written as YAML.
    #[error("serializing the workload: {0}")]
    Yaml(String),
}

/// Label on everything the workload creates.
pub const BENCH_LABEL: &str = "mmf.marty.dev/bench";

/// N services each loading `plugins` plugins, in one namespace.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Namespace of every object.
    pub namespace: String,
    /// MmfServices.
    pub services: usize,
    /// MmfPlugins each service loads.
    pub plugins: usize,
    /// With `Some(k)`, the last plugin is loaded by the first `k` services only and the others
    /// load an alternative instead (so every service still loads `plugins` plugins).
    pub affected: Option<usize>,
}

/// The MmfPlugin resource.
pub fn plugin_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("mmf.marty.dev", "v1alpha1", "MmfPlugin"),
        "mmfplugins",
    )
}

/// The MmfService resource.
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
    /// `services` services loading `plugins` plugins (at least one) each.
    pub fn new(namespace: &str, services: usize, plugins: usize) -> Workload {
        Workload {
            namespace: namespace.to_owned(),
            services,
            plugins: plugins.max(1),
            affected: None,
        }
    }

    /// The name of plugin `index`.
    pub fn plugin_name(index: usize) -> String {
        format!("bench-plugin-{index}")
    }

    /// The name of service `index`.
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

    /// Service `index`.
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

    /// Every service.
    pub fn service_objects(&self) -> Vec<Value> {
        (0..self.services).map(|i| self.service_object(i)).collect()
    }

    /// Every object as one multi-document YAML stream (the input of `mmf render`).
    pub fn yaml(&self) -> Result<String, WorkloadError> {
        let mut text = String::new();
        for object in self.plugin_objects().iter().chain(&self.service_objects()) {
            let yaml =
                serde_saphyr::to_string(object).map_err(|e| WorkloadError::Yaml(e.to_string()))?;
            text.push_str("---\n");
            text.push_str(&yaml);
        }
        Ok(text)
    }
}

/// Creates `objects` of `resource` in `namespace` with `concurrency` requests in flight.
pub async fn create_all(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    objects: Vec<Value>,
    concurrency: usize,
) -> Result<(), WorkloadError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    futures::stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move {
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let object: DynamicObject =
                    serde_json::from_value(object).map_err(|source| WorkloadError::Object {
                        name: name.clone(),
                        source,
                    })?;
                api.create(&PostParams::default(), &object)
                    .await
                    .map_err(|source| WorkloadError::Api { name, source })?;
                Ok::<_, WorkloadError>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
