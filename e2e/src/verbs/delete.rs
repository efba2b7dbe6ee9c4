//! Delete and deletecollection: admission, preconditions, propagation policy.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::{self, Attrs};
use crate::lifecycle::delete_object;
use crate::reply::{Reply, ok, present};
use crate::request::ResReq;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::shared::Shared;
use crate::status::{ApiError, ApiResult};

fn delete_options(r: &ResReq) -> Value {
    let mut opts = if r.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&r.body).unwrap_or(json!({}))
    };
    if let Some(p) = r.q("propagationPolicy") {
        opts["propagationPolicy"] = json!(p);
    }
    if opts["propagationPolicy"].is_null() && opts["orphanDependents"] == Value::Bool(true) {
        opts["propagationPolicy"] = json!("Orphan");
    }
    opts
}

pub async fn delete(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
    let opts = delete_options(r);
    let policy = opts["propagationPolicy"]
        .as_str()
        .unwrap_or("Background")
        .to_string();
    let old = shared
        .state()
        .get(&r.info.key(), r.ns_str(), r.name_str())
        .ok_or_else(|| ApiError::not_found(&r.info, r.name_str()))?;
    let pre = &opts["preconditions"];
    if (pre["uid"].is_string() && pre["uid"] != old["metadata"]["uid"])
        || (pre["resourceVersion"].is_string()
            && pre["resourceVersion"] != old["metadata"]["resourceVersion"])
    {
        return Err(ApiError::conflict(&r.info, r.name_str()));
    }
    let warnings = admission::validate(
        shared,
        Attrs {
            operation: "DELETE",
            info: &r.info,
            sub: None,
            namespace: r.ns_str(),
            name: r.name_str(),
            object: None,
            old: Some(&old),
            dry_run: r.dry_run(),
        },
    )
    .await?;
    if r.dry_run() {
        return ok(200, present(&r.info, &old), warnings);
    }
    let (obj, _gone) = {
        let mut st = shared.state();
        delete_object(&mut st, &r.info, r.ns_str(), r.name_str(), &policy)?
    };
    shared.gc_notify.notify_one();
    ok(200, present(&r.info, &obj), warnings)
}

pub async fn delete_collection(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
    let labels = LabelSelector::parse(r.q("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(r.q("fieldSelector").unwrap_or_default())?;
    let policy = delete_options(r)["propagationPolicy"]
        .as_str()
        .unwrap_or("Background")
        .to_string();
    let targets: Vec<Arc<Value>> = {
        let st = shared.state();
        st.types
            .get(&r.info.key())
            .map(|t| {
                t.objects
                    .iter()
                    .filter(|(k, o)| {
                        r.ns.as_ref().is_none_or(|ns| k.0 == *ns)
                            && labels.matches(&o["metadata"]["labels"])
                            && fields.matches(o)
                    })
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut items = Vec::new();
    for o in targets {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        admission::validate(
            shared,
            Attrs {
                operation: "DELETE",
                info: &r.info,
                sub: None,
                namespace: ns,
                name,
                object: None,
                old: Some(&o),
                dry_run: r.dry_run(),
            },
        )
        .await?;
        if r.dry_run() {
            items.push(present(&r.info, &o));
            continue;
        }
        let mut st = shared.state();
        if let Ok((obj, _)) = delete_object(&mut st, &r.info, ns, name, &policy) {
            items.push(present(&r.info, &obj));
        }
    }
    shared.gc_notify.notify_one();
    let rv = shared.state().rv.to_string();
    ok(
        200,
        json!({"kind": r.info.list_kind(), "apiVersion": r.info.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
        vec![],
    )
}
