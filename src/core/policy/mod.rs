//! The environment policy engine (DESIGN.md section 5): one implementation, called by
//! `mmf check`, `mmf render`, the admission webhook and the controller.
//!
//! [`evaluate_plugin`] judges a plugin on its own; [`evaluate_service`] (in `service.rs`)
//! resolves a service's plugins (environment defaults included), judges the service and
//! decides what to deploy.

mod choose;
mod outcome;
mod service;

pub use outcome::{Outcome, Scope, outcome};
pub use service::{
    Decision, PluginOutcome, ServiceEvaluation, evaluate_service, evaluate_service_with,
};

use serde_json::Value;

use super::plugin_config::{ConfigProblem, merged_config, validate_config};
use super::signature::{self, SignatureError, Verified};
use super::violation::{ObjectRef, Violation, ViolationKind};
use crate::api::{MmfPlugin, MmfService};
use crate::core::config::{ConfigSet, EnvironmentPolicy};
use crate::core::signature::TrustedKey;

/// Environment variables the operator sets; a service may not override them, or it could
/// claim another environment.
pub const RESERVED_ENV_VARS: [&str; 4] = [
    "MMF_ENVIRONMENT",
    "MMF_PLUGINS",
    "MMF_CONFIG_DIR",
    "MMF_PLUGIN_DIR",
];

/// What the signature check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verified against a trusted key.
    Verified(Verified),
    /// Not required here, and either absent or not checkable.
    NotRequired,
    /// Required (or present) and failed; the violation says why.
    Failed,
}

/// The verdict on one plugin in one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEvaluation {
    /// Every violation; in a lenient environment these are warnings.
    pub violations: Vec<Violation>,
    /// Signature outcome, for the `SignatureVerified` condition.
    pub signature: SignatureCheck,
    /// `sha256:` of the signed payload.
    pub digest: Option<String>,
    /// The plugin-level configuration (no service overrides) and whether it is valid.
    pub config: Value,
}

impl PluginEvaluation {
    /// True when nothing is wrong.
    pub fn is_compliant(&self) -> bool {
        self.violations.is_empty()
    }

    /// The first configuration violation, for the `ConfigValid` condition.
    pub fn config_violation(&self) -> Option<&Violation> {
        self.violations
            .iter()
            .find(|v| v.kind == ViolationKind::ConfigInvalid)
    }
}

pub(super) fn plugin_ref(plugin: &MmfPlugin) -> ObjectRef {
    ObjectRef {
        kind: "MmfPlugin",
        namespace: plugin.metadata.namespace.clone(),
        name: plugin.metadata.name.clone().unwrap_or_default(),
    }
}

pub(super) fn service_ref(service: &MmfService) -> ObjectRef {
    ObjectRef {
        kind: "MmfService",
        namespace: service.metadata.namespace.clone(),
        name: service.metadata.name.clone().unwrap_or_default(),
    }
}

/// How the policy checks a signature. The same plugin and keys always give the same verdict,
/// so the operator passes a verifier that remembers verdicts (an admission review re-judges
/// every plugin a service requests); the CLI verifies directly.
pub trait SignatureVerifier: Sync {
    /// [`signature::verify`], or a remembered result of it; `digest` is the `sha256:` digest of
    /// this plugin's payload when the caller has computed it already (it must be exactly that).
    fn verify(
        &self,
        plugin: &MmfPlugin,
        digest: Option<&str>,
        trusted: &[TrustedKey],
    ) -> Result<Verified, SignatureError>;
}

/// Verifies every time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Direct;

impl SignatureVerifier for Direct {
    fn verify(
        &self,
        plugin: &MmfPlugin,
        _digest: Option<&str>,
        trusted: &[TrustedKey],
    ) -> Result<Verified, SignatureError> {
        signature::verify(plugin, trusted)
    }
}

/// Judges a plugin on its own against `environment`: signature, digest pinning, a valid
/// version and dependency ranges, and its configuration against its schema.
pub fn evaluate_plugin(
    plugin: &MmfPlugin,
    environment: &EnvironmentPolicy,
    configs: &ConfigSet,
) -> PluginEvaluation {
    evaluate_plugin_with(plugin, environment, configs, &Direct)
}

/// [`evaluate_plugin`] with the signature checked by `verifier`.
pub fn evaluate_plugin_with(
    plugin: &MmfPlugin,
    environment: &EnvironmentPolicy,
    configs: &ConfigSet,
    verifier: &dyn SignatureVerifier,
) -> PluginEvaluation {
    let object = plugin_ref(plugin);
    let security = &environment.plugins.security;
    let mut violations = Vec::new();
    let violation = |kind, field: &str, message: String| Violation {
        kind,
        object: object.clone(),
        field: field.to_owned(),
        message,
    };

    let digest = signature::payload(plugin)
        .ok()
        .map(|payload| signature::digest(&payload));
    let signature = match verifier.verify(plugin, digest.as_deref(), &security.trusted_keys) {
        Ok(verified) => SignatureCheck::Verified(verified),
        Err(_) if !security.require_signature => SignatureCheck::NotRequired,
        Err(error) => {
            let kind = match error {
                SignatureError::Missing => ViolationKind::SignatureMissing,
                SignatureError::UntrustedKey { .. } => ViolationKind::UntrustedKey,
                _ => ViolationKind::SignatureInvalid,
            };
            violations.push(violation(kind, error.field(), error.to_string()));
            SignatureCheck::Failed
        }
    };

    if security.require_digest && !is_pinned_by_digest(&plugin.spec.image) {
        violations.push(violation(
            ViolationKind::ImageNotPinned,
            "spec.image",
            format!(
                "image {:?} is not pinned by digest: environment {} requires references of the form name@sha256:<64 hex digits>",
                plugin.spec.image, environment.name
            ),
        ));
    }

    if let Err(error) = semver::Version::parse(&plugin.spec.version) {
        violations.push(violation(
            ViolationKind::InvalidSpec,
            "spec.version",
            format!(
                "{:?} is not a semantic version ({error})",
                plugin.spec.version
            ),
        ));
    }
    let dependency_lists = [
        ("spec.dependencies", &plugin.spec.dependencies),
        (
            "spec.optionalDependencies",
            &plugin.spec.optional_dependencies,
        ),
    ];
    for (field, list) in dependency_lists {
        for (index, dependency) in list.iter().enumerate() {
            if let Err(error) = semver::VersionReq::parse(&dependency.version) {
                violations.push(violation(
                    ViolationKind::InvalidSpec,
                    &format!("{field}[{index}].version"),
                    format!(
                        "{:?} is not a semver requirement such as ^1.2 or >=1, <2 ({error})",
                        dependency.version
                    ),
                ));
            }
        }
    }

    let name = object.name.as_str();
    let config = merged_config(
        plugin,
        &environment.name,
        configs.plugin_settings(name),
        &[],
    );
    if let Err(problem) = validate_config(plugin, &config) {
        let (field, message) = describe_config_problem(&problem, "spec.config", &environment.name);
        violations.push(violation(ViolationKind::ConfigInvalid, &field, message));
    }

    PluginEvaluation {
        violations,
        signature,
        digest,
        config,
    }
}

pub(super) fn describe_config_problem(
    problem: &ConfigProblem,
    config_field: &str,
    environment: &str,
) -> (String, String) {
    match problem {
        ConfigProblem::BadSchema(error) => (
            "spec.configSchema".to_owned(),
            format!("not a usable JSON Schema: {error}"),
        ),
        ConfigProblem::Invalid(errors) => (
            config_field.to_owned(),
            format!(
                "merged configuration for environment {environment} does not match spec.configSchema: {}",
                errors.join("; ")
            ),
        ),
    }
}

/// True for `name@sha256:<64 lowercase hex>`.
pub fn is_pinned_by_digest(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(name, hex)| {
        !name.is_empty()
            && hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}
