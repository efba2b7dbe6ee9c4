//! `get`: one object, as JSON or as a kubectl Table.

use crate::reply::{Reply, ok, present};
use crate::request::{ResReq, rv_of};
use crate::shared::Shared;
use crate::status::{ApiError, ApiResult};
use crate::table;

/// Serves one object.
pub fn get(shared: &Shared, r: &ResReq) -> ApiResult<Reply> {
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
