//! The admission decision as a pure function of the request, the policy and the caches, so
//! every answer the webhook can give is testable without a socket or a cluster.
//!
//! The policy engine is the one `mmf check` and the controller use; this module only decides
//! which violations block admission. Violations about the object itself block in a strict
//! environment. Violations about *other* objects (a plugin not applied yet, dependency problems,
//! a referenced plugin that is itself rejected) are warnings everywhere: `kubectl apply -f dir/`
//! applies files alphabetically and GitOps tools apply in any order, so a service may
//! legitimately arrive before its plugin. Reconcile enforces those.

use std::sync::Arc;

use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::{DynamicObject, Status};
use serde::de::DeserializeOwned;

use crate::api::{GROUP, MmfPlugin, MmfService, VERSION};
use crate::cluster_view::{ClusterView, environment_of};
use crate::config::ConfigSet;
use crate::core::limits::{MAX_DEPTH, check_depth};
use crate::core::policy::{
    Direct, Outcome, Scope, SignatureVerifier, evaluate_plugin_with, evaluate_service_with, outcome,
};
use crate::core::violation::Violation;

/// The two kinds this webhook judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewedKind {
    /// `mmfplugins`.
    Plugin,
    /// `mmfservices`.
    Service,
}

impl ReviewedKind {
    /// The kind as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewedKind::Plugin => "MmfPlugin",
            ReviewedKind::Service => "MmfService",
        }
    }
}

/// What the webhook answers, before it is shaped into an `AdmissionResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Admitted or not.
    pub allowed: bool,
    /// HTTP-style code of a denial: 403 for a policy "no", 400 for a request we cannot read.
    pub code: u16,
    /// CamelCase reason of a denial (`Forbidden`, `BadRequest`).
    pub reason: &'static str,
    /// The denial message the user sees (empty when allowed).
    pub message: String,
    /// One admission warning per line kubectl prints as `Warning: ...`.
    pub warnings: Vec<String>,
    /// The environment the decision was made for, when one was determined.
    pub environment: Option<String>,
    /// Admit, warn or deny (a request we cannot read is a denial).
    pub outcome: Outcome,
    /// Every policy violation found, for the audit record and the denial counters.
    pub violations: Vec<Violation>,
}

impl Verdict {
    fn allow(warnings: Vec<String>, environment: Option<String>) -> Verdict {
        Verdict {
            allowed: true,
            code: 0,
            reason: "",
            message: String::new(),
            outcome: if warnings.is_empty() {
                Outcome::Admit
            } else {
                Outcome::Warn
            },
            warnings,
            environment,
            violations: Vec::new(),
        }
    }

    fn forbid(message: String, warnings: Vec<String>, environment: Option<String>) -> Verdict {
        Verdict {
            allowed: false,
            code: 403,
            reason: "Forbidden",
            message,
            warnings,
            environment,
            outcome: Outcome::Deny,
            violations: Vec::new(),
        }
    }

    fn bad_request(message: String) -> Verdict {
        Verdict {
            allowed: false,
            code: 400,
            reason: "BadRequest",
            message,
            warnings: Vec::new(),
            environment: None,
            outcome: Outcome::Deny,
            violations: Vec::new(),
        }
    }

    /// The `AdmissionResponse` for `request` (same uid, same apiVersion).
    pub fn into_response(self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let mut response = AdmissionResponse::from(request);
        if !self.allowed {
            response = response.deny(&self.message);
            response.result = Status::failure(&self.message, self.reason).with_code(self.code);
        }
        if !self.warnings.is_empty() {
            response.warnings = Some(self.warnings);
        }
        response
    }
}

/// Which of our kinds a request is about, or None for anything else (a misconfigured
/// ValidatingWebhookConfiguration).
pub fn reviewed_kind(request: &AdmissionRequest<DynamicObject>) -> Option<ReviewedKind> {
    if request.resource.group != GROUP {
        return None;
    }
    match request.resource.resource.as_str() {
        "mmfplugins" => Some(ReviewedKind::Plugin),
        "mmfservices" => Some(ReviewedKind::Service),
        _ => None,
    }
}

/// Judges one admission request. Never fails: every problem becomes a denial that says what
/// is wrong, so the API server shows it to the user instead of a generic webhook error.
pub fn review(
    request: &AdmissionRequest<DynamicObject>,
    config: &ConfigSet,
    default_environment: &str,
    view: &dyn ClusterView,
) -> AdmissionResponse {
    decide(request, config, default_environment, view).into_response(request)
}

/// [`review`] before it is shaped into an `AdmissionResponse`.
pub fn decide(
    request: &AdmissionRequest<DynamicObject>,
    config: &ConfigSet,
    default_environment: &str,
    view: &dyn ClusterView,
) -> Verdict {
    decide_with(request, config, default_environment, view, &Direct)
}

/// [`decide`] with signatures checked by `verifier` (the operator's verdict cache).
pub fn decide_with(
    request: &AdmissionRequest<DynamicObject>,
    config: &ConfigSet,
    default_environment: &str,
    view: &dyn ClusterView,
    verifier: &dyn SignatureVerifier,
) -> Verdict {
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return Verdict::allow(Vec::new(), None);
    }
    // The configuration never matches subresources; status writes are the controller's own.
    if request
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Verdict::allow(Vec::new(), None);
    }
    let Some(kind) = reviewed_kind(request) else {
        let gvr = &request.resource;
        let group = if gvr.group.is_empty() {
            "core".to_owned()
        } else {
            gvr.group.clone()
        };
        return Verdict::bad_request(format!(
            "mmf-operator validates only mmfplugins and mmfservices of {GROUP}, but this request is for {} of {group}/{}: fix the rules of the ValidatingWebhookConfiguration",
            gvr.resource, gvr.version
        ));
    };
    let Some(object) = request.object.as_ref() else {
        return Verdict::bad_request(format!(
            "the AdmissionReview for {} {:?} has no request.object to validate",
            kind.as_str(),
            request.name
        ));
    };
    if let Err(too_deep) = check_depth(&object.data, "", MAX_DEPTH) {
        return Verdict::bad_request(format!("{} {:?}: {too_deep}", kind.as_str(), request.name));
    }
    let Some(namespace) = request
        .namespace
        .clone()
        .or_else(|| object.metadata.namespace.clone())
        .filter(|n| !n.is_empty())
    else {
        return Verdict::bad_request(format!(
            "{} {:?} has no namespace: {} objects are namespaced",
            kind.as_str(),
            request.name,
            kind.as_str()
        ));
    };

    let mut warnings = Vec::new();
    if view.namespace_labels(&namespace).is_none() {
        warnings.push(format!(
            "namespace {namespace} is not in mmf-operator's cache yet: validated with the default environment {default_environment}"
        ));
    }
    let (environment_name, policy) = environment_of(view, config, default_environment, &namespace);
    let policy = match policy {
        Ok(policy) => policy,
        Err(error) => {
            return Verdict::forbid(
                format!(
                    "mmf-operator denied this {}: the environment of namespace {namespace} cannot be used: {error}",
                    kind.as_str()
                ),
                warnings,
                Some(environment_name),
            );
        }
    };

    let violations = match kind {
        ReviewedKind::Plugin => {
            let plugin: MmfPlugin = match typed(object, &namespace, kind) {
                Ok(plugin) => plugin,
                Err(message) => return Verdict::bad_request(message),
            };
            evaluate_plugin_with(&plugin, policy, config, verifier).violations
        }
        ReviewedKind::Service => {
            let service: MmfService = match typed(object, &namespace, kind) {
                Ok(service) => service,
                Err(message) => return Verdict::bad_request(message),
            };
            let plugins: Vec<Arc<MmfPlugin>> = view.candidates_in(&namespace);
            let available: Vec<&MmfPlugin> = plugins.iter().map(Arc::as_ref).collect();
            evaluate_service_with(&service, policy, config, &available, verifier).violations
        }
    };

    let judged = outcome(&violations, policy.plugins.loading, Scope::Admission);
    if judged == Outcome::Deny && !spec_unchanged(request) {
        let mut verdict = Verdict::forbid(
            denial_message(kind, &environment_name, &violations),
            warnings,
            Some(environment_name),
        );
        verdict.violations = violations;
        return verdict;
    }
    warnings.extend(violations.iter().map(Violation::to_string));
    let mut verdict = Verdict::allow(warnings, Some(environment_name));
    verdict.violations = violations;
    verdict
}

/// An update that leaves `spec` as it was (labels, annotations, finalizers) is not re-judged:
/// an object admitted before a policy change must stay editable and deletable; reconcile
/// reports its violations.
fn spec_unchanged(request: &AdmissionRequest<DynamicObject>) -> bool {
    if request.operation != Operation::Update {
        return false;
    }
    match (&request.object, &request.old_object) {
        (Some(new), Some(old)) => new.data.get("spec") == old.data.get("spec"),
        _ => false,
    }
}

fn denial_message(kind: ReviewedKind, environment: &str, violations: &[Violation]) -> String {
    let mut message = format!(
        "mmf-operator denied this {}: the {environment} environment is strict and the object violates its policy:",
        kind.as_str()
    );
    for violation in violations {
        message.push('\n');
        message.push_str(&violation.to_string());
    }
    message
}

/// Reads the object as our type. The API server has already checked it against the CRD
/// schema, so this fails only on a schema mismatch between operator and CRD versions.
fn typed<T: DeserializeOwned>(
    object: &DynamicObject,
    namespace: &str,
    kind: ReviewedKind,
) -> Result<T, String> {
    let mut value = serde_json::to_value(object).map_err(|e| {
        format!(
            "{} cannot be read back as JSON ({e}); this is a bug in mmf-operator",
            kind.as_str()
        )
    })?;
    if let Some(metadata) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        metadata.insert("namespace".to_owned(), namespace.into());
    }
    serde_json::from_value(value).map_err(|e| {
        format!(
            "{} {:?} does not match the {} schema this operator understands ({e}): check that the installed CRD and the operator are the same version",
            kind.as_str(),
            object.metadata.name.clone().unwrap_or_default(),
            VERSION
        )
    })
}
