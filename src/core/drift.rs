//! Drift: whether a live object still holds everything the operator would apply.
//!
//! The desired object must be a subset of the live one: every field we set is present with the
//! same value. Fields only the API server or other managers set (defaults, status, extra
//! labels, `managedFields`) are ignored, so a steady state needs no write, while a hand-made
//! `kubectl scale` or an edited ConfigMap is drift to repair. The rule knows nothing about the
//! restart history: the same answer right after a start as after a week of running.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use super::quantity::MilliQuantity;

/// True when `live` lacks something of `desired` (or holds a different value), so `desired`
/// must be applied again.
pub fn needs_apply(desired: &Value, live: &Value) -> bool {
    !contains(desired, live, None)
}

/// Whether `live` holds `desired`; `key` is the field name `desired` sits under.
fn contains(desired: &Value, live: &Value, key: Option<&str>) -> bool {
    match (desired, live) {
        // We never set null: k8s-openapi skips unset fields, so a null is "no opinion".
        (Value::Null, _) => true,
        (Value::Object(want), Value::Object(have)) => {
            want.iter().all(|(field, value)| match have.get(field) {
                Some(live_value) => contains(value, live_value, Some(field)),
                None => is_empty(value),
            })
        }
        (Value::Object(want), Value::Null) => want.values().all(is_empty),
        (Value::Array(want), Value::Array(have)) => lists_match(want, have),
        (Value::Array(want), Value::Null) => want.is_empty(),
        (Value::Number(want), Value::Number(have)) => match (want.as_i64(), have.as_i64()) {
            (Some(want), Some(have)) => want == have,
            _ => want.as_f64() == have.as_f64(),
        },
        (Value::String(want), Value::String(have)) => {
            want == have || (is_quantity_field(key) && same_quantity(want, have))
        }
        (Value::String(want), Value::Number(have)) if is_quantity_field(key) => {
            same_quantity(want, &have.to_string())
        }
        (Value::Number(want), Value::String(have)) if is_quantity_field(key) => {
            same_quantity(&want.to_string(), have)
        }
        (want, have) => want == have,
    }
}

/// Empty values are dropped by the API server (`omitempty`): a missing live field holds them.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Lists of named objects (containers, env, volumes, ports) are keyed by `name`, as server-side
/// apply merges them: each desired item must be in the live list, which may hold more items
/// owned by others. Other lists are atomic: the same items in the same order.
fn lists_match(want: &[Value], have: &[Value]) -> bool {
    let keyed = !want.is_empty() && want.iter().all(|item| item.get("name").is_some());
    if keyed {
        return want.iter().all(|item| {
            have.iter()
                .find(|candidate| candidate.get("name") == item.get("name"))
                .is_some_and(|candidate| contains(item, candidate, None))
        });
    }
    want.len() == have.len()
        && want
            .iter()
            .zip(have)
            .all(|(item, candidate)| contains(item, candidate, None))
}

/// Resource quantities are normalized by the API server (`1000m` becomes `1`), so they compare
/// by value; only under the fields that hold quantities.
fn is_quantity_field(key: Option<&str>) -> bool {
    matches!(
        key,
        Some(
            "cpu"
                | "memory"
                | "ephemeral-storage"
                | "storage"
                | "hugepages-2Mi"
                | "hugepages-1Gi"
                | "sizeLimit"
        )
    )
}

fn same_quantity(want: &str, have: &str) -> bool {
    match (MilliQuantity::parse(want), MilliQuantity::parse(have)) {
        (Ok(want), Ok(have)) => want == have,
        _ => false,
    }
}

/// Whether an existing object is the child of the owner with `owner_uid` (its controller
/// ownerReference). Anything else with the child's name belongs to someone else and is never
/// overwritten: applying with force would silently take it over.
pub fn is_controlled_by(owner_references: Option<&[OwnerReference]>, owner_uid: &str) -> bool {
    owner_references
        .unwrap_or_default()
        .iter()
        .any(|r| r.controller == Some(true) && r.uid == owner_uid)
}

/// Who controls an object, for the message when it is not us.
pub fn controller_of(owner_references: Option<&[OwnerReference]>) -> String {
    owner_references
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
        .map_or_else(
            || "no controller ownerReference".to_owned(),
            |r| format!("controlled by {} {}", r.kind, r.name),
        )
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
