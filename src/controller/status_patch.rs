//! Writing `status`: server-side apply of the status subresource, so fields the operator stops
//! setting disappear.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::Error;
use crate::api::FIELD_MANAGER;

/// Applies `status` to `object`'s status subresource.
pub async fn patch_status<K>(
    client: &Client,
    object: &K,
    status: &impl Serialize,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::PatchStatus {
        object: format!("{} {namespace}/{name}", K::kind(&())),
        source: Box::new(source),
    })?;
    Ok(())
}

/// The end of a reconcile pass over an object that had no status yet. A pass that succeeds has
/// written the evaluated status, so the first-sight status (`Ready=Unknown`, `Reconciling`) would
/// be one more write per object; a pass that fails has written none, and then the first-sight
/// status is written, so GitOps health checks never read a status-less object as done. The pass's
/// error is returned either way (a failing first-sight write is logged, not raised over it).
pub async fn first_sight_if_failed<K>(
    client: &Client,
    object: &K,
    first_sight: &impl Serialize,
    outcome: Result<Action, Error>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    if outcome.is_err()
        && let Err(error) = patch_status(client, object, first_sight).await
    {
        tracing::warn!(%error, "writing the first-sight status after a failed reconcile");
    }
    outcome
}
