//! Typed environment policy, in MMF's snake_case spelling. Every struct rejects unknown keys so
//! a typo in a policy file fails loudly instead of silently weakening security.

use serde::{Deserialize, Serialize};

use crate::api::PluginRef;
use crate::core::signature::TrustedKey;

/// One environment's layered policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPolicy {
    /// Environment name (the file name); not part of the file.
    #[serde(skip)]
    pub name: String,
    /// Plugin loading and security settings.
    #[serde(default)]
    pub plugins: PluginsPolicy,
    /// Plugins enabled in every MmfService of the environment (a service may disable one with
    /// `enabled: false`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_plugins: Vec<PluginRef>,
}

/// A single layer is checked with the same type: every field has a default.
pub(super) type PolicyLayer = EnvironmentPolicy;

/// `plugins:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsPolicy {
    /// When false, services of the environment load no plugins at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// MMF runtime setting: discover plugins in `discovery_paths`.
    #[serde(default = "yes")]
    pub auto_discovery: bool,
    /// MMF runtime setting: where the framework looks for plugins.
    #[serde(default = "default_discovery_paths")]
    pub discovery_paths: Vec<String>,
    /// MMF runtime setting: where per-plugin settings live.
    #[serde(default = "default_config_dir")]
    pub config_dir: String,
    /// `strict` denies and blocks on violations; `lenient` warns and skips.
    #[serde(default)]
    pub loading: LoadingMode,
    /// Signatures, digests and sandboxing.
    #[serde(default)]
    pub security: SecurityPolicy,
}

/// How violations are handled (DESIGN.md section 5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadingMode {
    /// Deny at admission; block rollouts at reconcile.
    #[default]
    Strict,
    /// Admit with warnings; skip offending plugins.
    Lenient,
}

impl LoadingMode {
    /// How a violation is labelled in this mode: it fails (strict) or it warns (lenient).
    pub fn severity(self) -> &'static str {
        match self {
            LoadingMode::Strict => "error",
            LoadingMode::Lenient => "warning",
        }
    }

    /// The spelling used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadingMode::Strict => "strict",
            LoadingMode::Lenient => "lenient",
        }
    }
}

/// `plugins.security:` section. Defaults are the safe ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Plugins must carry a valid signature by a trusted key.
    #[serde(default = "yes")]
    pub require_signature: bool,
    /// Plugin images must be pinned by `@sha256:` digest.
    #[serde(default = "yes")]
    pub require_digest: bool,
    /// MmfService images must be pinned by `@sha256:` digest too (a `:latest` or tag-only
    /// image can change under a running service). Separate from `require_digest` so an
    /// environment can pin plugins without pinning services. Absent means false, so policy
    /// files written before this key keep admitting the services they admitted;
    /// `config/base.yaml` and the chart turn it on. Operator-only: not written into the
    /// framework's `mmf.yaml`, so turning it on rolls no pods.
    #[serde(default, skip_serializing)]
    pub require_service_digest: bool,
    /// Public keys signatures may be made with, parsed when the policy is read.
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKey>,
    /// Pod hardening and resource limits.
    #[serde(default)]
    pub sandboxing: Sandboxing,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            require_signature: true,
            require_digest: true,
            require_service_digest: false,
            trusted_keys: Vec::new(),
            sandboxing: Sandboxing::default(),
        }
    }
}

/// `plugins.security.sandboxing:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandboxing {
    /// Run pods with the `restricted` Pod Security Standard and enforce resource limits.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Per-container limits (and defaults when a service sets none).
    #[serde(default)]
    pub resource_limits: ResourceLimits,
}

impl Default for Sandboxing {
    fn default() -> Self {
        Sandboxing {
            enabled: true,
            resource_limits: ResourceLimits::default(),
        }
    }
}

/// Per-container resource ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Memory limit in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// CPU limit in percent of one CPU (30 means 300m).
    #[serde(default = "default_cpu_percent")]
    pub cpu_percent: u64,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            memory_mb: default_memory_mb(),
            cpu_percent: default_cpu_percent(),
        }
    }
}

impl ResourceLimits {
    /// Memory ceiling in bytes.
    pub fn memory_bytes(&self) -> u128 {
        u128::from(self.memory_mb) * 1024 * 1024
    }

    /// CPU ceiling in millicores.
    pub fn cpu_millis(&self) -> u128 {
        u128::from(self.cpu_percent) * 10
    }
}

impl Default for PluginsPolicy {
    fn default() -> Self {
        PluginsPolicy {
            enabled: true,
            auto_discovery: true,
            discovery_paths: default_discovery_paths(),
            config_dir: default_config_dir(),
            loading: LoadingMode::default(),
            security: SecurityPolicy::default(),
        }
    }
}

impl EnvironmentPolicy {
    /// Checks what types alone cannot: unique key ids, sane limits. (A key that does not
    /// parse is already rejected when the file is read.)
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for key in &self.plugins.security.trusted_keys {
            if !seen.insert(key.id()) {
                return Err(format!(
                    "plugins.security.trusted_keys: key id {:?} appears more than once",
                    key.id()
                ));
            }
        }
        let limits = &self.plugins.security.sandboxing.resource_limits;
        if limits.memory_mb == 0 || limits.cpu_percent == 0 {
            return Err(
                "plugins.security.sandboxing.resource_limits: memory_mb and cpu_percent must be greater than 0"
                    .to_owned(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for plugin in &self.default_plugins {
            if !names.insert(plugin.name.as_str()) {
                return Err(format!(
                    "default_plugins: plugin {:?} is listed more than once",
                    plugin.name
                ));
            }
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

fn default_discovery_paths() -> Vec<String> {
    vec!["./plugins".to_owned(), "/opt/mmf/plugins".to_owned()]
}

fn default_config_dir() -> String {
    "./config/plugins".to_owned()
}

fn default_memory_mb() -> u64 {
    256
}

fn default_cpu_percent() -> u64 {
    30
}
