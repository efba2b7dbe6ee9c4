//! `MmfService`: a microservice that loads plugins.

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema;

/// A microservice built on MMF. The operator turns it into a Deployment, a ConfigMap and a
/// Service, with the plugins it enables loaded in dependency order. Its environment comes from
/// its namespace, never from the object itself.
// kube-derive takes one printcolumn(...) per column; clippy reads the repeats as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mmf.marty.dev",
    version = "v1alpha1",
    kind = "MmfService",
    plural = "mmfservices",
    singular = "mmfservice",
    namespaced,
    status = "MmfServiceStatus",
    shortname = "mmfs",
    category = "mmf",
    derive = "PartialEq",
    doc = "A Marty Microservices Framework service and the plugins it loads.",
    printcolumn(
        name = "Environment",
        type_ = "string",
        json_path = ".status.environment",
        description = "Environment policy in force"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        json_path = ".status.replicaSummary",
        description = "Ready/desired replicas"
    ),
    printcolumn(
        name = "Plugins",
        type_ = "string",
        json_path = ".status.loadedPlugins",
        description = "Loaded plugins in load order"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the service is available with every required plugin"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MmfServiceSpec {
    /// Container image of the service.
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,

    /// Desired number of pods.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Kind of service: an HTTP API, a gRPC server, both, or a background worker.
    #[serde(default, rename = "type")]
    pub service_type: ServiceType,

    /// Port the service listens on; the Kubernetes Service exposes the same port.
    #[serde(default = "default_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("port must be between 1 and 65535"))]
    pub port: i32,

    /// Plugins to load, with service-specific configuration overrides. Names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("plugin names must be unique within a service"))]
    pub plugins: Vec<PluginRef>,

    /// Compute resources of the service container. Limits must stay within the environment's
    /// sandbox limits; when a limit is unset the environment's limit applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra environment variables for the service container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// HTTP paths of the liveness, readiness and startup probes.
    #[serde(default)]
    pub probes: ProbesSpec,

    /// Prometheus metrics endpoint.
    #[serde(default)]
    pub metrics: MetricsSpec,
}

fn default_replicas() -> i32 {
    1
}

fn default_port() -> i32 {
    8080
}

/// What kind of server the service runs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// HTTP API (FastAPI).
    #[default]
    Fastapi,
    /// gRPC server.
    Grpc,
    /// HTTP and gRPC in one process.
    Hybrid,
    /// Background worker without an API.
    Worker,
}

impl ServiceType {
    /// The spelling used in manifests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Fastapi => "fastapi",
            ServiceType::Grpc => "grpc",
            ServiceType::Hybrid => "hybrid",
            ServiceType::Worker => "worker",
        }
    }
}

/// A plugin the service loads.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    /// MmfPlugin name in the service's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Semver requirement on the plugin's version (default `*`: follow the latest verified
    /// revision). `=1.0.0` pins exactly one revision (set it to roll back), `^1` follows minor
    /// and patch releases of 1.x, `~1.2` patch releases of 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub version: Option<String>,
    /// Set to false to keep an environment default plugin out of this service.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Load-order tie breaker after dependencies: higher loads first.
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// Service-specific configuration, deep-merged last over the plugin's defaults
    /// (MMF's `plugin_settings.<plugin>.service_specific`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form_object")]
    pub config: Option<Value>,
}

fn enabled_by_default() -> bool {
    true
}

fn default_priority() -> i32 {
    100
}

/// Probe paths. MMF's readiness endpoint includes plugin status.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProbesSpec {
    /// Liveness probe path.
    #[serde(default = "default_liveness_path")]
    pub liveness_path: String,
    /// Readiness probe path.
    #[serde(default = "default_readiness_path")]
    pub readiness_path: String,
    /// Startup probe path.
    #[serde(default = "default_startup_path")]
    pub startup_path: String,
}

impl Default for ProbesSpec {
    fn default() -> Self {
        ProbesSpec {
            liveness_path: default_liveness_path(),
            readiness_path: default_readiness_path(),
            startup_path: default_startup_path(),
        }
    }
}

fn default_liveness_path() -> String {
    "/health/live".to_owned()
}

fn default_readiness_path() -> String {
    "/health/ready".to_owned()
}

fn default_startup_path() -> String {
    "/health".to_owned()
}

/// Metrics endpoint settings.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Whether the service exports Prometheus metrics.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Path of the metrics endpoint.
    #[serde(default = "default_metrics_path")]
    pub path: String,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            enabled: true,
            path: default_metrics_path(),
        }
    }
}

fn default_metrics_path() -> String {
    "/metrics".to_owned()
}

/// What the operator observed about a service.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MmfServiceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The environment whose policy was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Desired replicas of the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Ready replicas of the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// `ready/desired`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_summary: Option<String>,
    /// Loaded plugins in load order, comma-separated, for `kubectl get` (same as `MMF_PLUGINS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_plugins: Option<String>,
    /// Every requested plugin in load order, with what happened to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginStatus>,
    /// `Ready`, `PluginsResolved`, `PolicyCompliant` and `Available`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One plugin of a service as resolved.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    /// Plugin name.
    pub name: String,
    /// The version requirement the service asked for (`*` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// Name of the MmfPluginRevision loaded (`<plugin>-<version>`). A version loaded before
    /// its revision is recorded is named at once: it is the revision the operator records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Version loaded, when the plugin was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Digest of the plugin's signed payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Whether the plugin is loaded, skipped (lenient) or rejected (strict).
    pub state: PluginLoadState,
    /// Why it was skipped or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Outcome for one plugin of a service.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginLoadState {
    /// Part of the rendered Deployment.
    Loaded,
    /// Left out in a lenient environment because of a violation.
    Skipped,
    /// Violates a strict environment's policy; the service is not rolled out.
    Rejected,
}
