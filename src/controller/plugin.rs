//! Reconciling an MmfPlugin: judge it against its namespace's environment, record its
//! version as an MmfPluginRevision (the only objects it owns) and report in status.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::context::Context;
use super::error::Error;
use super::revision::sync_revisions;
use super::status_patch::{first_sight_if_failed, patch_status};
use crate::api::{MmfPlugin, MmfPluginStatus};
use crate::cluster_view::environment_of;
use crate::core::audit::signature_record;
use crate::core::policy::evaluate_plugin_with;
use crate::core::status::{
    PluginAnnouncement, PluginObservation, PluginState, first_sight_conditions, next_plugin_status,
    plugin_announcements,
};

/// Brings the plugin's status up to date; writes nothing when nothing changed.
#[tracing::instrument(skip_all, fields(namespace = plugin.namespace(), name = plugin.name_any()))]
pub async fn reconcile(plugin: Arc<MmfPlugin>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = plugin.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: "MmfPlugin",
        name: plugin.name_any(),
    })?;
    if plugin.metadata.deletion_timestamp.is_some() {
        // Being deleted: the garbage collector takes its revisions. Writing one back would hold a
        // foreground deletion (which waits for them) forever, and a status write is pointless.
        return Ok(Action::await_change());
    }
    let now = Time(Timestamp::now());
    let generation = plugin.metadata.generation;
    if plugin.status.is_some() {
        return converge(&plugin, &ctx, namespace, now).await;
    }
    let first = MmfPluginStatus {
        observed_generation: generation,
        conditions: first_sight_conditions(generation, &now),
        ..MmfPluginStatus::default()
    };
    let outcome = converge(&plugin, &ctx, namespace, now).await;
    first_sight_if_failed(&ctx.client, plugin.as_ref(), &first, outcome).await
}

/// One pass: judge the plugin and write the status that results.
async fn converge(
    plugin: &Arc<MmfPlugin>,
    ctx: &Arc<Context>,
    namespace: String,
    now: Time,
) -> Result<Action, Error> {
    let generation = plugin.metadata.generation;
    let config = ctx.config.current();
    let (environment, policy) = environment_of(
        ctx.caches.as_ref(),
        &config,
        ctx.config.default_environment(),
        &namespace,
    );
    let mut evaluation;
    let message;
    let observation = match policy {
        Ok(policy) => {
            evaluation =
                evaluate_plugin_with(plugin, policy, &config, ctx.metrics.signatures.as_ref());
            if let Some(conflict) =
                sync_revisions(ctx, plugin, &namespace, policy, &config, &evaluation).await?
            {
                evaluation.violations.push(conflict);
            }
            PluginObservation::Evaluated {
                evaluation: &evaluation,
                mode: policy.plugins.loading,
            }
        }
        Err(error) => {
            message = error.to_string();
            PluginObservation::UnknownEnvironment { message: &message }
        }
    };
    let state = match observation {
        PluginObservation::Evaluated { evaluation, .. } => PluginState::of(Some(evaluation)),
        PluginObservation::UnknownEnvironment { .. } => PluginState::of(None),
    };
    ctx.metrics.plugin_observed(
        &namespace,
        &plugin.name_any(),
        &plugin.spec.version,
        &environment,
        state,
    );
    let old = plugin.status.as_ref();
    if let Some(next) = next_plugin_status(old, generation, &environment, observation, &now) {
        patch_status(&ctx.client, plugin.as_ref(), &next).await?;
        for announcement in plugin_announcements(old, &next) {
            announce(ctx, plugin, &environment, &next, announcement).await;
        }
    }
    Ok(Action::await_change())
}

/// Rejected and accepted plugins become Events (for the service owner); signature verdict
/// changes become audit records (for the security team).
async fn announce(
    ctx: &Context,
    plugin: &MmfPlugin,
    environment: &str,
    next: &MmfPluginStatus,
    announcement: PluginAnnouncement,
) {
    match announcement {
        PluginAnnouncement::Rejected { message } => {
            ctx.publish(
                plugin,
                EventType::Warning,
                "PluginRejected",
                "Verify",
                message,
            )
            .await
        }
        PluginAnnouncement::Accepted { message } => {
            ctx.publish(
                plugin,
                EventType::Normal,
                "PluginAccepted",
                "Verify",
                message,
            )
            .await
        }
        PluginAnnouncement::SignatureVerdictChanged { from, to } => {
            ctx.metrics.audit.write(&signature_record(
                Timestamp::now(),
                plugin,
                environment,
                &from,
                &to,
                next.digest.as_deref(),
            ));
        }
    }
}
