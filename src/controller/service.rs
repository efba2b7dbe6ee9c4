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
use super::status_patch::{first_sight_if_failed, patch_status};
use crate::api::conditions::reasons;
use crate::api::{
    CONFIG_HASH_ANNOTATION, MmfPlugin, MmfService, MmfServiceStatus, PluginLoadState,
};
use crate::cluster_view::{ClusterView, environment_of};
use crate::core::audit::{AuditPlugin, PluginChange, service_plugin_record};
use crate::core::policy::{Decision, evaluate_service_with};
use crate::core::render::render;
use crate::core::status::{
    ServiceAnnouncement, ServiceObservation, deployment_state, first_sight_conditions,
    next_service_status, service_announcements,
};

/// Brings the service's children and status up to date; writes nothing when nothing changed.
#[tracing::instrument(skip_all, fields(namespace = service.namespace(), name = service.name_any()))]
pub async fn reconcile(service: Arc<MmfService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = service.name_any();
    let namespace = service.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: "MmfService",
        name: name.clone(),
    })?;
    if service.metadata.deletion_timestamp.is_some() {
        // Being deleted: the garbage collector takes its children. Writing one back would hold a
        // foreground deletion (which waits for them) forever, and a status write is pointless.
        return Ok(Action::await_change());
    }
    let now = Time(Timestamp::now());
    let generation = service.metadata.generation;
    if service.status.is_some() {
        return converge(&service, &ctx, name, namespace, now).await;
    }
    let first = MmfServiceStatus {
        observed_generation: generation,
        conditions: first_sight_conditions(generation, &now),
        ..MmfServiceStatus::default()
    };
    let outcome = converge(&service, &ctx, name, namespace, now).await;
    first_sight_if_failed(&ctx.client, service.as_ref(), &first, outcome).await
}

/// One pass: evaluate, apply the children, write the status that results.
async fn converge(
    service: &Arc<MmfService>,
    ctx: &Arc<Context>,
    name: String,
    namespace: String,
    now: Time,
) -> Result<Action, Error> {
    let generation = service.metadata.generation;
    let config = ctx.config.current();
    let (environment, policy) = environment_of(
        ctx.caches.as_ref(),
        &config,
        ctx.config.default_environment(),
        &namespace,
    );
    let cached_deployment = ctx
        .caches
        .children
        .deployments
        .get(&ObjectRef::new(&name).within(&namespace))
        .map(|cached| cached.decode())
        .transpose()
        .map_err(|source| Error::DecodeChild {
            kind: "Deployment",
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    let old = service.status.as_ref();
    let next = match policy {
        Err(error) => {
            ctx.metrics.service_observed(&namespace, &name, []);
            let message = error.to_string();
            let observation = ServiceObservation::Blocked {
                reason: reasons::UNKNOWN_ENVIRONMENT,
                message: &message,
                deployment: cached_deployment.as_ref().map(deployment_state),
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
            let plugins: Vec<Arc<MmfPlugin>> = ctx.caches.candidates_in(&namespace);
            let available: Vec<&MmfPlugin> = plugins.iter().map(AsRef::as_ref).collect();
            let evaluation = evaluate_service_with(
                service,
                policy,
                &config,
                &available,
                ctx.metrics.signatures.as_ref(),
            );
            ctx.metrics.service_observed(
                &namespace,
                &name,
                evaluation.plugins.iter().map(|p| (p.name.clone(), p.state)),
            );
            let mut deployment = cached_deployment.as_ref().map(deployment_state);
            if evaluation.decision == Decision::Deploy {
                let loaded: Vec<_> = evaluation.loaded().collect();
                let rendered =
                    render(service, policy, &loaded).map_err(|source| Error::Render {
                        object: format!("MmfService {namespace}/{name}"),
                        source,
                    })?;
                let new_hash = config_hash(&rendered.deployment);
                let applied = match apply_children(ctx, service, rendered).await {
                    Err(conflict @ Error::ChildNotOwned { .. }) => {
                        return report_conflict(ctx, service, old, &environment, conflict).await;
                    }
                    other => other?,
                };
                if let Some(live) = &applied.deployment {
                    // The cached Deployment is from before this rollout; the apply's answer is
                    // the rollout just started (its generation not yet observed).
                    deployment = Some(deployment_state(live));
                    let old_hash = cached_deployment.as_ref().and_then(config_hash);
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
        for announcement in service_announcements(old, &next) {
            announce(ctx, service, &environment, announcement).await;
        }
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

/// Plugins newly skipped (lenient) or rejected (strict) and a newly blocked rollout become
/// Warning events (for the service owner); every plugin state change becomes an audit record
/// (for the security team).
async fn announce(
    ctx: &Context,
    service: &MmfService,
    environment: &str,
    announcement: ServiceAnnouncement,
) {
    match announcement {
        ServiceAnnouncement::PluginState {
            plugin,
            version,
            digest,
            from,
            to,
            reason,
            blocked,
        } => {
            ctx.metrics.audit.write(&service_plugin_record(
                Timestamp::now(),
                service,
                environment,
                PluginChange {
                    plugin: AuditPlugin {
                        name: plugin.clone(),
                        version,
                        digest,
                    },
                    from,
                    to,
                    reason: reason.as_deref(),
                    blocked,
                },
            ));
            let event = match to {
                PluginLoadState::Skipped if !blocked => "PluginSkipped",
                PluginLoadState::Rejected => "PluginRejected",
                _ => return,
            };
            let note = format!("{plugin}: {}", reason.as_deref().unwrap_or("not loaded"));
            ctx.publish(service, EventType::Warning, event, "ResolvePlugins", note)
                .await;
        }
        ServiceAnnouncement::StayingOnLastKnownGood { message, .. } => {
            ctx.publish(
                service,
                EventType::Warning,
                "LastKnownGood",
                "ResolvePlugins",
                message,
            )
            .await;
        }
        ServiceAnnouncement::RolloutBlocked { message } => {
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
}
