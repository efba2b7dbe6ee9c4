//! Choosing the revision of each plugin a service loads: every candidate judged in the
//! environment, the good ones handed to the version solver (`core::solve`), the chosen ones'
//! configuration merged and validated, and the load order computed (`core::resolve`).

use std::collections::BTreeMap;

use semver::Version;
use serde_json::Value;

use super::{PluginEvaluation, SignatureVerifier, describe_config_problem, evaluate_plugin_with};
use crate::api::MmfPlugin;
use crate::core::config::{ConfigSet, EnvironmentPolicy};
use crate::core::plugin_config::{merged_config, validate_config};
use crate::core::resolve::{Requested, load_order};
use crate::core::solve::{
    Candidate, Dependency, LastKnownGood, ProblemKind, Request, Resolution, solve,
};
use crate::core::violation::{ObjectRef, Violation, ViolationKind};

/// A plugin the solver chose, with everything rendering needs.
#[derive(Debug, Clone)]
pub(super) struct Chosen<'a> {
    /// The revision loaded.
    pub plugin: &'a MmfPlugin,
    /// Its evaluation in the environment.
    pub evaluation: PluginEvaluation,
    /// Merged configuration (service overrides included).
    pub config: Value,
    /// Set when a newer matching revision was rejected.
    pub last_known_good: Option<LastKnownGood>,
}

/// What happened to the requested plugins.
#[derive(Debug, Default)]
pub(super) struct Choice<'a> {
    /// Loadable plugins in load order.
    pub order: Vec<String>,
    /// Chosen (loadable) plugins by name.
    pub chosen: BTreeMap<String, Chosen<'a>>,
    /// Plugins not loaded, with the reason.
    pub unloaded: BTreeMap<String, String>,
    /// For a plugin not loaded, the version its status reports (the rejected one) and the
    /// digest of that version.
    pub shown: BTreeMap<String, (&'a MmfPlugin, Option<String>)>,
}

/// What judges the candidates: the environment, its configuration, the signature verifier, and
/// the service the violations are about.
pub(super) struct Judge<'j> {
    pub environment: &'j EnvironmentPolicy,
    pub configs: &'j ConfigSet,
    pub verifier: &'j dyn SignatureVerifier,
    pub object: &'j ObjectRef,
}

/// Solves the service's plugins. `unloaded` holds plugins already ruled out (disabled).
pub(super) fn choose<'a>(
    requested: &[Requested<'a>],
    overrides: &BTreeMap<String, Vec<Value>>,
    judge: &Judge<'_>,
    unloaded: BTreeMap<String, String>,
    violations: &mut Vec<Violation>,
) -> Choice<'a> {
    let Judge {
        environment,
        configs,
        verifier,
        object,
    } = *judge;
    let mut choice = Choice {
        unloaded,
        ..Choice::default()
    };
    let mut candidates: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    let mut evaluations: BTreeMap<(String, Version), (&MmfPlugin, PluginEvaluation)> =
        BTreeMap::new();
    for request in requested {
        if choice.unloaded.contains_key(&request.name) {
            continue;
        }
        if request.candidates.is_empty() {
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
            choice.unloaded.insert(request.name.clone(), message);
            continue;
        }
        let single = request.candidates.len() == 1;
        for plugin in &request.candidates {
            let evaluation = evaluate_plugin_with(plugin, environment, configs, verifier);
            let Ok(version) = Version::parse(&plugin.spec.version) else {
                // evaluate_plugin reports the invalid version; such a plugin is never chosen,
                // and with no valid version at all it is reported below as rejected.
                if single {
                    reject_single(
                        request,
                        &evaluation,
                        environment,
                        object,
                        violations,
                        &mut choice,
                    );
                    choice
                        .shown
                        .insert(request.name.clone(), (plugin, evaluation.digest.clone()));
                }
                continue;
            };
            let rejection = evaluation.violations.first().map(|first| {
                format!(
                    "{}{}",
                    first.message,
                    match evaluation.violations.len() {
                        1 => String::new(),
                        n => format!(" (and {} more; see the MmfPlugin's status)", n - 1),
                    }
                )
            });
            if single && rejection.is_some() {
                // One version only (every plugin before revisions existed): reported as before.
                reject_single(
                    request,
                    &evaluation,
                    environment,
                    object,
                    violations,
                    &mut choice,
                );
                choice
                    .shown
                    .insert(request.name.clone(), (plugin, evaluation.digest.clone()));
                continue;
            }
            candidates
                .entry(request.name.clone())
                .or_default()
                .push(Candidate {
                    version: version.clone(),
                    dependencies: plugin
                        .spec
                        .dependencies
                        .iter()
                        .map(|d| Dependency {
                            name: d.name.clone(),
                            requirement: d.version.clone(),
                        })
                        .collect(),
                    rejection,
                });
            evaluations.insert((request.name.clone(), version), (*plugin, evaluation));
        }
    }
    let solver_requests: Vec<Request> = requested
        .iter()
        .map(|r| Request {
            name: r.name.clone(),
            requirement: r.requirement.clone(),
            field: r.field.clone(),
        })
        .collect();
    let priorities: BTreeMap<String, i32> = requested
        .iter()
        .map(|r| (r.name.clone(), r.priority))
        .collect();

    loop {
        let resolutions = solve(&solver_requests, &candidates, &choice.unloaded);
        choice.chosen.clear();
        let mut problems = Vec::new();
        let mut config_failed = false;
        for request in requested {
            let Some(resolution) = resolutions.get(&request.name) else {
                continue;
            };
            match resolution {
                Resolution::Chosen {
                    version,
                    last_known_good,
                } => {
                    let Some((plugin, evaluation)) =
                        evaluations.get(&(request.name.clone(), version.clone()))
                    else {
                        continue;
                    };
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
                        choice.unloaded.insert(request.name.clone(), message);
                        choice
                            .shown
                            .insert(request.name.clone(), (*plugin, evaluation.digest.clone()));
                        config_failed = true;
                        continue;
                    }
                    choice.chosen.insert(
                        request.name.clone(),
                        Chosen {
                            plugin,
                            evaluation: evaluation.clone(),
                            config,
                            last_known_good: last_known_good.clone(),
                        },
                    );
                }
                Resolution::Unresolved(problem) => problems.push((request, problem.clone())),
            }
        }
        if config_failed {
            // Dependents of a plugin whose configuration failed must be solved again.
            continue;
        }
        for (request, problem) in problems {
            let highest = evaluations
                .iter()
                .filter(|((name, _), _)| *name == request.name)
                .max_by(|a, b| a.0.1.cmp(&b.0.1))
                .map(|(_, (plugin, evaluation))| (*plugin, evaluation));
            let (kind, field, message) = match problem.kind {
                ProblemKind::Rejected => (
                    ViolationKind::PluginRejected,
                    format!("{}.name", request.field),
                    problem.message.clone(),
                ),
                ProblemKind::NoMatchingVersion | ProblemKind::InvalidRequirement => (
                    if problem.kind == ProblemKind::InvalidRequirement {
                        ViolationKind::InvalidSpec
                    } else {
                        ViolationKind::PluginNotFound
                    },
                    format!("{}.version", request.field),
                    problem.message.clone(),
                ),
                ProblemKind::DependencyMissing => (
                    ViolationKind::DependencyMissing,
                    request.field.clone(),
                    problem.message.clone(),
                ),
                ProblemKind::DependencyConflict => (
                    ViolationKind::DependencyVersionMismatch,
                    request.field.clone(),
                    problem.message.clone(),
                ),
            };
            violations.push(Violation {
                kind,
                object: object.clone(),
                field,
                message: message.clone(),
            });
            if let Some((plugin, evaluation)) = highest {
                choice
                    .shown
                    .insert(request.name.clone(), (plugin, evaluation.digest.clone()));
            }
            choice.unloaded.insert(request.name.clone(), message);
        }
        let loadable: BTreeMap<String, &MmfPlugin> = choice
            .chosen
            .iter()
            .map(|(name, chosen)| (name.clone(), chosen.plugin))
            .collect();
        match load_order(&loadable, &priorities) {
            Ok(order) => {
                choice.order = order;
                return choice;
            }
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
                if cycle.is_empty() {
                    return choice;
                }
                for member in cycle {
                    if let Some(chosen) = choice.chosen.get(&member) {
                        choice.shown.insert(
                            member.clone(),
                            (chosen.plugin, chosen.evaluation.digest.clone()),
                        );
                    }
                    choice
                        .unloaded
                        .entry(member)
                        .or_insert_with(|| message.clone());
                }
            }
        }
    }
}

/// The message for a plugin the environment rejects; with one version it reads as it did
/// before revisions existed.
fn rejected_message(
    name: &str,
    evaluation: &PluginEvaluation,
    environment: &EnvironmentPolicy,
) -> String {
    let first = evaluation
        .violations
        .first()
        .map(|v| v.message.as_str())
        .unwrap_or_default();
    format!(
        "plugin {name:?} violates the {} policy: {first}{}",
        environment.name,
        match evaluation.violations.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more; see the MmfPlugin's status)", n - 1),
        }
    )
}

fn reject_single<'a>(
    request: &Requested<'_>,
    evaluation: &PluginEvaluation,
    environment: &EnvironmentPolicy,
    object: &ObjectRef,
    violations: &mut Vec<Violation>,
    choice: &mut Choice<'a>,
) {
    let message = rejected_message(&request.name, evaluation, environment);
    violations.push(Violation {
        kind: ViolationKind::PluginRejected,
        object: object.clone(),
        field: format!("{}.name", request.field),
        message: message.clone(),
    });
    choice.unloaded.insert(request.name.clone(), message);
}
