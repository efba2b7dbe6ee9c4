//! Keeping an MmfPlugin's revisions: record the current version once, never overwrite a
//! verified or used one (an unverified, unused one is replaced),
//! keep every revision's verdict current, and trim the history beyond `revisionHistoryLimit`.
//! The rules are in `core::revisions`; this module reads the caches and writes.

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::error::Error;
use super::status_patch::patch_status;
use crate::api::{FIELD_MANAGER, MmfPlugin, MmfPluginRevision, revision_name};
use crate::config::{ConfigSet, EnvironmentPolicy};
use crate::core::policy::{PluginEvaluation, evaluate_plugin_with};
use crate::core::revisions::{
    Record, digest_conflict, record_decision, revision_for, revision_status, revisions_to_trim,
};
use crate::core::violation::Violation;

const KIND: &str = "MmfPluginRevision";

/// Brings `plugin`'s revisions up to date. Returns the violation to report on the plugin when
/// its version was recorded with other content.
pub async fn sync_revisions(
    ctx: &Context,
    plugin: &MmfPlugin,
    namespace: &str,
    environment: &EnvironmentPolicy,
    config: &ConfigSet,
    evaluation: &PluginEvaluation,
) -> Result<Option<Violation>, Error> {
    let Some(digest) = evaluation.digest.as_deref() else {
        return Ok(None);
    };
    let plugin_name = plugin.name_any();
    let api: Api<MmfPluginRevision> = Api::namespaced(ctx.client.clone(), namespace);
    let name = revision_name(&plugin_name, &plugin.spec.version);
    let in_use = ctx.caches.revisions_in_use(namespace);
    let recorded = ctx
        .caches
        .revisions
        .get(&ObjectRef::new(&name).within(namespace));
    let mut conflict = None;
    match record_decision(plugin, recorded.as_deref(), digest, &in_use) {
        Record::Keep => {}
        Record::Conflict(violation) => conflict = Some(violation),
        decision @ (Record::Create | Record::Replace) => {
            if decision == Record::Replace {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => tracing::info!(%namespace, %name, "replacing an unverified revision"),
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(source) => return Err(api_error(namespace, &name, source)),
                }
            }
            if let Some(revision) = revision_for(plugin, digest) {
                // Not forced: the spec is immutable, and a revision someone else wrote stays.
                let created = api
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER),
                        &Patch::Apply(&revision),
                    )
                    .await
                    .map_err(|source| api_error(namespace, &name, source))?;
                tracing::info!(%namespace, %name, "recorded plugin revision");
                if created.spec.digest == digest {
                    let status =
                        revision_status(evaluation, &environment.name, created.metadata.generation);
                    patch_status(&ctx.client, &created, &status).await?;
                } else {
                    conflict = digest_conflict(plugin, &created, digest);
                }
            }
        }
    }
    let revisions = ctx.caches.revisions_of(namespace, &plugin_name);
    for revision in &revisions {
        let judged = evaluate_plugin_with(
            &revision.to_plugin(),
            environment,
            config,
            ctx.metrics.signatures.as_ref(),
        );
        let status = revision_status(&judged, &environment.name, revision.metadata.generation);
        if revision.status.as_ref() != Some(&status) {
            patch_status(&ctx.client, revision.as_ref(), &status).await?;
        }
    }
    let refs: Vec<&MmfPluginRevision> = revisions.iter().map(AsRef::as_ref).collect();
    for trimmed in revisions_to_trim(
        &refs,
        &plugin.spec.version,
        plugin.spec.revision_history_limit,
        &in_use,
    ) {
        match api.delete(&trimmed, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(%namespace, name = %trimmed, "trimmed plugin revision"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(api_error(namespace, &trimmed, source)),
        }
    }
    Ok(conflict)
}

fn api_error(namespace: &str, name: &str, source: kube::Error) -> Error {
    Error::ApplyChild {
        kind: KIND,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    }
}
