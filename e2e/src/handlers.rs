//! Resource verbs: get, list, create, update, patch (merge/JSON/strategic/apply), delete,
//! deletecollection. Writes run admission between a locked "prepare" and a locked "commit";
//! if the object changed in between, the write is re-prepared.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::admission::{self, Attrs};
use crate::lifecycle::{
    FieldValidation, after_removal, prepare_create, prepare_update, ready_to_vanish,
};
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::ssa::{self, ApplyOutcome};
use crate::status::{ApiError, ApiResult};
use crate::store::{EventType, State};
use crate::{deployment_sim, patch, table};

type ObjEntry<'a> = (&'a (String, String), &'a Arc<Value>);

/// A parsed request against a resource.
pub struct ResReq {
    pub verb: &'static str,
    pub info: Arc<ResourceInfo>,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub content_type: String,
    pub body: Bytes,
    pub user_agent: String,
}

impl ResReq {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
    pub(crate) fn ns_str(&self) -> &str {
        self.ns.as_deref().unwrap_or_default()
    }
    pub(crate) fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
    pub(crate) fn manager(&self) -> String {
        match self.q("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
    pub(crate) fn dry_run(&self) -> bool {
        self.q("dryRun") == Some("All")
    }
    pub(crate) fn fv(&self) -> FieldValidation {
        FieldValidation::parse(self.q("fieldValidation"))
    }
}

/// A successful reply: status code, body, warnings.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

pub(crate) fn ok(code: u16, body: Value, warnings: Vec<String>) -> ApiResult<Reply> {
    Ok(Reply {
        code,
        body,
        warnings,
    })
}

/// The object as served through `info`'s version.
pub fn present(info: &ResourceInfo, obj: &Value) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(info.api_version());
    o
}

pub fn parse_body(r: &ResReq) -> ApiResult<Value> {
    if r.body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if r.content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        return crate::protobuf::decode_envelope(&r.body)
            .map_err(|m| ApiError::new(415, "UnsupportedMediaType", m));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
        return Ok(v);
    }
    serde_saphyr::from_slice::<Value>(&r.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

pub(crate) fn rv_of(o: &Value) -> &str {
    o["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

pub async fn handle(shared: &Arc<Shared>, r: ResReq) -> ApiResult<Reply> {
    if r.sub.as_deref() == Some("scale") {
        return Box::pin(crate::scale::scale(shared, r)).await;
    }
    match r.verb {
        "get" => get(shared, &r),
        "list" => list(shared, &r),
        "create" => create(shared, &r).await,
        "update" => update(shared, &r).await,
        "patch" => patch_verb(shared, &r).await,
        "delete" => crate::deletion::delete(shared, &r).await,
        "deletecollection" => crate::deletion::delete_collection(shared, &r).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn get(shared: &Shared, r: &ResReq) -> ApiResult<Reply> {
    let st = shared.state();
    let obj = st
        .get(&r.info.key(), r.ns_str(), r.name_str())
        .ok_or_else(|| ApiError::not_found(&r.info, r.name_str()))?;
    let o = present(&r.info, &obj);
    if table::wants_table(&r.accept) {
        let include = r.q("includeObject").unwrap_or("Metadata");
        return ok(
            200,
            table::table(&r.info, &[o], rv_of(&obj), None, include, true),
            vec![],
        );
    }
    ok(200, o, vec![])
}

fn list(shared: &Shared, r: &ResReq) -> ApiResult<Reply> {
    let labels = LabelSelector::parse(r.q("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(r.q("fieldSelector").unwrap_or_default())?;
    let limit = r
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let st = shared.state();
    let mut start: Option<(String, String)> = None;
    let mut list_rv = st.rv;
    if let Some(c) = r.q("continue").filter(|c| !c.is_empty()) {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| ApiError::bad_request("invalid continue token"))?;
        let tok: Value = serde_json::from_slice(&raw)
            .map_err(|_| ApiError::bad_request("invalid continue token"))?;
        list_rv = tok["rv"].as_u64().unwrap_or(0);
        let compacted = st
            .types
            .get(&r.info.key())
            .map(|t| t.compacted)
            .unwrap_or(0);
        if list_rv < compacted {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        start = Some((
            tok["ns"].as_str().unwrap_or_default().into(),
            tok["name"].as_str().unwrap_or_default().into(),
        ));
    }
    let mut items = Vec::new();
    let mut next: Option<(String, String)> = None;
    let mut remaining = 0u64;
    if let Some(t) = st.types.get(&r.info.key()) {
        let range: Box<dyn Iterator<Item = ObjEntry<'_>>> = match &start {
            Some(s) => Box::new(t.objects.range(s.clone()..).filter(move |(k, _)| *k != s)),
            None => Box::new(t.objects.iter()),
        };
        for (k, o) in range {
            if let Some(ns) = &r.ns
                && k.0 != *ns
            {
                continue;
            }
            if !labels.matches(&o["metadata"]["labels"]) || !fields.matches(o) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                if next.is_none() {
                    next = items.last().map(|o: &Value| {
                        (
                            o["metadata"]["namespace"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            o["metadata"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        )
                    });
                }
                remaining += 1;
                continue;
            }
            items.push(present(&r.info, o));
        }
    }
    let cont = next.map(|(ns, name)| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"rv": list_rv, "ns": ns, "name": name}).to_string())
    });
    let rv = list_rv.to_string();
    if table::wants_table(&r.accept) {
        let include = r.q("includeObject").unwrap_or("Metadata");
        return ok(
            200,
            table::table(&r.info, &items, &rv, cont.as_deref(), include, true),
            vec![],
        );
    }
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(remaining);
    }
    ok(
        200,
        json!({"kind": r.info.list_kind(), "apiVersion": r.info.api_version(), "metadata": meta, "items": items}),
        vec![],
    )
}

/// Mutating then validating admission; returns the object as the webhooks left it.
#[allow(clippy::too_many_arguments)]
async fn admit(
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
fn after_write(shared: &Arc<Shared>, st: &mut State, info: &ResourceInfo, obj: &Value) {
    if info.group == "apiextensions.k8s.io" && info.kind == "CustomResourceDefinition" {
        st.registry.apply_crd(obj);
    }
    if info.group == "apps" && info.kind == "Deployment" {
        deployment_sim::on_write(shared, obj);
    }
}

async fn create(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
    let body = parse_body(r)?;
    if r.sub.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let manager = r.manager();
    let (mut obj, mut warnings) = {
        let mut st = shared.state();
        prepare_create(&mut st, &r.info, r.ns.as_deref(), body, r.fv())?
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ssa::track_update(None, &mut obj, &manager, &r.info.api_version(), "");
    obj = admit(shared, r, "CREATE", &name, obj, None, &mut warnings).await?;
    let mut st = shared.state();
    if st.get(&r.info.key(), r.ns_str(), &name).is_some() {
        return Err(ApiError::already_exists(&r.info, &name));
    }
    if r.dry_run() {
        return ok(201, present(&r.info, &obj), warnings);
    }
    if cfg!(not(feature = "cel"))
        && r.info.kind == "CustomResourceDefinition"
        && crate::schema::has_cel_rules(&obj["spec"])
    {
        warnings.push("x-kubernetes-validations (CEL) rules are stored but not enforced by the mmf-e2e test API server".into());
    }
    let stored = st.put(&r.info.key(), obj, EventType::Added);
    after_write(shared, &mut st, &r.info, &stored);
    ok(201, present(&r.info, &stored), warnings)
}

/// Commits an update prepared against `old`; `None` if `old` is no longer current.
fn commit_update(shared: &Arc<Shared>, r: &ResReq, old: &Value, new: Value) -> Option<Value> {
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

async fn update(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
    let body = parse_body(r)?;
    if body["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n != r.name_str())
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let want_rv = rv_of(&body).to_string();
    let manager = r.manager();
    let sub = r.sub.as_deref();
    for _ in 0..10 {
        let old = {
            let st = shared.state();
            st.get(&r.info.key(), r.ns_str(), r.name_str())
                .ok_or_else(|| ApiError::not_found(&r.info, r.name_str()))?
        };
        if !want_rv.is_empty() && want_rv != rv_of(&old) {
            return Err(ApiError::conflict(&r.info, r.name_str()));
        }
        let (new, mut warnings) = prepare_update(&r.info, &old, body.clone(), sub, r.fv())?;
        let Some(mut new) = new else {
            return ok(200, present(&r.info, &old), warnings);
        };
        ssa::track_update(
            Some(&old),
            &mut new,
            &manager,
            &r.info.api_version(),
            sub.unwrap_or_default(),
        );
        new = admit(
            shared,
            r,
            "UPDATE",
            r.name_str(),
            new,
            Some(&old),
            &mut warnings,
        )
        .await?;
        if let Some(stored) = commit_update(shared, r, &old, new) {
            return ok(200, present(&r.info, &stored), warnings);
        }
        if !want_rv.is_empty() {
            return Err(ApiError::conflict(&r.info, r.name_str()));
        }
    }
    Err(ApiError::conflict(&r.info, r.name_str()))
}

fn apply_conflict(conflicts: &[(String, String)]) -> ApiError {
    let msg = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].0, conflicts[0].1
        )
    } else {
        let mut lines = Vec::new();
        for (m, paths) in ssa::group_conflicts(conflicts) {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut e = ApiError::new(409, "Conflict", msg);
    e.details = json!({"causes": conflicts.iter().map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p})).collect::<Vec<_>>()});
    e
}

pub(crate) async fn patch_verb(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
    let body = parse_body(r)?;
    let ct = r.content_type.as_str();
    let is_apply = ct.starts_with("application/apply-patch");
    let manager = r.manager();
    let sub = r.sub.as_deref();
    let force = r.q("force") == Some("true");
    if is_apply && r.q("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    if ct.starts_with("application/strategic-merge-patch") && r.info.crd {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    for _ in 0..10 {
        let old = shared.state().get(&r.info.key(), r.ns_str(), r.name_str());
        let Some(old) = old else {
            if !is_apply {
                return Err(ApiError::not_found(&r.info, r.name_str()));
            }
            // Apply creates.
            let skeleton = json!({"apiVersion": r.info.api_version(), "kind": r.info.kind, "metadata": {"name": r.name_str()}});
            let ApplyOutcome::Ok(mut merged) = ssa::apply(
                &skeleton,
                &body,
                &manager,
                &r.info.api_version(),
                sub.unwrap_or_default(),
                true,
            ) else {
                return Err(ApiError::internal(
                    "apply on a new object reported conflicts",
                ));
            };
            merged["metadata"]["name"] = json!(r.name_str());
            let (mut obj, mut warnings) = {
                let mut st = shared.state();
                prepare_create(&mut st, &r.info, r.ns.as_deref(), merged, r.fv())?
            };
            obj = admit(shared, r, "CREATE", r.name_str(), obj, None, &mut warnings).await?;
            let mut st = shared.state();
            if st.get(&r.info.key(), r.ns_str(), r.name_str()).is_some() {
                continue;
            }
            if r.dry_run() {
                return ok(201, present(&r.info, &obj), warnings);
            }
            let stored = st.put(&r.info.key(), obj, EventType::Added);
            after_write(shared, &mut st, &r.info, &stored);
            return ok(201, present(&r.info, &stored), warnings);
        };
        let mut new = (*old).clone();
        if is_apply {
            if !body["metadata"]["resourceVersion"].is_null()
                && body["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
            {
                return Err(ApiError::conflict(&r.info, r.name_str()));
            }
            match ssa::apply(
                &old,
                &body,
                &manager,
                &r.info.api_version(),
                sub.unwrap_or_default(),
                force,
            ) {
                ApplyOutcome::Ok(m) => new = m,
                ApplyOutcome::Conflicts(c) => return Err(apply_conflict(&c)),
            }
        } else if ct.starts_with("application/json-patch") {
            patch::json(&mut new, &body)?;
        } else if ct.starts_with("application/merge-patch") {
            patch::merge(&mut new, &body);
        } else if ct.starts_with("application/strategic-merge-patch") {
            patch::strategic(&mut new, &body)?;
        } else {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"
                ),
            ));
        }
        if rv_of(&new) != rv_of(&old) && !rv_of(&new).is_empty() {
            return Err(ApiError::conflict(&r.info, r.name_str()));
        }
        let (prepared, mut warnings) = prepare_update(&r.info, &old, new, sub, r.fv())?;
        let Some(mut new) = prepared else {
            return ok(200, present(&r.info, &old), warnings);
        };
        if !is_apply {
            ssa::track_update(
                Some(&old),
                &mut new,
                &manager,
                &r.info.api_version(),
                sub.unwrap_or_default(),
            );
        }
        new = admit(
            shared,
            r,
            "UPDATE",
            r.name_str(),
            new,
            Some(&old),
            &mut warnings,
        )
        .await?;
        if let Some(stored) = commit_update(shared, r, &old, new) {
            return ok(200, present(&r.info, &stored), warnings);
        }
    }
    Err(ApiError::conflict(&r.info, r.name_str()))
}
