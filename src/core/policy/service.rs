//! Judging an MmfService: its own rules, then its plugins resolved among the plugins of its
//! namespace, then the decision to deploy or to leave the running Deployment alone.

use std::collections::BTreeMap;

use serde_json::Value;

use super::choose::{Judge, choose};
use super::outcome::{Outcome, Scope, outcome};
use super::{Direct, RESERVED_ENV_VARS, SignatureVerifier, is_pinned_by_digest, service_ref};
use crate::api::{MmfPlugin, MmfService, PluginLoadState, revision_name, revision_of};
use crate::core::config::{ConfigSet, EnvironmentPolicy, LoadingMode};
use crate::core::quantity::MilliQuantity;
use crate::core::resolve::Requested;
use crate::core::solve::LastKnownGood;
use crate::core::violation::{ObjectRef, Violation, ViolationKind};

/// What the operator does with a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Render and apply with the loaded plugins.
    Deploy,
    /// Strict environment with violations: leave whatever runs untouched.
    Blocked,
}

/// One requested plugin after resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOutcome<'a> {
    /// Plugin name.
    pub name: String,
    /// The revision loaded (or, when not loaded, the one that was judged), when found.
    pub plugin: Option<&'a MmfPlugin>,
    /// Loaded, skipped or rejected.
    pub state: PluginLoadState,
    /// Why not loaded.
    pub reason: Option<String>,
    /// Merged configuration (service overrides included), for loaded plugins.
    pub config: Value,
    /// Digest of the plugin's signed payload.
    pub digest: Option<String>,
    /// The version requirement the service asked for (`*` when unset).
    pub requested: String,
    /// Name of the MmfPluginRevision loaded, when the version came from one.
    pub revision: Option<String>,
    /// Set when a newer matching revision was rejected and an older good one loads.
    pub last_known_good: Option<LastKnownGood>,
}

/// The verdict on a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEvaluation<'a> {
    /// Loading mode of the environment.
    pub mode: LoadingMode,
    /// Every violation (warnings in lenient mode).
    pub violations: Vec<Violation>,
    /// Requested plugins: loaded ones in load order, then the rest in request order.
    pub plugins: Vec<PluginOutcome<'a>>,
    /// Deploy or leave alone.
    pub decision: Decision,
}

impl ServiceEvaluation<'_> {
    /// Loaded plugins in load order.
    pub fn loaded(&self) -> impl Iterator<Item = &PluginOutcome<'_>> {
        self.plugins
            .iter()
            .filter(|p| p.state == PluginLoadState::Loaded)
    }
}

/// Judges a service and resolves its plugins among `available` (the plugins of its namespace).
pub fn evaluate_service<'a>(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    configs: &ConfigSet,
    available: &[&'a MmfPlugin],
) -> ServiceEvaluation<'a> {
    evaluate_service_with(service, environment, configs, available, &Direct)
}

/// [`evaluate_service`] with plugin signatures checked by `verifier`.
pub fn evaluate_service_with<'a>(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    configs: &ConfigSet,
    available: &[&'a MmfPlugin],
    verifier: &dyn SignatureVerifier,
) -> ServiceEvaluation<'a> {
    let object = service_ref(service);
    let mut violations = service_violations(service, environment, &object);
    let (requested, overrides) =
        requested_plugins(service, environment, available, &object, &mut violations);
    let mode = environment.plugins.loading;
    let mut unloaded: BTreeMap<String, String> = BTreeMap::new();

    if !environment.plugins.enabled {
        for request in &requested {
            unloaded.insert(
                request.name.clone(),
                format!("plugins are disabled in environment {}", environment.name),
            );
        }
    }

    let judge = Judge {
        environment,
        configs,
        verifier,
        object: &object,
    };
    let mut choice = choose(&requested, &overrides, &judge, unloaded, &mut violations);
    let order = std::mem::take(&mut choice.order);
    let decision = if outcome(&violations, mode, Scope::Rollout) == Outcome::Deny {
        Decision::Blocked
    } else {
        Decision::Deploy
    };
    let mut plugins = Vec::with_capacity(requested.len());
    let blocked = decision == Decision::Blocked;
    for name in &order {
        let (Some(request), Some(chosen)) = (
            requested.iter().find(|r| &r.name == name),
            choice.chosen.remove(name),
        ) else {
            continue;
        };
        plugins.push(PluginOutcome {
            name: name.clone(),
            requested: request.requirement.clone(),
            // A version loaded from the MmfPlugin itself is the revision the plugin controller
            // records for it: naming it at once spares a status write when that record appears.
            revision: Some(revision_of(chosen.plugin).map_or_else(
                || revision_name(name, &chosen.plugin.spec.version),
                str::to_owned,
            )),
            plugin: Some(chosen.plugin),
            state: if blocked {
                PluginLoadState::Skipped
            } else {
                PluginLoadState::Loaded
            },
            reason: blocked.then(|| {
                format!(
                    "not rolled out: the service violates the {} policy",
                    environment.name
                )
            }),
            config: chosen.config,
            digest: chosen.evaluation.digest,
            last_known_good: chosen.last_known_good,
        });
    }
    for request in &requested {
        if let Some(reason) = choice.unloaded.get(&request.name) {
            let state = if mode == LoadingMode::Strict && !environment.plugins.enabled {
                PluginLoadState::Skipped
            } else if mode == LoadingMode::Strict {
                PluginLoadState::Rejected
            } else {
                PluginLoadState::Skipped
            };
            let shown = choice.shown.get(&request.name);
            plugins.push(PluginOutcome {
                name: request.name.clone(),
                requested: request.requirement.clone(),
                revision: shown.and_then(|(plugin, _)| revision_of(plugin).map(str::to_owned)),
                plugin: shown.map(|(plugin, _)| *plugin),
                state,
                reason: Some(reason.clone()),
                config: Value::Null,
                digest: shown.and_then(|(_, digest)| digest.clone()),
                last_known_good: None,
            });
        }
    }
    ServiceEvaluation {
        mode,
        violations,
        plugins,
        decision,
    }
}

/// Combines the environment's default plugins with the service's own entries (the service's
/// entry wins on `enabled`, `priority` and `version`; configs apply defaults first, then the
/// service's). Each request carries every version of its plugin in `available`.
fn requested_plugins<'a>(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    available: &[&'a MmfPlugin],
    object: &ObjectRef,
    violations: &mut Vec<Violation>,
) -> (Vec<Requested<'a>>, BTreeMap<String, Vec<Value>>) {
    struct Entry {
        name: String,
        enabled: bool,
        priority: i32,
        field: String,
        version: Option<String>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut overrides: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (index, default) in environment.default_plugins.iter().enumerate() {
        entries.push(Entry {
            name: default.name.clone(),
            enabled: default.enabled,
            priority: default.priority,
            field: format!(
                "spec.plugins (default_plugins[{index}] of environment {})",
                environment.name
            ),
            version: default.version.clone(),
        });
        if let Some(config) = &default.config {
            overrides
                .entry(default.name.clone())
                .or_default()
                .push(config.clone());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (index, entry) in service.spec.plugins.iter().enumerate() {
        let field = format!("spec.plugins[{index}]");
        if !seen.insert(entry.name.clone()) {
            violations.push(Violation {
                kind: ViolationKind::InvalidSpec,
                object: object.clone(),
                field: format!("{field}.name"),
                message: format!("plugin {:?} is listed more than once", entry.name),
            });
            continue;
        }
        if let Some(config) = &entry.config {
            overrides
                .entry(entry.name.clone())
                .or_default()
                .push(config.clone());
        }
        match entries.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => {
                existing.enabled = entry.enabled;
                existing.priority = entry.priority;
                existing.field = field;
                if entry.version.is_some() {
                    existing.version = entry.version.clone();
                }
            }
            None => entries.push(Entry {
                name: entry.name.clone(),
                enabled: entry.enabled,
                priority: entry.priority,
                field,
                version: entry.version.clone(),
            }),
        }
    }
    let requested = entries
        .into_iter()
        .filter(|entry| entry.enabled)
        .map(|entry| Requested {
            candidates: versions_of(available, &entry.name),
            requirement: entry.version.unwrap_or_else(|| "*".to_owned()),
            name: entry.name,
            priority: entry.priority,
            field: entry.field,
        })
        .collect();
    (requested, overrides)
}

/// Every version of plugin `name` in `available`, one object per version: a revision wins over
/// the MmfPlugin at the same version (the revision is the immutable record of what was first
/// seen), otherwise the first object listed wins.
fn versions_of<'a>(available: &[&'a MmfPlugin], name: &str) -> Vec<&'a MmfPlugin> {
    let mut versions: Vec<&'a MmfPlugin> = Vec::new();
    for plugin in available
        .iter()
        .copied()
        .filter(|p| p.metadata.name.as_deref() == Some(name))
    {
        match versions
            .iter_mut()
            .find(|known| known.spec.version == plugin.spec.version)
        {
            Some(known) if revision_of(known).is_none() && revision_of(plugin).is_some() => {
                *known = plugin;
            }
            Some(_) => {}
            None => versions.push(plugin),
        }
    }
    versions
}

/// Rules on the service object itself: an image pinned by digest (when required), resource
/// limits within the sandbox, no reserved environment variables.
fn service_violations(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    object: &ObjectRef,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    if environment.plugins.security.require_service_digest
        && !is_pinned_by_digest(&service.spec.image)
    {
        violations.push(Violation {
            kind: ViolationKind::ImageNotPinned,
            object: object.clone(),
            field: "spec.image".to_owned(),
            message: format!(
                "image {:?} is not pinned by digest: environment {} requires references of the form name@sha256:<64 hex digits>",
                service.spec.image, environment.name
            ),
        });
    }
    let sandboxing = &environment.plugins.security.sandboxing;
    if sandboxing.enabled {
        let limits = &sandboxing.resource_limits;
        let ceilings = [
            (
                "memory",
                MilliQuantity::from_units(limits.memory_bytes() as i128),
                format!("{}Mi", limits.memory_mb),
            ),
            (
                "cpu",
                MilliQuantity(limits.cpu_millis() as i128),
                format!("{}m", limits.cpu_millis()),
            ),
        ];
        let resources = service.spec.resources.as_ref();
        for section in ["limits", "requests"] {
            let values = resources.and_then(|r| {
                if section == "limits" {
                    r.limits.as_ref()
                } else {
                    r.requests.as_ref()
                }
            });
            for (resource, ceiling, ceiling_text) in &ceilings {
                let Some(quantity) = values.and_then(|v| v.get(*resource)) else {
                    continue;
                };
                let field = format!("spec.resources.{section}.{resource}");
                match MilliQuantity::parse(&quantity.0) {
                    Ok(value) if value > *ceiling => violations.push(Violation {
                        kind: ViolationKind::LimitsExceeded,
                        object: object.clone(),
                        field,
                        message: format!(
                            "{} is above the {ceiling_text} per-container limit of environment {}: lower it to at most {ceiling_text}",
                            quantity.0, environment.name
                        ),
                    }),
                    Ok(_) => {}
                    Err(error) => violations.push(Violation {
                        kind: ViolationKind::InvalidSpec,
                        object: object.clone(),
                        field,
                        message: error.to_string(),
                    }),
                }
            }
        }
    }
    for (index, variable) in service.spec.env.iter().enumerate() {
        if RESERVED_ENV_VARS.contains(&variable.name.as_str()) {
            violations.push(Violation {
                kind: ViolationKind::InvalidSpec,
                object: object.clone(),
                field: format!("spec.env[{index}].name"),
                message: format!(
                    "{} is set by the operator from the namespace's environment and cannot be overridden",
                    variable.name
                ),
            });
        }
    }
    violations
}
