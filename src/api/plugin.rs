//! `MmfPlugin`: a signed plugin package the services of a namespace can load.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema;

/// A plugin package: what it is, where its code lives, what it needs and contributes, and a
/// signature over all of that.
// kube-derive takes one printcolumn(...) per column; clippy reads the repeats as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mmf.marty.dev",
    version = "v1alpha1",
    kind = "MmfPlugin",
    plural = "mmfplugins",
    singular = "mmfplugin",
    namespaced,
    status = "MmfPluginStatus",
    shortname = "mmfp",
    category = "mmf",
    derive = "PartialEq",
    doc = "A signed Marty Microservices Framework plugin package that MmfServices in the same namespace can load.",
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".spec.version",
        description = "Plugin version"
    ),
    printcolumn(
        name = "Verified",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"SignatureVerified\")].status",
        description = "Whether the signature checked out"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether services may load the plugin"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MmfPluginSpec {
    /// Semantic version of this plugin release, for example 1.2.0. Dependencies of other plugins
    /// are matched against it.
    #[x_kube(validation = Rule::new(r"self.matches('^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$')").message("must be a semantic version such as 1.2.0"))]
    #[schemars(length(min = 5, max = 128))]
    pub version: String,

    /// One-line summary shown to people choosing plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Who publishes and maintains the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,

    /// Free-form keywords for search and grouping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,

    /// OCI reference of the plugin package image. Its `/plugin` directory is the plugin's code,
    /// copied into each service pod by an init container. Environments that require digests
    /// accept only references pinned by `@sha256:`.
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,

    /// Plugins that must be enabled in the same service, at a version matching `version`
    /// (a semver requirement such as `^1.2` or `>=1, <2`). They are loaded before this plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub dependencies: Vec<PluginDependency>,

    /// Plugins loaded before this one when the service enables them; never required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub optional_dependencies: Vec<PluginDependency>,

    /// Semver requirement on the MMF framework version. Informational for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmf_version: Option<String>,

    /// The services (routes, health checks, metrics) this plugin contributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub services: Vec<ServiceDefinition>,

    /// JSON Schema (draft 2020-12) that the plugin's merged configuration must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form_object")]
    pub config_schema: Option<Value>,

    /// Default configuration; must validate against `configSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form_object")]
    pub config: Option<Value>,

    /// Configuration overrides per environment name (for example `production`), deep-merged over
    /// `config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::environment_overrides")]
    pub environments: BTreeMap<String, Value>,

    /// Signature over the canonical payload (see `mmf payload`). Required in environments whose
    /// policy sets `require_signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<PluginSignature>,

    /// How many MmfPluginRevisions of this plugin to keep (default 5, minimum 1). Older ones
    /// are deleted oldest version first, never the current version and never one an MmfService
    /// currently loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub revision_history_limit: Option<i32>,
}

/// Revisions kept when `revisionHistoryLimit` is unset.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 5;

/// A reference to another plugin by name and semver requirement.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PluginDependency {
    /// MmfPlugin name in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Semver requirement the dependency's `spec.version` must match, for example `^1.2`.
    #[serde(default = "any_version")]
    pub version: String,
}

fn any_version() -> String {
    "*".to_owned()
}

/// A service the plugin contributes (MMF's ServiceDefinition).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDefinition {
    /// Service name, unique within the plugin.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// HTTP routes the service exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub routes: Vec<Route>,
    /// Path of the service's health endpoint.
    #[serde(default = "default_health_check_path")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("must start with /"))]
    #[schemars(length(max = 1024))]
    pub health_check_path: String,
    /// Whether the service exports Prometheus metrics.
    #[serde(default = "yes")]
    pub metrics_enabled: bool,
    /// Whether the service needs a database connection.
    #[serde(default)]
    pub database_required: bool,
    /// Other services this one calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
}

fn default_health_check_path() -> String {
    "/health".to_owned()
}

fn yes() -> bool {
    true
}

/// One HTTP route.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// URL path, starting with `/`.
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("route paths must start with /"))]
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    /// HTTP methods accepted on the path (GET when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub methods: Vec<String>,
    /// Whether callers must be authenticated.
    #[serde(default)]
    pub auth_required: bool,
    /// Per-route rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// What the route does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Requests allowed per client per minute.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Maximum requests per minute.
    #[schemars(range(min = 1))]
    pub requests_per_minute: u32,
}

/// A detached signature over the plugin's canonical payload.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginSignature {
    /// Id of one of the environment's `trusted_keys`.
    #[schemars(length(min = 1, max = 253))]
    pub key_id: String,
    /// `ecdsa-p256-sha256` or `ed25519`.
    pub algorithm: SignatureAlgorithm,
    /// Base64 signature: ASN.1 DER for ECDSA, the raw 64 bytes for Ed25519.
    #[schemars(length(min = 1, max = 1024))]
    pub value: String,
}

/// Supported signature algorithms.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA over P-256 with SHA-256, DER-encoded (OpenSSL's and cosign's default output).
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
    /// Ed25519 (pure, no pre-hash).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl SignatureAlgorithm {
    /// The spelling used in manifests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator observed about a plugin.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MmfPluginStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `SignatureVerified`, `ConfigValid` and `PolicyCompliant`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// `sha256:` digest of the signed payload, identifying exactly what was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The environment whose policy was applied (from the namespace label or the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}
