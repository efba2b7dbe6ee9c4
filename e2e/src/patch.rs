//! JSON merge patch, JSON patch and a hand-written strategic merge patch for built-in kinds.
//!
//! Strategic merge uses a built-in table of list merge keys (no crate implements it):
//! containers/initContainers/env/volumes/imagePullSecrets by `name`, container ports by
//! `containerPort`, service ports by `port`, volumeMounts by `mountPath`, conditions by `type`,
//! ownerReferences by `uid`. Lists not in the table are replaced, as for atomic lists.

use serde_json::{Map, Value};

use crate::status::{ApiError, ApiResult};

/// RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch.
pub fn json(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &p).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

/// The merge key of a list field, if it is an associative list in Kubernetes' built-in types.
pub fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        // A webhook configuration's webhooks: a list map keyed by name, as kube-apiserver's
        // schema says (so a caBundle patch by one manager is not ownership of every webhook).
        | "webhooks" => Some("name"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        "volumeMounts" | "volumeDevices" => Some("mountPath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Primitive lists merged as sets.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a strategic merge patch (with `$patch`, `$retainKeys`, `$setElementOrder`,
/// `$deleteFromPrimitiveList` directives) to `target`.
pub fn strategic(target: &mut Value, patch: &Value) -> ApiResult<()> {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => merge_map(t, p),
        _ => Err(ApiError::bad_request(
            "strategic merge patch must be an object",
        )),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> ApiResult<()> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        *target = strip_directives(p);
        return Ok(());
    }
    for (k, pv) in patch {
        if k == "$patch" || k.starts_with("$setElementOrder/") || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (target.get_mut(field), pv.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        match pv {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(k);
                    continue;
                }
                match target.get_mut(k) {
                    Some(Value::Object(tm)) => merge_map(tm, pm)?,
                    _ => {
                        let mut fresh = Map::new();
                        merge_map(&mut fresh, pm)?;
                        target.insert(k.clone(), Value::Object(fresh));
                    }
                }
            }
            Value::Array(pl) => {
                let merged = match target.get(k) {
                    Some(Value::Array(tl)) => merge_list(k, tl, pl)?,
                    _ => merge_list(k, &[], pl)?,
                };
                target.insert(k.clone(), Value::Array(merged));
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        target.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    Ok(())
}

fn merge_list(field: &str, target: &[Value], patch: &[Value]) -> ApiResult<Vec<Value>> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .cloned()
            .map(strip_value)
            .collect());
    }
    if is_set_list(field) {
        let mut out = target.to_vec();
        for p in patch {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        return Ok(out);
    }
    let Some(key) = merge_key(field, if patch.is_empty() { target } else { patch }) else {
        return Ok(patch.iter().cloned().map(strip_value).collect());
    };
    let mut out: Vec<Value> = target.to_vec();
    for p in patch {
        let Some(pk) = p.get(key) else {
            return Err(ApiError::bad_request(format!(
                "map: {p} does not contain declared merge key: {key}"
            )));
        };
        let pos = out.iter().position(|t| t.get(key) == Some(pk));
        let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                if let (Some(tm), Some(pm)) = (out[i].as_object_mut(), p.as_object()) {
                    merge_map(tm, pm)?;
                }
            }
            (None, false) => out.push(strip_value(p.clone())),
        }
    }
    Ok(out)
}

fn strip_value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives(m)),
        other => other,
    }
}

fn strip_directives(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k, strip_value(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name_and_env_by_name() {
        let mut t = json!({"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"A","value":"1"}]},{"name":"b","image":"y"}]}});
        let p = json!({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"name":"a","env":[{"name":"B","value":"2"}]},{"name":"b","$patch":"delete"}]}});
        super::strategic(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}})
        );
    }
}
