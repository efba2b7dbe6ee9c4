//! Server-side apply of an MmfService's children, skipped when nothing changed.
//!
//! Each child carries `mmf.marty.dev/render-hash`, a digest of what we apply. The apply is
//! skipped when the cached child already holds everything we would apply ([`needs_apply`]):
//! a steady-state reconcile makes no write, right after a start as much as later, while a child
//! changed by someone else (even while the operator was down) is written back once.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cached_child::CachedChild;
use super::context::Context;
use super::error::Error;
use crate::api::{FIELD_MANAGER, MmfService};
use crate::core::drift::{controller_of, is_controlled_by, needs_apply};
use crate::core::hash::sha256_hex_prefix;
use crate::core::render::Rendered;

/// Annotation holding the digest of the applied object.
pub const RENDER_HASH_ANNOTATION: &str = "mmf.marty.dev/render-hash";

/// What applying the children did.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// Kinds actually written.
    pub written: Vec<&'static str>,
    /// The Deployment as the API server returned it from the apply, when it was written: the
    /// status can then describe the rollout just started in the same pass, instead of the stale
    /// cached Deployment (and the watch event that follows finds nothing new to write).
    pub deployment: Option<Deployment>,
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
    // Every name must be free or ours before anything is written.
    let uid = service.uid().unwrap_or_default();
    ensure_ours(
        ctx,
        &ctx.caches.children.config_maps,
        &config_map,
        "ConfigMap",
        &uid,
    )
    .await?;
    ensure_ours(
        ctx,
        &ctx.caches.children.deployments,
        &deployment,
        "Deployment",
        &uid,
    )
    .await?;
    ensure_ours(
        ctx,
        &ctx.caches.children.kube_services,
        &kube_service,
        "Service",
        &uid,
    )
    .await?;
    if apply_one(
        ctx,
        &ctx.caches.children.config_maps,
        config_map,
        "ConfigMap",
    )
    .await?
    .is_some()
    {
        applied.written.push("ConfigMap");
    }
    if let Some(live) = apply_one(
        ctx,
        &ctx.caches.children.deployments,
        deployment,
        "Deployment",
    )
    .await?
    {
        applied.written.push("Deployment");
        applied.deployment = Some(live);
    }
    if apply_one(
        ctx,
        &ctx.caches.children.kube_services,
        kube_service,
        "Service",
    )
    .await?
    .is_some()
    {
        applied.written.push("Service");
    }
    Ok(applied)
}

/// Fails with [`Error::ChildNotOwned`] when an object of the child's name exists and is not
/// controlled by the service. The caches hold only labelled children, so a cache miss is
/// confirmed with one GET (only when the child is about to be created).
async fn ensure_ours<K: Child>(
    ctx: &Context,
    store: &Store<CachedChild<K>>,
    desired: &K,
    kind: &'static str,
    owner_uid: &str,
) -> Result<(), Error> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let live = match store.get(&ObjectRef::new(&name).within(&namespace)) {
        Some(cached) => Some(cached.meta().owner_references.clone()),
        None => Api::<K>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&name)
            .await
            .map_err(api_error(kind, &namespace, &name))?
            .map(|live| live.meta().owner_references.clone()),
    };
    match live {
        Some(refs) if !is_controlled_by(refs.as_deref(), owner_uid) => Err(Error::ChildNotOwned {
            kind,
            namespace,
            name,
            owner: controller_of(refs.as_deref()),
        }),
        _ => Ok(()),
    }
}

/// Returns the object the API server holds after the write, or None when no write was needed.
async fn apply_one<K: Child>(
    ctx: &Context,
    store: &Store<CachedChild<K>>,
    mut object: K,
    kind: &'static str,
) -> Result<Option<K>, Error> {
    let name = object.name_any();
    let namespace = object.namespace().unwrap_or_default();
    let hash = digest(&object)?;
    object
        .annotations_mut()
        .insert(RENDER_HASH_ANNOTATION.to_owned(), hash);
    if let Some(cached) = store.get(&ObjectRef::new(&name).within(&namespace)) {
        let desired = to_value(&object)?;
        let live = cached.to_value().map_err(|source| Error::DecodeChild {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        if !needs_apply(&desired, &live) {
            return Ok(None);
        }
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let live = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(api_error(kind, &namespace, &name))?;
    ctx.metrics.child_applied(kind);
    tracing::info!(kind, %namespace, %name, "applied");
    Ok(Some(live))
}

/// A child kind the operator applies (ConfigMap, Deployment, Service).
trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

fn api_error<'a>(
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
) -> impl FnOnce(kube::Error) -> Error + 'a {
    move |source| Error::ApplyChild {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    }
}

fn to_value<K: Serialize>(object: &K) -> Result<serde_json::Value, Error> {
    serde_json::to_value(object).map_err(|source| Error::Serialize {
        what: "child object",
        source,
    })
}

fn digest<K: Serialize>(object: &K) -> Result<String, Error> {
    let bytes = serde_json::to_vec(object).map_err(|source| Error::Serialize {
        what: "child object",
        source,
    })?;
    Ok(sha256_hex_prefix(&bytes, 32))
}
