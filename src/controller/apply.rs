//! Server-side apply of an MmfService's children, skipped when nothing changed.
//!
//! Each child carries `mmf.marty.dev/render-hash`, a digest of what we apply. When the cached
//! child has the same hash and nobody else has changed it since our last apply, the apply is
//! skipped: a steady-state reconcile makes no write at all.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::context::Context;
use super::error::Error;
use crate::api::{FIELD_MANAGER, MmfService};
use crate::core::render::Rendered;

/// Annotation holding the digest of the applied object.
pub const RENDER_HASH_ANNOTATION: &str = "mmf.marty.dev/render-hash";

/// What applying the children did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Kinds actually written.
    pub written: Vec<&'static str>,
}

/// Applies the ConfigMap, Deployment and Service of `service` (ConfigMap first, so a new
/// config hash never points at a missing ConfigMap).
pub async fn apply_children(
    ctx: &Context,
    service: &MmfService,
    rendered: Rendered,
) -> Result<Applied, Error> {
    // blockOwnerDeletion: a foreground deletion of the MmfService waits for its children, as
    // `kubectl delete --cascade=foreground` users expect (proved against kube-controller-manager).
    let owner = service
        .controller_owner_ref(&())
        .map(|owner| OwnerReference {
            block_owner_deletion: Some(true),
            ..owner
        });
    let namespace = service.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: "MmfService",
        name: service.name_any(),
    })?;
    let mut applied = Applied::default();
    let Rendered {
        mut config_map,
        mut deployment,
        service: mut kube_service,
    } = rendered;
    for meta in [
        &mut config_map.metadata,
        &mut deployment.metadata,
        &mut kube_service.metadata,
    ] {
        meta.owner_references = owner.clone().map(|o| vec![o]);
        meta.namespace = Some(namespace.clone());
    }
    if apply_one(ctx, &ctx.caches.config_maps, config_map, "ConfigMap", false).await? {
        applied.written.push("ConfigMap");
    }
    if apply_one(ctx, &ctx.caches.deployments, deployment, "Deployment", true).await? {
        applied.written.push("Deployment");
    }
    if apply_one(
        ctx,
        &ctx.caches.kube_services,
        kube_service,
        "Service",
        false,
    )
    .await?
    {
        applied.written.push("Service");
    }
    Ok(applied)
}

/// Returns whether a write happened.
async fn apply_one<K>(
    ctx: &Context,
    store: &Store<K>,
    mut object: K,
    kind: &'static str,
    by_generation: bool,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let name = object.name_any();
    let namespace = object.namespace().unwrap_or_default();
    let hash = digest(&object)?;
    object
        .annotations_mut()
        .insert(RENDER_HASH_ANNOTATION.to_owned(), hash.clone());
    let key = format!("{kind}/{namespace}/{name}");
    let cached = store.get(&ObjectRef::new(&name).within(&namespace));
    if let Some(cached) = cached {
        let same_render = cached.annotations().get(RENDER_HASH_ANNOTATION) == Some(&hash);
        let marker = change_marker(cached.meta(), by_generation);
        let untouched = ctx
            .applied
            .lock()
            .map(|applied| {
                applied
                    .get(&key)
                    .is_none_or(|last| Some(last) == marker.as_ref())
            })
            .unwrap_or(true);
        if same_render && untouched {
            return Ok(false);
        }
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(|source| Error::ApplyChild {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            source: Box::new(source),
        })?;
    if let (Some(marker), Ok(mut applied)) = (
        change_marker(result.meta(), by_generation),
        ctx.applied.lock(),
    ) {
        applied.insert(key, marker);
    }
    ctx.metrics.child_applied(kind);
    tracing::info!(kind, %namespace, %name, "applied");
    Ok(true)
}

fn change_marker(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    by_generation: bool,
) -> Option<String> {
    if by_generation {
        meta.generation.map(|g| g.to_string())
    } else {
        meta.resource_version.clone()
    }
}

fn digest<K: Serialize>(object: &K) -> Result<String, Error> {
    let bytes = serde_json::to_vec(object).map_err(|source| Error::Serialize {
        what: "child object",
        source,
    })?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}
