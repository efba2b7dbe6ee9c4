//! `update` (PUT of a whole object or its status).

use std::sync::Arc;

use super::write::{admit, commit_update};
use crate::lifecycle::prepare_update;
use crate::reply::{Reply, ok, present};
use crate::request::{ResReq, parse_body, rv_of};
use crate::shared::Shared;
use crate::ssa;
use crate::status::{ApiError, ApiResult};

/// Replaces an object; a stale `resourceVersion` in the body is a 409 Conflict.
pub async fn update(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
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
