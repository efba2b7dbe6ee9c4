//! The custom resources of `mmf.marty.dev/v1alpha1`, as the cluster and the CLI see them.
//!
//! These types are the API contract of DESIGN.md section 1. Defaults live in the schema (and in
//! serde, so offline input behaves exactly like input the API server has defaulted); the operator
//! never writes back into a user's `spec`.

pub mod conditions;
pub mod plugin;
pub mod revision;
mod schema;
pub mod service;

pub use plugin::{
    DEFAULT_REVISION_HISTORY_LIMIT, MmfPlugin, MmfPluginSpec, MmfPluginStatus, PluginDependency,
    PluginSignature, RateLimit, Route, ServiceDefinition, SignatureAlgorithm,
};
pub use revision::{
    MmfPluginRevision, MmfPluginRevisionSpec, MmfPluginRevisionStatus, REVISION_ANNOTATION,
    revision_name, revision_of,
};
pub use service::{
    MetricsSpec, MmfService, MmfServiceSpec, MmfServiceStatus, PluginLoadState, PluginRef,
    PluginStatus, ProbesSpec, ServiceType,
};

/// API group of every mmf-operator resource.
pub const GROUP: &str = "mmf.marty.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "mmf.marty.dev/v1alpha1";
/// Namespace label that selects the environment policy for every object in the namespace.
pub const ENVIRONMENT_LABEL: &str = "mmf.marty.dev/environment";
/// Pod-template annotation whose change rolls the pods when configuration changes.
pub const CONFIG_HASH_ANNOTATION: &str = "mmf.marty.dev/config-hash";
/// Label on every object the operator creates, naming who manages it (the owned children are
/// watched through it).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on the operator's objects.
pub const MANAGED_BY: &str = "mmf-operator";

/// The label selector of the operator's own objects: `app.kubernetes.io/managed-by=mmf-operator`.
pub fn managed_by_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

/// Field manager for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "mmf-operator";
