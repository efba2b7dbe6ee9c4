//! `create` (POST to a collection).

use std::sync::Arc;

use super::write::{admit, after_write};
use crate::lifecycle::prepare_create;
use crate::reply::{Reply, ok, present};
use crate::request::{ResReq, parse_body};
use crate::shared::Shared;
use crate::ssa;
use crate::status::{ApiError, ApiResult};
use crate::store::EventType;

/// Creates an object; 409 AlreadyExists if the name is taken by the time admission returns.
pub async fn create(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<Reply> {
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
