//! Condition types and reasons, named once so the controller, the CLI and the tests agree.

/// Condition types.
pub mod types {
    /// Summary condition read by `kubectl wait`, Argo CD and Flux.
    pub const READY: &str = "Ready";
    /// The plugin's signature checks out against a trusted key (or none is required).
    pub const SIGNATURE_VERIFIED: &str = "SignatureVerified";
    /// The plugin's default configuration validates against its schema.
    pub const CONFIG_VALID: &str = "ConfigValid";
    /// The object complies with its namespace's environment policy.
    pub const POLICY_COMPLIANT: &str = "PolicyCompliant";
    /// Every plugin a service asks for was found and its dependencies are satisfied.
    pub const PLUGINS_RESOLVED: &str = "PluginsResolved";
    /// The service's Deployment reports the minimum number of available replicas.
    pub const AVAILABLE: &str = "Available";
    /// kstatus: work is under way.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus: progress is blocked until the user changes something.
    pub const STALLED: &str = "Stalled";
}

/// CamelCase reasons.
pub mod reasons {
    pub const RECONCILING: &str = "Reconciling";
    pub const READY: &str = "Ready";
    pub const VERIFIED: &str = "Verified";
    pub const NOT_REQUIRED: &str = "NotRequired";
    pub const SIGNATURE_MISSING: &str = "SignatureMissing";
    pub const SIGNATURE_INVALID: &str = "SignatureInvalid";
    pub const UNTRUSTED_KEY: &str = "UntrustedKey";
    pub const IMAGE_NOT_PINNED: &str = "ImageNotPinned";
    pub const LIMITS_EXCEEDED: &str = "LimitsExceeded";
    pub const CONFIG_INVALID: &str = "ConfigInvalid";
    pub const CONFIG_VALID_REASON: &str = "ConfigValid";
    pub const DEPENDENCY_MISSING: &str = "DependencyMissing";
    pub const DEPENDENCY_VERSION_MISMATCH: &str = "DependencyVersionMismatch";
    pub const DEPENDENCY_CYCLE: &str = "DependencyCycle";
    pub const PLUGIN_NOT_FOUND: &str = "PluginNotFound";
    pub const PLUGIN_REJECTED: &str = "PluginRejected";
    pub const UNKNOWN_ENVIRONMENT: &str = "UnknownEnvironment";
    /// A Deployment, ConfigMap or Service of the service's name exists and is not its own.
    pub const CHILD_NOT_OWNED: &str = "ChildNotOwned";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const SCHEMA_INVALID: &str = "SchemaInvalid";
    pub const COMPLIANT: &str = "Compliant";
    pub const COMPLIANT_WITH_WARNINGS: &str = "CompliantWithWarnings";
    pub const POLICY_VIOLATION: &str = "PolicyViolation";
    pub const RESOLVED: &str = "Resolved";
    pub const RESOLVED_WITH_SKIPS: &str = "ResolvedWithSkips";
    /// Resolved, but a followed plugin stays on an older revision because its newest matching
    /// one was rejected.
    pub const LAST_KNOWN_GOOD: &str = "LastKnownGood";
    /// An MmfPluginRevision of the plugin's version exists with a different digest.
    pub const REVISION_DIGEST_CONFLICT: &str = "RevisionDigestConflict";
    pub const DEPLOYMENT_AVAILABLE: &str = "DeploymentAvailable";
    pub const DEPLOYMENT_UNAVAILABLE: &str = "DeploymentUnavailable";
    pub const ROLLOUT_BLOCKED: &str = "RolloutBlocked";
}
