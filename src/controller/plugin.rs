//! Reconciling an MmfPlugin: judge it against its namespace's environment and report in
//! status. A plugin owns nothing.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::context::Context;
use super::error::Error;
use super::status_patch::patch_status;
use crate::api::conditions::types;
use crate::api::{MmfPlugin, MmfPluginStatus};
use crate::core::policy::evaluate_plugin;
use crate::core::status::{PluginObservation, first_sight_conditions, next_plugin_status};
use crate::state::environment_of;

/// Brings the plugin's status up to date; writes nothing when nothing changed.
#[tracing::instrument(skip_all, fields(namespace = plugin.namespace(), name = plugin.name_any()))]
pub async fn reconcile(plugin: Arc<MmfPlugin>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = plugin.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: "MmfPlugin",
        name: plugin.name_any(),
    })?;
    let now = Time(Timestamp::now());
    let generation = plugin.metadata.generation;
    if plugin.status.is_none() {
        let first = MmfPluginStatus {
            observed_generation: generation,
            conditions: first_sight_conditions(generation, &now),
            ..MmfPluginStatus::default()
        };
        patch_status(&ctx.client, plugin.as_ref(), &first).await?;
    }
    let config = ctx.config.current();
    let (environment, policy) = environment_of(
        ctx.caches.as_ref(),
        &config,
        ctx.config.default_environment(),
        &namespace,
    );
    let evaluation;
    let message;
    let observation = match policy {
        Ok(policy) => {
            evaluation = evaluate_plugin(&plugin, policy, &config);
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
    let old = plugin.status.as_ref();
    if let Some(next) = next_plugin_status(old, generation, &environment, observation, &now) {
        patch_status(&ctx.client, plugin.as_ref(), &next).await?;
        announce(&ctx, &plugin, old, &next).await;
    }
    Ok(Action::await_change())
}

/// A Warning event when the plugin stops being usable, a Normal one when it becomes usable.
async fn announce(
    ctx: &Context,
    plugin: &MmfPlugin,
    old: Option<&MmfPluginStatus>,
    next: &MmfPluginStatus,
) {
    let ready = |status: Option<&MmfPluginStatus>| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::READY))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let (Some(before), Some(after)) = (
        ready(old).or(Some(("Unknown".into(), String::new(), String::new()))),
        ready(Some(next)),
    ) else {
        return;
    };
    if before.0 == after.0 {
        return;
    }
    match after.0.as_str() {
        "False" => {
            ctx.publish(
                plugin,
                EventType::Warning,
                "PluginRejected",
                "Verify",
                after.2,
            )
            .await
        }
        "True" if before.0 == "False" => {
            ctx.publish(
                plugin,
                EventType::Normal,
                "PluginAccepted",
                "Verify",
                after.2,
            )
            .await
        }
        _ => {}
    }
}
