//! Policy violations: what is wrong, on which object and field, and why, in words a person can
//! act on. Strict environments deny or block on them; lenient ones turn them into warnings.

use std::fmt;

use crate::api::conditions::reasons;

/// The kinds of violation of DESIGN.md section 5, plus invalid input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A signature is required and there is none.
    SignatureMissing,
    /// The signature does not verify, or is malformed.
    SignatureInvalid,
    /// The signature names a key the environment does not trust.
    UntrustedKey,
    /// The plugin image is not pinned by `@sha256:` digest.
    ImageNotPinned,
    /// Container resources above the environment's sandbox limits.
    LimitsExceeded,
    /// Configuration that does not validate against the plugin's schema (or a bad schema).
    ConfigInvalid,
    /// A required dependency is not enabled in the service.
    DependencyMissing,
    /// A dependency is enabled at a version outside the required range.
    DependencyVersionMismatch,
    /// Plugins that depend on each other in a loop.
    DependencyCycle,
    /// A service enables a plugin that does not exist in its namespace.
    PluginNotFound,
    /// A service enables a plugin that is itself in violation.
    PluginRejected,
    /// A field the types accept but the rules do not (a bad semver, a reserved variable).
    InvalidSpec,
    /// What the API server itself refuses: the CRD's structural schema or its CEL rules.
    SchemaInvalid,
}

impl ViolationKind {
    /// CamelCase condition reason for this kind.
    pub fn reason(self) -> &'static str {
        match self {
            ViolationKind::SignatureMissing => reasons::SIGNATURE_MISSING,
            ViolationKind::SignatureInvalid => reasons::SIGNATURE_INVALID,
            ViolationKind::UntrustedKey => reasons::UNTRUSTED_KEY,
            ViolationKind::ImageNotPinned => reasons::IMAGE_NOT_PINNED,
            ViolationKind::LimitsExceeded => reasons::LIMITS_EXCEEDED,
            ViolationKind::ConfigInvalid => reasons::CONFIG_INVALID,
            ViolationKind::DependencyMissing => reasons::DEPENDENCY_MISSING,
            ViolationKind::DependencyVersionMismatch => reasons::DEPENDENCY_VERSION_MISMATCH,
            ViolationKind::DependencyCycle => reasons::DEPENDENCY_CYCLE,
            ViolationKind::PluginNotFound => reasons::PLUGIN_NOT_FOUND,
            ViolationKind::PluginRejected => reasons::PLUGIN_REJECTED,
            ViolationKind::InvalidSpec => reasons::INVALID_SPEC,
            ViolationKind::SchemaInvalid => reasons::SCHEMA_INVALID,
        }
    }

    /// True when the violation depends on other objects (which may simply not be applied yet),
    /// rather than on the object alone. Admission treats these more gently than reconcile.
    pub fn is_referential(self) -> bool {
        matches!(
            self,
            ViolationKind::DependencyMissing
                | ViolationKind::DependencyVersionMismatch
                | ViolationKind::DependencyCycle
                | ViolationKind::PluginNotFound
                | ViolationKind::PluginRejected
        )
    }
}

/// The object a violation is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `MmfPlugin` or `MmfService`.
    pub kind: &'static str,
    /// Namespace, when known (offline manifests usually have none).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{}/{} (namespace {namespace})", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One policy violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What kind of rule was broken.
    pub kind: ViolationKind,
    /// The object.
    pub object: ObjectRef,
    /// Field path, for example `spec.signature` or `spec.plugins[0].config`.
    pub field: String,
    /// Why, and what to do about it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages that already start with their field path read better without a repeat.
        if self.message.starts_with(&self.field) {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{}: {}: {}", self.object, self.field, self.message)
        }
    }
}
