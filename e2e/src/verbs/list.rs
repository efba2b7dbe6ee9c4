//! `list`: label and field selectors, `limit`/`continue` paging, Tables.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::reply::{Reply, ok, present};
use crate::request::ResReq;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::shared::Shared;
use crate::status::{ApiError, ApiResult};
use crate::table;

type ObjEntry<'a> = (&'a (String, String), &'a Arc<Value>);

/// Serves the matching objects of one type, one page at a time.
pub fn list(shared: &Shared, r: &ResReq) -> ApiResult<Reply> {
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
