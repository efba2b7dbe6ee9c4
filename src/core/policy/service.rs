//! Judging an MmfService: its own rules, then its plugins resolved among the plugins of its
//! namespace, then the decision to deploy or to leave the running Deployment alone.

use std::collections::BTreeMap;

use serde_json::Value;

use super::outcome::{Outcome, Scope, outcome};
use super::{
    Direct, PluginEvaluation, RESERVED_ENV_VARS, SignatureVerifier, describe_config_problem,
    evaluate_plugin_with, is_pinned_by_digest, service_ref,
};
use crate::api::{MmfPlugin, MmfService, PluginLoadState};
use crate::core::config::{ConfigSet, EnvironmentPolicy, LoadingMode};
use crate::core::plugin_config::{merged_config, validate_config};
use crate::core::quantity::MilliQuantity;
use crate::core::resolve::{DependencyProblem, Requested, dependency_problems, load_order};
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
    /// The plugin object, when found.
    pub plugin: Option<&'a MmfPlugin>,
    /// Loaded, skipped or rejected.
    pub state: PluginLoadState,
    /// Why not loaded.
    pub reason: Option<String>,
    /// Merged configuration (service overrides included), for loaded plugins.
    pub config: Value,
    /// Digest of the plugin's signed payload.
    pub digest: Option<String>,
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

    let mut configs_by_name: BTreeMap<String, Value> = BTreeMap::new();
    let mut evaluations: BTreeMap<String, PluginEvaluation> = BTreeMap::new();
    for request in &requested {
        if unloaded.contains_key(&request.name) {
            continue;
        }
        let Some(plugin) = request.plugin else {
            let message = format!(
                "plugin {:?} does not exist in this namespace: apply its MmfPlugin manifest or remove it from {}",
                request.name, request.field
            );
            violations.push(Violation {
                kind: ViolationKind::PluginNotFound,
                object: object.clone(),
                field: format!("{}.name", request.field),
                message: message.clone(),
            });
            unloaded.insert(request.name.clone(), message);
            continue;
        };
        let evaluation = evaluate_plugin_with(plugin, environment, configs, verifier);
        if let Some(first) = evaluation.violations.first() {
            let message = format!(
                "plugin {:?} violates the {} policy: {}{}",
                request.name,
                environment.name,
                first.message,
                match evaluation.violations.len() {
                    1 => String::new(),
                    n => format!(" (and {} more; see the MmfPlugin's status)", n - 1),
                }
            );
            violations.push(Violation {
                kind: ViolationKind::PluginRejected,
                object: object.clone(),
                field: format!("{}.name", request.field),
                message: message.clone(),
            });
            unloaded.insert(request.name.clone(), message);
            evaluations.insert(request.name.clone(), evaluation);
            continue;
        }
        let layers: Vec<&Value> = overrides
            .get(&request.name)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let config = merged_config(
            plugin,
            &environment.name,
            configs.plugin_settings(&request.name),
            &layers,
        );
        if let Err(problem) = validate_config(plugin, &config) {
            let (field, message) = describe_config_problem(
                &problem,
                &format!("{}.config", request.field),
                &environment.name,
            );
            let message = format!("plugin {:?}: {message}", request.name);
            violations.push(Violation {
                kind: ViolationKind::ConfigInvalid,
                object: object.clone(),
                field,
                message: message.clone(),
            });
            unloaded.insert(request.name.clone(), message);
        }
        configs_by_name.insert(request.name.clone(), config);
        evaluations.insert(request.name.clone(), evaluation);
    }

    let priorities: BTreeMap<String, i32> = requested
        .iter()
        .map(|r| (r.name.clone(), r.priority))
        .collect();
    let order = resolve_loadable(
        &requested,
        &mut unloaded,
        &priorities,
        &object,
        &mut violations,
    );

    let decision = if outcome(&violations, mode, Scope::Rollout) == Outcome::Deny {
        Decision::Blocked
    } else {
        Decision::Deploy
    };
    let mut plugins = Vec::with_capacity(requested.len());
    for name in &order {
        let Some(request) = requested.iter().find(|r| &r.name == name) else {
            continue;
        };
        let blocked = decision == Decision::Blocked;
        plugins.push(PluginOutcome {
            name: name.clone(),
            plugin: request.plugin,
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
            config: configs_by_name.remove(name).unwrap_or(Value::Null),
            digest: evaluations.get(name).and_then(|e| e.digest.clone()),
        });
    }
    for request in &requested {
        if let Some(reason) = unloaded.get(&request.name) {
            let state = if mode == LoadingMode::Strict && !environment.plugins.enabled {
                PluginLoadState::Skipped
            } else if mode == LoadingMode::Strict {
                PluginLoadState::Rejected
            } else {
                PluginLoadState::Skipped
            };
            plugins.push(PluginOutcome {
                name: request.name.clone(),
                plugin: request.plugin,
                state,
                reason: Some(reason.clone()),
                config: Value::Null,
                digest: evaluations
                    .get(&request.name)
                    .and_then(|e| e.digest.clone()),
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

/// Removes plugins whose dependencies are unmet (repeatedly, since removal can break others)
/// and cycle members, recording why; returns the load order of what remains.
fn resolve_loadable<'a>(
    requested: &[Requested<'a>],
    unloaded: &mut BTreeMap<String, String>,
    priorities: &BTreeMap<String, i32>,
    object: &ObjectRef,
    violations: &mut Vec<Violation>,
) -> Vec<String> {
    loop {
        let loadable: BTreeMap<String, &MmfPlugin> = requested
            .iter()
            .filter(|r| !unloaded.contains_key(&r.name))
            .filter_map(|r| r.plugin.map(|p| (r.name.clone(), p)))
            .collect();
        let mut removed_any = false;
        for (name, plugin) in &loadable {
            let field = requested
                .iter()
                .find(|r| &r.name == name)
                .map(|r| r.field.clone())
                .unwrap_or_default();
            for problem in dependency_problems(plugin, name, &loadable) {
                let (kind, message) = describe_dependency_problem(&problem, unloaded);
                violations.push(Violation {
                    kind,
                    object: object.clone(),
                    field: field.clone(),
                    message: message.clone(),
                });
                unloaded.entry(name.clone()).or_insert(message);
                removed_any = true;
            }
        }
        if removed_any {
            continue;
        }
        match load_order(&loadable, priorities) {
            Ok(order) => return order,
            Err(cycle) => {
                let message = format!(
                    "plugins depend on each other in a cycle: {} (each requires the next); remove one of these dependencies",
                    cycle.join(" -> ")
                );
                violations.push(Violation {
                    kind: ViolationKind::DependencyCycle,
                    object: object.clone(),
                    field: "spec.plugins".to_owned(),
                    message: message.clone(),
                });
                let members: Vec<String> = cycle;
                if members.is_empty() {
                    return Vec::new();
                }
                for member in members {
                    unloaded.entry(member).or_insert_with(|| message.clone());
                }
            }
        }
    }
}

fn describe_dependency_problem(
    problem: &DependencyProblem,
    unloaded: &BTreeMap<String, String>,
) -> (ViolationKind, String) {
    match problem {
        DependencyProblem::Missing {
            plugin,
            dependency,
            requirement,
        } => {
            let why = match unloaded.get(dependency) {
                Some(reason) => format!("it is not loaded ({reason})"),
                None => format!(
                    "the service does not enable it: add {{name: {dependency}}} to spec.plugins"
                ),
            };
            (
                ViolationKind::DependencyMissing,
                format!(
                    "plugin {plugin:?} requires plugin {dependency:?} at {requirement}, but {why}"
                ),
            )
        }
        DependencyProblem::VersionMismatch {
            plugin,
            dependency,
            requirement,
            found,
        } => (
            ViolationKind::DependencyVersionMismatch,
            format!(
                "plugin {plugin:?} requires plugin {dependency:?} at {requirement}, but version {found} is installed: apply a matching version of {dependency} or update {plugin}'s dependency"
            ),
        ),
    }
}

/// Combines the environment's default plugins with the service's own entries (the service's
/// entry wins on `enabled` and `priority`; configs apply defaults first, then the service's).
fn requested_plugins<'a>(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    available: &[&'a MmfPlugin],
    object: &ObjectRef,
    violations: &mut Vec<Violation>,
) -> (Vec<Requested<'a>>, BTreeMap<String, Vec<Value>>) {
    let mut entries: Vec<(String, bool, i32, String, Option<Value>)> = Vec::new();
    for (index, default) in environment.default_plugins.iter().enumerate() {
        entries.push((
            default.name.clone(),
            default.enabled,
            default.priority,
            format!(
                "spec.plugins (default_plugins[{index}] of environment {})",
                environment.name
            ),
            default.config.clone(),
        ));
    }
    let mut overrides: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, _, _, _, config) in &entries {
        if let Some(config) = config {
            overrides
                .entry(name.clone())
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
        match entries.iter_mut().find(|e| e.0 == entry.name) {
            Some(existing) => {
                existing.1 = entry.enabled;
                existing.2 = entry.priority;
                existing.3 = field;
            }
            None => entries.push((
                entry.name.clone(),
                entry.enabled,
                entry.priority,
                field,
                None,
            )),
        }
    }
    let requested = entries
        .into_iter()
        .filter(|(_, enabled, ..)| *enabled)
        .map(|(name, _, priority, field, _)| Requested {
            plugin: available
                .iter()
                .copied()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str())),
            name,
            priority,
            field,
        })
        .collect();
    (requested, overrides)
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
