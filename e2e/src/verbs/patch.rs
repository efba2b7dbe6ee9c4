//! `patch`: JSON, merge, strategic-merge and server-side apply (which may create).

use std::sync::Arc;

use serde_json::json;

use super::write::{admit, after_write, commit_update};
use crate::lifecycle::{prepare_create, prepare_update};
use crate::patch;
use crate::reply::{Reply, ok, present};
use crate::request::{ResReq, parse_body, rv_of};
use crate::shared::Shared;
use crate::ssa::{self, ApplyOutcome};
use crate::status::{ApiError, ApiResult};
use crate::store::EventType;

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

/// Patches an object (server-side apply creates it when missing).
pub async fn patch(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
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
