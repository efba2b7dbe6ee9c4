//! Audit records: one JSON object per plugin operation, for the security team (the Events are
//! for the service owner). The schema is documented in README.md ("Audit trail"); a change
//! that removes or renames a field bumps [`SCHEMA`].
//!
//! Pure: the time is an argument, and the shell (`crate::audit`) writes the records. A record
//! names objects by namespace, name, uid and generation and never carries a spec, a
//! configuration value or a key: violation messages that may quote configuration values
//! (`ConfigInvalid`, and `PluginRejected`, which repeats the plugin's first violation) are left
//! out, their reason and field are kept.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation as AdmissionOperation};
use serde::Serialize;

use super::policy::Outcome;
use super::status::SignatureVerdict;
use super::violation::{Violation, ViolationKind};
use crate::api::{MmfPlugin, MmfService, PluginLoadState};

/// The schema of every record, in each record's `schema` field.
pub const SCHEMA: &str = "mmf.marty.dev/audit/v1";

/// The tracing target audit records are emitted on, so they can be routed apart.
pub const TARGET: &str = "mmf::audit";

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// When it happened, RFC 3339 UTC.
    pub time: String,
    /// The object operated on.
    pub object: AuditObject,
    /// What happened; serialized flat, with an `operation` field naming the variant.
    #[serde(flatten)]
    pub details: Details,
}

impl AuditRecord {
    /// The `operation` field, for `mmf_audit_records_total{operation}`.
    pub fn operation(&self) -> &'static str {
        match self.details {
            Details::Admission { .. } => "admission",
            Details::SignatureVerdict { .. } => "signature_verdict",
            Details::ServicePlugin { .. } => "service_plugin",
            Details::PolicyReload { .. } => "policy_reload",
        }
    }
}

/// Which object a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditObject {
    /// `MmfPlugin`, `MmfService`, or `EnvironmentConfig` for a policy reload.
    pub kind: String,
    /// Namespace (none for the environment config).
    pub namespace: Option<String>,
    /// `metadata.name` (the config directory for a reload).
    pub name: String,
    /// `metadata.uid`, when assigned.
    pub uid: Option<String>,
    /// `metadata.generation`, when assigned.
    pub generation: Option<i64>,
}

/// The requesting user, from the AdmissionReview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditUser {
    /// `userInfo.username`.
    pub username: Option<String>,
    /// `userInfo.uid`.
    pub uid: Option<String>,
    /// `userInfo.groups`.
    pub groups: Vec<String>,
}

/// One violation, without anything that may quote a configuration value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditViolation {
    /// The CamelCase reason (`SignatureMissing`).
    pub reason: &'static str,
    /// `MmfPlugin/name` or `MmfService/name`.
    pub object: String,
    /// The field path.
    pub field: String,
    /// The message, unless it may quote configuration values.
    pub message: Option<String>,
}

impl From<&Violation> for AuditViolation {
    fn from(violation: &Violation) -> AuditViolation {
        let quotes_values = matches!(
            violation.kind,
            ViolationKind::ConfigInvalid | ViolationKind::PluginRejected
        );
        AuditViolation {
            reason: violation.kind.reason(),
            object: format!("{}/{}", violation.object.kind, violation.object.name),
            field: violation.field.clone(),
            message: (!quotes_values).then(|| violation.message.clone()),
        }
    }
}

/// A signature verdict as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerdict {
    /// `verified`, `not_required` or `rejected`.
    pub verdict: &'static str,
    /// The condition reason (`Verified`, `SignatureMissing`, ...).
    pub reason: String,
}

impl From<&SignatureVerdict> for AuditVerdict {
    fn from(verdict: &SignatureVerdict) -> AuditVerdict {
        AuditVerdict {
            verdict: verdict.as_str(),
            reason: verdict.reason().to_owned(),
        }
    }
}

/// The plugin a service record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPlugin {
    /// Its name.
    pub name: String,
    /// Its version, when it exists.
    pub version: Option<String>,
    /// `sha256:` of its signed payload.
    pub digest: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Details {
    /// The webhook decided on an MmfPlugin or MmfService.
    Admission {
        /// Who asked.
        user: AuditUser,
        /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
        request: &'static str,
        /// The AdmissionReview's uid.
        request_uid: String,
        /// `kubectl --dry-run=server` and similar: nothing was stored.
        dry_run: bool,
        /// The environment the decision was made for.
        environment: Option<String>,
        /// `admit`, `warn` or `deny`.
        outcome: &'static str,
        /// Every violation found.
        violations: Vec<AuditViolation>,
    },
    /// A plugin's signature verdict changed.
    SignatureVerdict {
        /// The plugin's environment.
        environment: String,
        /// Before.
        from: AuditVerdict,
        /// Now.
        to: AuditVerdict,
        /// `spec.signature.keyId`, when signed.
        key_id: Option<String>,
        /// `spec.signature.algorithm`, when signed.
        algorithm: Option<String>,
        /// `sha256:` of the signed payload (what a signature covers).
        payload_digest: Option<String>,
    },
    /// A plugin was loaded, skipped or rejected for a service.
    ServicePlugin {
        /// The service's environment.
        environment: String,
        /// The plugin.
        plugin: AuditPlugin,
        /// The state before (none: newly requested).
        from: Option<&'static str>,
        /// `loaded`, `skipped` or `rejected`.
        to: &'static str,
        /// Why it is not loaded.
        reason: Option<String>,
        /// The whole rollout is blocked by a strict environment.
        rollout_blocked: bool,
    },
    /// The environment config was re-read after its files changed.
    PolicyReload {
        /// `applied`, or `refused` (a file does not parse; the previous config stays).
        result: &'static str,
        /// Why it was refused.
        error: Option<String>,
        /// `sha256:<hex>` of each file before, by path relative to the directory.
        files_before: BTreeMap<String, String>,
        /// The same after the change.
        files_after: BTreeMap<String, String>,
    },
}

fn time(now: Timestamp) -> String {
    now.to_string()
}

/// The spelling of a load state in records.
pub fn load_state(state: PluginLoadState) -> &'static str {
    match state {
        PluginLoadState::Loaded => "loaded",
        PluginLoadState::Skipped => "skipped",
        PluginLoadState::Rejected => "rejected",
    }
}

fn request_operation(operation: &AdmissionOperation) -> &'static str {
    match operation {
        AdmissionOperation::Create => "CREATE",
        AdmissionOperation::Update => "UPDATE",
        AdmissionOperation::Delete => "DELETE",
        AdmissionOperation::Connect => "CONNECT",
    }
}

/// The record of one admission decision on `kind` (`MmfPlugin` or `MmfService`).
pub fn admission_record(
    now: Timestamp,
    request: &AdmissionRequest<DynamicObject>,
    kind: &str,
    environment: Option<&str>,
    outcome: Outcome,
    violations: &[Violation],
) -> AuditRecord {
    // The object being written, or the stored one for a delete.
    let metadata = request
        .object
        .as_ref()
        .or(request.old_object.as_ref())
        .map(|o| &o.metadata);
    let user = &request.user_info;
    AuditRecord {
        schema: SCHEMA,
        time: time(now),
        object: AuditObject {
            kind: kind.to_owned(),
            namespace: request
                .namespace
                .clone()
                .or_else(|| metadata.and_then(|m| m.namespace.clone())),
            name: if request.name.is_empty() {
                metadata.and_then(|m| m.name.clone()).unwrap_or_default()
            } else {
                request.name.clone()
            },
            uid: metadata.and_then(|m| m.uid.clone()),
            generation: metadata.and_then(|m| m.generation),
        },
        details: Details::Admission {
            user: AuditUser {
                username: user.username.clone(),
                uid: user.uid.clone(),
                groups: user.groups.clone().unwrap_or_default(),
            },
            request: request_operation(&request.operation),
            request_uid: request.uid.clone(),
            dry_run: request.dry_run,
            environment: environment.map(str::to_owned),
            outcome: outcome.as_str(),
            violations: violations.iter().map(AuditViolation::from).collect(),
        },
    }
}

fn object_of<K: kube::Resource>(kind: &str, object: &K) -> AuditObject {
    let metadata = object.meta();
    AuditObject {
        kind: kind.to_owned(),
        namespace: metadata.namespace.clone(),
        name: metadata.name.clone().unwrap_or_default(),
        uid: metadata.uid.clone(),
        generation: metadata.generation,
    }
}

/// The record of a plugin's signature verdict changing from `from` to `to`; `digest` is the
/// payload digest the operator computed (`status.digest`).
pub fn signature_record(
    now: Timestamp,
    plugin: &MmfPlugin,
    environment: &str,
    from: &SignatureVerdict,
    to: &SignatureVerdict,
    digest: Option<&str>,
) -> AuditRecord {
    let signature = plugin.spec.signature.as_ref();
    AuditRecord {
        schema: SCHEMA,
        time: time(now),
        object: object_of("MmfPlugin", plugin),
        details: Details::SignatureVerdict {
            environment: environment.to_owned(),
            from: from.into(),
            to: to.into(),
            key_id: signature.map(|s| s.key_id.clone()),
            algorithm: signature.map(|s| s.algorithm.to_string()),
            payload_digest: digest.map(str::to_owned),
        },
    }
}

/// What changed for one plugin of a service (from a
/// [`ServiceAnnouncement::PluginState`](super::status::ServiceAnnouncement::PluginState)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginChange<'a> {
    /// The plugin.
    pub plugin: AuditPlugin,
    /// Before.
    pub from: Option<PluginLoadState>,
    /// Now.
    pub to: PluginLoadState,
    /// Why not loaded.
    pub reason: Option<&'a str>,
    /// The rollout is blocked.
    pub blocked: bool,
}

/// The record of a plugin being loaded, skipped or rejected for `service`.
pub fn service_plugin_record(
    now: Timestamp,
    service: &MmfService,
    environment: &str,
    change: PluginChange<'_>,
) -> AuditRecord {
    AuditRecord {
        schema: SCHEMA,
        time: time(now),
        object: object_of("MmfService", service),
        details: Details::ServicePlugin {
            environment: environment.to_owned(),
            plugin: change.plugin,
            from: change.from.map(load_state),
            to: load_state(change.to),
            reason: change.reason.map(str::to_owned),
            rollout_blocked: change.blocked,
        },
    }
}

/// The record of a reload of the config directory `dir`: applied (`error` None) or refused.
pub fn reload_record(
    now: Timestamp,
    dir: &str,
    error: Option<&str>,
    files_before: BTreeMap<String, String>,
    files_after: BTreeMap<String, String>,
) -> AuditRecord {
    AuditRecord {
        schema: SCHEMA,
        time: time(now),
        object: AuditObject {
            kind: "EnvironmentConfig".to_owned(),
            namespace: None,
            name: dir.to_owned(),
            uid: None,
            generation: None,
        },
        details: Details::PolicyReload {
            result: if error.is_some() {
                "refused"
            } else {
                "applied"
            },
            error: error.map(str::to_owned),
            files_before,
            files_after,
        },
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
