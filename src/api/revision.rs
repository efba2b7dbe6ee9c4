//! `MmfPluginRevision`: an immutable snapshot of one version of an MmfPlugin.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::plugin::{MmfPlugin, MmfPluginSpec};

/// One version of an MmfPlugin exactly as the operator first saw it: the full spec (signature
/// included) and the digest of its signed payload. Named `<plugin>-<version>` and owned by the
/// MmfPlugin; services choose among the revisions of a plugin with
/// `spec.plugins[].version`. The spec is immutable: a change is refused by the API server.
// kube-derive takes one printcolumn(...) per column; clippy reads the repeats as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mmf.marty.dev",
    version = "v1alpha1",
    kind = "MmfPluginRevision",
    plural = "mmfpluginrevisions",
    singular = "mmfpluginrevision",
    namespaced,
    status = "MmfPluginRevisionStatus",
    shortname = "mmfpr",
    category = "mmf",
    derive = "PartialEq",
    doc = "An immutable snapshot of one version of an MmfPlugin (spec, signature and payload digest) that MmfServices can pin or follow.",
    printcolumn(
        name = "Plugin",
        type_ = "string",
        json_path = ".spec.plugin",
        description = "MmfPlugin this revision belongs to"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".spec.version",
        description = "Plugin version of this revision"
    ),
    printcolumn(
        name = "Verified",
        type_ = "boolean",
        json_path = ".status.verified",
        description = "Whether the revision is verified and complies in its namespace's environment"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("the spec of an MmfPluginRevision is immutable: apply a new plugin version instead"))]
pub struct MmfPluginRevisionSpec {
    /// Name of the MmfPlugin (in the same namespace) this is a revision of.
    #[schemars(length(min = 1, max = 253))]
    pub plugin: String,
    /// Plugin version of this revision (equal to `pluginSpec.version`).
    #[schemars(length(min = 1, max = 128))]
    pub version: String,
    /// `sha256:` digest of the signed payload of `pluginSpec`, the same digest the MmfPlugin's
    /// status reports.
    #[schemars(length(min = 1, max = 128))]
    pub digest: String,
    /// The full MmfPlugin spec of this version, signature included.
    pub plugin_spec: MmfPluginSpec,
}

/// The verdict on a revision in its namespace's environment.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MmfPluginRevisionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the revision's signature verified and it complies with the environment's
    /// policy; services load only verified revisions.
    #[serde(default)]
    pub verified: bool,
    /// Why the revision is not verified (the first violation), when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The environment whose policy was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Name of the revision of `plugin` at `version`: `<plugin>-<version>`, for example
/// `production-payment-1.1.0`. Characters a Kubernetes name cannot hold (the `+` of build
/// metadata, capitals of a pre-release) become `-` and lowercase.
pub fn revision_name(plugin: &str, version: &str) -> String {
    let version: String = version
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    format!("{plugin}-{version}")
}

/// Annotation on the MmfPlugin built from a revision ([`MmfPluginRevision::to_plugin`]), naming
/// the revision, so a service's status can say which revision it loads.
pub const REVISION_ANNOTATION: &str = "mmf.marty.dev/revision";

impl MmfPluginRevision {
    /// The plugin as this revision recorded it: named after the plugin, in the revision's
    /// namespace, annotated with the revision's name. This is what services load.
    pub fn to_plugin(&self) -> MmfPlugin {
        let mut plugin = MmfPlugin::new(&self.spec.plugin, self.spec.plugin_spec.clone());
        plugin.metadata.namespace = self.metadata.namespace.clone();
        plugin.metadata.annotations = Some(BTreeMap::from([(
            REVISION_ANNOTATION.to_owned(),
            self.metadata
                .name
                .clone()
                .unwrap_or_else(|| revision_name(&self.spec.plugin, &self.spec.version)),
        )]));
        plugin
    }
}

/// The revision a plugin object stands for, when it was built from one.
pub fn revision_of(plugin: &MmfPlugin) -> Option<&str> {
    plugin
        .metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)
        .map(String::as_str)
}
