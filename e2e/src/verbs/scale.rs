//! The `scale` subresource of Deployments (`kubectl scale`).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::patch;
use crate::reply::{Reply, ok};
use crate::request::{ResReq, parse_body};
use crate::shared::Shared;
use crate::status::{ApiError, ApiResult};

/// The `autoscaling/v1` Scale view of a Deployment.
fn scale_of(obj: &Value) -> Value {
    let selector: Vec<String> = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")},
    })
}

/// `deployments/{name}/scale`: get, update and patch `spec.replicas`.
pub async fn scale(shared: &Arc<Shared>, r: ResReq) -> ApiResult<Reply> {
    let cur = shared
        .state()
        .get(&r.info.key(), r.ns_str(), r.name_str())
        .ok_or_else(|| ApiError::not_found(&r.info, r.name_str()))?;
    let mut view = scale_of(&cur);
    match r.verb {
        "get" => return ok(200, view, vec![]),
        "update" => view = parse_body(&r)?,
        "patch" => {
            let body = parse_body(&r)?;
            let ct = r.content_type.as_str();
            if ct.starts_with("application/json-patch") {
                patch::json(&mut view, &body)?;
            } else if ct.starts_with("application/strategic-merge-patch") {
                patch::strategic(&mut view, &body)?;
            } else {
                patch::merge(&mut view, &body);
            }
        }
        _ => return Err(ApiError::method_not_allowed()),
    }
    let replicas = view["spec"]["replicas"].clone();
    let inner = ResReq {
        verb: "patch",
        info: r.info.clone(),
        ns: r.ns.clone(),
        name: r.name.clone(),
        sub: None,
        query: r.query.clone(),
        accept: String::new(),
        content_type: "application/merge-patch+json".into(),
        body: Bytes::from(json!({"spec": {"replicas": replicas}}).to_string()),
        user_agent: r.user_agent.clone(),
    };
    let reply = super::patch::patch(shared, &inner).await?;
    ok(200, scale_of(&reply.body), reply.warnings)
}
