//! Resource verbs, one module each. Writes run admission between a locked "prepare" and a
//! locked "commit" (see [`write`]); if the object changed in between, the write is re-prepared.

mod create;
mod delete;
mod get;
mod list;
mod patch;
mod scale;
mod update;
pub mod watch;
mod write;

use std::sync::Arc;

use crate::reply::Reply;
use crate::request::ResReq;
use crate::shared::Shared;
use crate::status::{ApiError, ApiResult};

/// Runs `r` (any verb but watch, which streams: see [`watch::watch`]).
pub async fn handle(shared: &Arc<Shared>, r: ResReq) -> ApiResult<Reply> {
    if r.sub.as_deref() == Some("scale") {
        return Box::pin(scale::scale(shared, r)).await;
    }
    match r.verb {
        "get" => get::get(shared, &r),
        "list" => list::list(shared, &r),
        "create" => create::create(shared, &r).await,
        "update" => update::update(shared, &r).await,
        "patch" => patch::patch(shared, &r).await,
        "delete" => delete::delete(shared, &r).await,
        "deletecollection" => delete::delete_collection(shared, &r).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}
