//! The next `status` of an MmfPlugin or MmfService, computed from what reconcile observed.
//!
//! Pure: `now` is an argument. Each function returns `None` when nothing a user could see has
//! changed, so a steady-state reconcile writes nothing. A condition keeps its
//! `lastTransitionTime` unless its `status` flips (API conventions).

mod announce;

pub use announce::{
    PluginAnnouncement, PluginState, ServiceAnnouncement, SignatureVerdict, plugin_announcements,
    service_announcements,
};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::policy::{Decision, PluginEvaluation, ServiceEvaluation, SignatureCheck};
use super::violation::{Violation, ViolationKind};
use crate::api::conditions::{reasons, types};
use crate::api::{MmfPluginStatus, MmfServiceStatus, PluginLoadState, PluginStatus};
use crate::core::config::LoadingMode;

/// Condition status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// A condition before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionSpec {
    pub type_: &'static str,
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

fn condition(
    type_: &'static str,
    status: Status,
    reason: &'static str,
    message: impl Into<String>,
) -> ConditionSpec {
    ConditionSpec {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

/// Conditions in the order given, keeping each old `lastTransitionTime` whose status is
/// unchanged.
pub fn with_timestamps(
    old: &[Condition],
    specs: Vec<ConditionSpec>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    specs
        .into_iter()
        .map(|spec| {
            let previous = old.iter().find(|c| c.type_ == spec.type_);
            let last_transition_time = match previous {
                Some(previous) if previous.status == spec.status.as_str() => {
                    previous.last_transition_time.clone()
                }
                _ => now.clone(),
            };
            Condition {
                type_: spec.type_.to_owned(),
                status: spec.status.as_str().to_owned(),
                reason: spec.reason.to_owned(),
                message: spec.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The status written on first sight: `Ready=Unknown` so GitOps tools never take a
/// status-less object for done.
pub fn first_sight_conditions(generation: Option<i64>, now: &Time) -> Vec<Condition> {
    with_timestamps(
        &[],
        vec![
            condition(
                types::READY,
                Status::Unknown,
                reasons::RECONCILING,
                "The operator has seen this object and is reconciling it.",
            ),
            condition(
                types::RECONCILING,
                Status::True,
                reasons::RECONCILING,
                "The operator has seen this object and is reconciling it.",
            ),
        ],
        generation,
        now,
    )
}

/// Joins violation messages into one condition message, bounded in size.
fn describe(violations: &[&Violation]) -> String {
    let mut message = violations
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    if message.len() > 2000 {
        let mut end = 2000;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// `PolicyCompliant`, the same for plugins and services.
fn policy_compliant(violations: &[&Violation], environment: &str) -> ConditionSpec {
    if violations.is_empty() {
        condition(
            types::POLICY_COMPLIANT,
            Status::True,
            reasons::COMPLIANT,
            format!("Complies with the {environment} policy."),
        )
    } else {
        condition(
            types::POLICY_COMPLIANT,
            Status::False,
            reasons::POLICY_VIOLATION,
            describe(violations),
        )
    }
}

/// What reconcile learned about a plugin.
#[derive(Debug, Clone, Copy)]
pub enum PluginObservation<'a> {
    /// The policy applied.
    Evaluated {
        evaluation: &'a PluginEvaluation,
        mode: LoadingMode,
    },
    /// The namespace names an environment without a config file.
    UnknownEnvironment { message: &'a str },
}

/// The next plugin status, or None when unchanged.
pub fn next_plugin_status(
    old: Option<&MmfPluginStatus>,
    generation: Option<i64>,
    environment: &str,
    observation: PluginObservation<'_>,
    now: &Time,
) -> Option<MmfPluginStatus> {
    let (specs, digest) = match observation {
        PluginObservation::UnknownEnvironment { message } => (
            vec![
                condition(
                    types::READY,
                    Status::False,
                    reasons::UNKNOWN_ENVIRONMENT,
                    message,
                ),
                condition(
                    types::STALLED,
                    Status::True,
                    reasons::UNKNOWN_ENVIRONMENT,
                    message,
                ),
            ],
            old.and_then(|s| s.digest.clone()),
        ),
        PluginObservation::Evaluated { evaluation, mode } => (
            plugin_conditions(evaluation, mode, environment),
            evaluation.digest.clone(),
        ),
    };
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let next = MmfPluginStatus {
        observed_generation: generation,
        conditions: with_timestamps(old_conditions, specs, generation, now),
        digest,
        environment: Some(environment.to_owned()),
    };
    changed(old, next)
}

fn plugin_conditions(
    evaluation: &PluginEvaluation,
    mode: LoadingMode,
    environment: &str,
) -> Vec<ConditionSpec> {
    let of_kind = |kinds: &[ViolationKind]| -> Vec<&Violation> {
        evaluation
            .violations
            .iter()
            .filter(|v| kinds.contains(&v.kind))
            .collect()
    };
    let signature_problems = of_kind(&[
        ViolationKind::SignatureMissing,
        ViolationKind::SignatureInvalid,
        ViolationKind::UntrustedKey,
    ]);
    let signature = match (&evaluation.signature, signature_problems.first()) {
        (SignatureCheck::Verified(verified), _) => condition(
            types::SIGNATURE_VERIFIED,
            Status::True,
            reasons::VERIFIED,
            format!(
                "Signed with trusted key {:?} ({}).",
                verified.key_id, verified.algorithm
            ),
        ),
        (_, Some(problem)) => condition(
            types::SIGNATURE_VERIFIED,
            Status::False,
            problem.kind.reason(),
            describe(&signature_problems),
        ),
        (_, None) => condition(
            types::SIGNATURE_VERIFIED,
            Status::True,
            reasons::NOT_REQUIRED,
            format!(
                "Environment {environment} does not require signatures; the plugin carries no valid one."
            ),
        ),
    };
    let config_problems = of_kind(&[ViolationKind::ConfigInvalid]);
    let config = if config_problems.is_empty() {
        condition(
            types::CONFIG_VALID,
            Status::True,
            reasons::CONFIG_VALID_REASON,
            "The merged configuration matches spec.configSchema.",
        )
    } else {
        condition(
            types::CONFIG_VALID,
            Status::False,
            reasons::CONFIG_INVALID,
            describe(&config_problems),
        )
    };
    let all: Vec<&Violation> = evaluation.violations.iter().collect();
    let compliant = policy_compliant(&all, environment);
    let mut specs = Vec::new();
    match (all.first(), mode) {
        (None, _) => specs.push(condition(
            types::READY,
            Status::True,
            reasons::READY,
            "Services in this namespace may load the plugin.",
        )),
        (Some(first), LoadingMode::Strict) => {
            specs.push(condition(
                types::READY,
                Status::False,
                first.kind.reason(),
                format!(
                    "Rejected by the strict {environment} policy: {}",
                    describe(&all)
                ),
            ));
            specs.push(condition(
                types::STALLED,
                Status::True,
                first.kind.reason(),
                "Fix the violations in PolicyCompliant; nothing will change until then.",
            ));
        }
        (Some(_), LoadingMode::Lenient) => specs.push(condition(
            types::READY,
            Status::True,
            reasons::COMPLIANT_WITH_WARNINGS,
            format!(
                "Usable in the lenient {environment} environment, with warnings: {}",
                describe(&all)
            ),
        )),
    }
    specs.extend([signature, config, compliant]);
    specs
}

/// The Deployment as reconcile last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeploymentState {
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
    /// `status.updatedReplicas`.
    pub updated: i32,
    /// The Deployment's own `Available` condition is True.
    pub available: bool,
    /// `status.observedGeneration` has caught up with `metadata.generation`.
    pub observed: bool,
}

impl DeploymentState {
    /// Rolled out and serving: the current template everywhere, the minimum available.
    pub fn is_available(&self) -> bool {
        self.available && self.observed && self.updated >= self.desired
    }
}

/// The [`DeploymentState`] of a Deployment, read the way `kubectl rollout status` does.
pub fn deployment_state(deployment: &Deployment) -> DeploymentState {
    let status = deployment.status.clone().unwrap_or_default();
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let available = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    DeploymentState {
        desired,
        ready: status.ready_replicas.unwrap_or(0),
        updated: status.updated_replicas.unwrap_or(0),
        available: available || desired == 0,
        observed: status.observed_generation.unwrap_or(0)
            >= deployment.metadata.generation.unwrap_or(0),
    }
}

/// What reconcile learned about a service.
#[derive(Debug, Clone, Copy)]
pub enum ServiceObservation<'a> {
    /// The policy applied; `deployment` is what runs now (possibly from an earlier rollout).
    Evaluated {
        evaluation: &'a ServiceEvaluation<'a>,
        deployment: Option<DeploymentState>,
    },
    /// Nothing can be rolled out until the user acts: the namespace names an environment
    /// without a config file ([`reasons::UNKNOWN_ENVIRONMENT`]), or a child's name is taken by
    /// an object the service does not own ([`reasons::CHILD_NOT_OWNED`]).
    Blocked {
        reason: &'static str,
        message: &'a str,
        deployment: Option<DeploymentState>,
    },
}

/// The next service status, or None when unchanged.
pub fn next_service_status(
    old: Option<&MmfServiceStatus>,
    generation: Option<i64>,
    environment: &str,
    desired_replicas: i32,
    observation: ServiceObservation<'_>,
    now: &Time,
) -> Option<MmfServiceStatus> {
    let deployment = match observation {
        ServiceObservation::Evaluated { deployment, .. }
        | ServiceObservation::Blocked { deployment, .. } => deployment,
    };
    let available = match deployment {
        Some(state) if state.is_available() => condition(
            types::AVAILABLE,
            Status::True,
            reasons::DEPLOYMENT_AVAILABLE,
            format!("{}/{} replicas ready.", state.ready, state.desired),
        ),
        Some(state) => condition(
            types::AVAILABLE,
            Status::False,
            reasons::DEPLOYMENT_UNAVAILABLE,
            // Ready counts only: the Deployment controller's intermediate steps (pods created,
            // template updated, not yet ready) then cost no status write of their own.
            format!(
                "Rollout in progress: {}/{} replicas ready.",
                state.ready, state.desired
            ),
        ),
        None => condition(
            types::AVAILABLE,
            Status::False,
            reasons::DEPLOYMENT_UNAVAILABLE,
            "The Deployment does not exist yet.",
        ),
    };
    let is_available = available.status == Status::True;
    let mut plugins = Vec::new();
    let mut specs = Vec::new();
    match observation {
        ServiceObservation::Blocked {
            reason, message, ..
        } => {
            specs.push(condition(types::READY, Status::False, reason, message));
            specs.push(condition(types::STALLED, Status::True, reason, message));
            specs.push(available);
        }
        ServiceObservation::Evaluated { evaluation, .. } => {
            plugins = evaluation
                .plugins
                .iter()
                .map(|p| PluginStatus {
                    name: p.name.clone(),
                    requested: Some(p.requested.clone()),
                    revision: p.revision.clone(),
                    version: p.plugin.map(|plugin| plugin.spec.version.clone()),
                    digest: p.digest.clone(),
                    state: p.state,
                    reason: p
                        .reason
                        .clone()
                        .or_else(|| p.last_known_good.as_ref().map(ToString::to_string)),
                })
                .collect();
            specs.extend(service_conditions(
                evaluation,
                environment,
                available,
                is_available,
            ));
        }
    }
    let loaded: Vec<&str> = plugins
        .iter()
        .filter(|p| p.state == PluginLoadState::Loaded)
        .map(|p| p.name.as_str())
        .collect();
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let next = MmfServiceStatus {
        observed_generation: generation,
        environment: Some(environment.to_owned()),
        replicas: deployment.map(|d| d.desired),
        ready_replicas: deployment.map(|d| d.ready),
        replica_summary: Some(format!(
            "{}/{desired_replicas}",
            deployment.map_or(0, |d| d.ready)
        )),
        loaded_plugins: Some(loaded.join(",")),
        plugins,
        conditions: with_timestamps(old_conditions, specs, generation, now),
    };
    changed(old, next)
}

fn service_conditions(
    evaluation: &ServiceEvaluation<'_>,
    environment: &str,
    available: ConditionSpec,
    is_available: bool,
) -> Vec<ConditionSpec> {
    let all: Vec<&Violation> = evaluation.violations.iter().collect();
    // When the rollout is blocked every plugin is held back; only the rejected ones are
    // unresolved. Otherwise anything not loaded is.
    let unresolved: Vec<&crate::core::policy::PluginOutcome<'_>> = evaluation
        .plugins
        .iter()
        .filter(|p| match evaluation.decision {
            Decision::Blocked => p.state == PluginLoadState::Rejected,
            Decision::Deploy => p.state != PluginLoadState::Loaded,
        })
        .collect();
    let staying: Vec<String> = evaluation
        .plugins
        .iter()
        .filter_map(|p| p.last_known_good.as_ref().map(ToString::to_string))
        .collect();
    let resolved = if unresolved.is_empty() && staying.is_empty() {
        condition(
            types::PLUGINS_RESOLVED,
            Status::True,
            reasons::RESOLVED,
            "Every requested plugin was found and its dependencies are satisfied.",
        )
    } else if unresolved.is_empty() {
        condition(
            types::PLUGINS_RESOLVED,
            Status::True,
            reasons::LAST_KNOWN_GOOD,
            staying.join("; "),
        )
    } else {
        let first_reason = evaluation
            .violations
            .iter()
            .find(|v| v.kind.is_referential() || v.kind == ViolationKind::ConfigInvalid)
            .map_or(reasons::PLUGIN_REJECTED, |v| v.kind.reason());
        let message = unresolved
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.name,
                    p.reason.as_deref().unwrap_or("not loaded")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        condition(
            types::PLUGINS_RESOLVED,
            Status::False,
            first_reason,
            message,
        )
    };
    let compliant = policy_compliant(&all, environment);
    let mut specs = Vec::new();
    match (evaluation.decision, evaluation.mode) {
        (Decision::Blocked, _) => {
            let reason = all
                .first()
                .map_or(reasons::POLICY_VIOLATION, |v| v.kind.reason());
            specs.push(condition(
                types::READY,
                Status::False,
                reason,
                format!(
                    "Not rolled out: the strict {environment} policy is violated ({}); the running Deployment, if any, is left as it was.",
                    describe(&all)
                ),
            ));
            specs.push(condition(types::STALLED, Status::True, reasons::ROLLOUT_BLOCKED, "Fix the violations in PolicyCompliant and PluginsResolved; nothing will change until then."));
        }
        (Decision::Deploy, mode) if is_available => {
            let message = match (mode, all.is_empty()) {
                (LoadingMode::Lenient, false) => {
                    format!("Available, with warnings: {}", describe(&all))
                }
                _ => "Available with every requested plugin loaded.".to_owned(),
            };
            specs.push(condition(
                types::READY,
                Status::True,
                reasons::READY,
                message,
            ));
        }
        (Decision::Deploy, _) => {
            specs.push(condition(
                types::READY,
                Status::Unknown,
                reasons::RECONCILING,
                "Waiting for the Deployment to become available.",
            ));
            specs.push(condition(
                types::RECONCILING,
                Status::True,
                reasons::RECONCILING,
                available.message.clone(),
            ));
        }
    }
    specs.extend([resolved, compliant, available]);
    specs
}

/// `next` unless it equals `old` apart from timestamps (which `with_timestamps` kept).
fn changed<S: PartialEq>(old: Option<&S>, next: S) -> Option<S> {
    match old {
        Some(old) if *old == next => None,
        _ => Some(next),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
