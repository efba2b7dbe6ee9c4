//! The steps every write shares: admission, side effects, and the compare-and-commit of an update.

use std::sync::Arc;

use serde_json::Value;

use crate::admission::{self, Attrs};
use crate::deployment_sim;
use crate::lifecycle::{after_removal, ready_to_vanish};
use crate::request::{ResReq, rv_of};
use crate::resources::ResourceInfo;
use crate::shared::Shared;
use crate::status::ApiResult;
use crate::store::{EventType, State};

/// Mutating then validating admission; returns the object as the webhooks left it.
#[allow(clippy::too_many_arguments)]
pub async fn admit(
    shared: &Arc<Shared>,
    r: &ResReq,
    operation: &str,
    name: &str,
    obj: Value,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    fn attrs<'a>(
        r: &'a ResReq,
        operation: &'a str,
        name: &'a str,
        object: &'a Value,
        old: Option<&'a Value>,
    ) -> Attrs<'a> {
        Attrs {
            operation,
            info: &r.info,
            sub: r.sub.as_deref(),
            namespace: r.ns_str(),
            name,
            object: Some(object),
            old,
            dry_run: r.dry_run(),
        }
    }
    let (mutated, w) = admission::mutate(shared, attrs(r, operation, name, &obj, old)).await?;
    warnings.extend(w);
    let obj = mutated.unwrap_or(obj);
    warnings.extend(admission::validate(shared, attrs(r, operation, name, &obj, old)).await?);
    Ok(obj)
}

/// Side effects of a committed write.
pub fn after_write(shared: &Arc<Shared>, st: &mut State, info: &ResourceInfo, obj: &Value) {
    if info.group == "apiextensions.k8s.io" && info.kind == "CustomResourceDefinition" {
        st.registry.apply_crd(obj);
    }
    if info.group == "apps" && info.kind == "Deployment" {
        deployment_sim::on_write(shared, obj);
    }
}

/// Commits an update prepared against `old`; `None` if `old` is no longer current.
pub fn commit_update(shared: &Arc<Shared>, r: &ResReq, old: &Value, new: Value) -> Option<Value> {
    let mut st = shared.state();
    let key = r.info.key();
    let cur = st.get(&key, r.ns_str(), r.name_str())?;
    if rv_of(&cur) != rv_of(old) {
        return None;
    }
    if r.dry_run() {
        return Some(new);
    }
    if ready_to_vanish(&new) && !(r.info.group.is_empty() && r.info.plural == "namespaces") {
        let gone = st
            .remove(&key, r.ns_str(), r.name_str())
            .map(|g| (*g).clone())
            .unwrap_or(new);
        after_removal(&mut st, &r.info, &gone);
        shared.gc_notify.notify_one();
        return Some(gone);
    }
    let stored = st.put(&key, new, EventType::Modified);
    after_write(shared, &mut st, &r.info, &stored);
    if !stored["metadata"]["deletionTimestamp"].is_null() {
        shared.gc_notify.notify_one();
    }
    Some((*stored).clone())
}
