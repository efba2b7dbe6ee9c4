//! Reconciling an MmfService: resolve its plugins, apply the policy, render, apply the
//! children (unless a strict environment blocks the rollout) and report in status.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::apply::apply_children;
use super::context::Context;
use super::error::Error;
use super::status_patch::patch_status;
use crate::api::conditions::{reasons, types};
use crate::api::{
    CONFIG_HASH_ANNOTATION, MmfPlugin, MmfService, MmfServiceStatus, PluginLoadState,
};
use crate::core::policy::{Decision, evaluate_service};
use crate::core::render::render;
use crate::core::status::{
    DeploymentState, ServiceObservation, first_sight_conditions, next_service_status,
};
use crate::state::{ClusterView, environment_of};

/// Brings the service's children and status up to date; writes nothing when nothing changed.
#[tracing::instrument(skip_all, fields(namespace = service.namespace(), name = service.name_any()))]
pub async fn reconcile(service: Arc<MmfService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = service.name_any();
    let namespace = service.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: "MmfService",
        name: name.clone(),
    })?;
    let now = Time(Timestamp::now());
    let generation = service.metadata.generation;
    if service.status.is_none() {
        let first = MmfServiceStatus {
            observed_generation: generation,
            conditions: first_sight_conditions(generation, &now),
            ..MmfServiceStatus::default()
        };
        patch_status(&ctx.client, service.as_ref(), &first).await?;
    }

    let config = ctx.config.current();
    let (environment, policy) = environment_of(
        ctx.caches.as_ref(),
        &config,
        ctx.config.default_environment(),
        &namespace,
    );
    let cached_deployment = ctx
        .caches
        .deployments
        .get(&ObjectRef::new(&name).within(&namespace));
    let old = service.status.as_ref();
    let next = match policy {
        Err(error) => {
            let message = error.to_string();
            let observation = ServiceObservation::Blocked {
                reason: reasons::UNKNOWN_ENVIRONMENT,
                message: &message,
                deployment: cached_deployment.as_deref().map(deployment_state),
            };
            next_service_status(
                old,
                generation,
                &environment,
                service.spec.replicas,
                observation,
                &now,
            )
        }
        Ok(policy) => {
            let plugins: Vec<Arc<MmfPlugin>> = ctx.caches.plugins_in(&namespace);
            let available: Vec<&MmfPlugin> = plugins.iter().map(AsRef::as_ref).collect();
            let evaluation = evaluate_service(&service, policy, &config, &available);
            let mut deployment = cached_deployment.as_deref().map(deployment_state);
            if evaluation.decision == Decision::Deploy {
                let loaded: Vec<_> = evaluation.loaded().collect();
                let rendered =
                    render(&service, policy, &loaded).map_err(|source| Error::Render {
                        object: format!("MmfService {namespace}/{name}"),
                        source,
                    })?;
                let new_hash = config_hash(&rendered.deployment);
                let applied = match apply_children(&ctx, &service, rendered).await {
                    Err(conflict @ Error::ChildNotOwned { .. }) => {
                        return report_conflict(&ctx, &service, old, &environment, conflict).await;
                    }
                    other => other?,
                };
                if applied.written.contains(&"Deployment") {
                    // The cached Deployment is from before this rollout: wait for its update.
                    deployment = deployment.map(|d| DeploymentState {
                        observed: false,
                        ..d
                    });
                    let old_hash = cached_deployment.as_deref().and_then(config_hash);
                    if let (Some(old_hash), Some(new_hash)) = (old_hash, new_hash.as_ref())
                        && old_hash != *new_hash
                    {
                        ctx.publish(
                            service.as_ref(),
                            EventType::Normal,
                            "RolloutStarted",
                            "Rollout",
                            format!("Configuration changed ({old_hash} -> {new_hash}); rolling the pods."),
                        )
                        .await;
                    }
                }
            }
            announce_plugins(&ctx, &service, old, &evaluation).await;
            let observation = ServiceObservation::Evaluated {
                evaluation: &evaluation,
                deployment,
            };
            next_service_status(
                old,
                generation,
                &environment,
                service.spec.replicas,
                observation,
                &now,
            )
        }
    };
    if let Some(next) = next {
        patch_status(&ctx.client, service.as_ref(), &next).await?;
        announce_blocked(&ctx, &service, old, &next).await;
    }
    Ok(Action::await_change())
}

/// A child's name is taken by someone else's object: say so in status (Ready=False, Stalled)
/// and in a Warning event, write nothing else, and look again in 30 s.
async fn report_conflict(
    ctx: &Context,
    service: &MmfService,
    old: Option<&MmfServiceStatus>,
    environment: &str,
    conflict: Error,
) -> Result<Action, Error> {
    let message = conflict.to_string();
    let observation = ServiceObservation::Blocked {
        reason: reasons::CHILD_NOT_OWNED,
        message: &message,
        deployment: None,
    };
    let now = Time(Timestamp::now());
    let next = next_service_status(
        old,
        service.metadata.generation,
        environment,
        service.spec.replicas,
        observation,
        &now,
    );
    if let Some(next) = next {
        patch_status(&ctx.client, service, &next).await?;
        ctx.publish(
            service,
            EventType::Warning,
            reasons::CHILD_NOT_OWNED,
            "Apply",
            message,
        )
        .await;
    }
    tracing::warn!(error = %conflict, "child name taken by an object the service does not own");
    // The foreign object carries none of our labels, so its removal is not watched: look again.
    Ok(Action::requeue(std::time::Duration::from_secs(30)))
}

fn config_hash(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

/// Reads readiness the way `kubectl rollout status` does.
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

/// A Warning event for each plugin newly skipped (lenient) or rejected (strict).
async fn announce_plugins(
    ctx: &Context,
    service: &MmfService,
    old: Option<&MmfServiceStatus>,
    evaluation: &crate::core::policy::ServiceEvaluation<'_>,
) {
    for plugin in &evaluation.plugins {
        let (reason, state) = match plugin.state {
            PluginLoadState::Skipped if evaluation.decision == Decision::Deploy => {
                ("PluginSkipped", PluginLoadState::Skipped)
            }
            PluginLoadState::Rejected => ("PluginRejected", PluginLoadState::Rejected),
            _ => continue,
        };
        let before = old
            .and_then(|s| s.plugins.iter().find(|p| p.name == plugin.name))
            .map(|p| p.state);
        if before != Some(state) {
            let note = format!(
                "{}: {}",
                plugin.name,
                plugin.reason.as_deref().unwrap_or("not loaded")
            );
            ctx.publish(service, EventType::Warning, reason, "ResolvePlugins", note)
                .await;
        }
    }
}

/// A Warning event when a strict environment starts blocking the rollout.
async fn announce_blocked(
    ctx: &Context,
    service: &MmfService,
    old: Option<&MmfServiceStatus>,
    next: &MmfServiceStatus,
) {
    let stalled = |status: Option<&MmfServiceStatus>| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::STALLED))
            .is_some_and(|c| c.status == "True")
    };
    if stalled(Some(next)) && !stalled(old) {
        let message = next
            .conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        ctx.publish(
            service,
            EventType::Warning,
            "RolloutBlocked",
            "Rollout",
            message,
        )
        .await;
    }
}
