//! Structural-schema handling for custom resources: defaulting, pruning of unknown fields
//! (or rejecting them under `fieldValidation=Strict`) and OpenAPI v3 validation of the common
//! keywords (type, required, enum, min/max, lengths, items, pattern is not enforced).

use serde_json::Value;

/// Fills in `default`s from the schema, recursively (like the apiserver does on read and write).
pub fn apply_defaults(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, ps) in props {
                    if !m.contains_key(k)
                        && let Some(d) = ps.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        apply_defaults(ps, child);
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for child in m.values_mut() {
                    apply_defaults(&schema["additionalProperties"], child);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for i in items {
                apply_defaults(&schema["items"], i);
            }
        }
        _ => {}
    }
}

/// Removes fields the schema does not declare; returns their paths (for Strict/Warn).
pub fn prune(schema: &Value, v: &mut Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true)
        && schema["properties"].is_null()
    {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                let keep_unknown =
                    schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    let child_path = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                        continue;
                    }
                    match props.get(&k) {
                        Some(ps) => {
                            if let Some(c) = m.get_mut(&k) {
                                prune(ps, c, &child_path, false, unknown);
                            }
                        }
                        None if keep_unknown => {}
                        None => {
                            m.remove(&k);
                            unknown.push(child_path);
                        }
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for (k, c) in m.iter_mut() {
                    prune(
                        &schema["additionalProperties"],
                        c,
                        &format!("{path}.{k}"),
                        false,
                        unknown,
                    );
                }
            } else if schema["type"] == "object"
                && schema["additionalProperties"].is_null()
                && !root
            {
                for k in m.keys() {
                    unknown.push(format!("{path}.{k}"));
                }
                m.clear();
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, c) in items.iter_mut().enumerate() {
                prune(&schema["items"], c, &format!("{path}[{i}]"), false, unknown);
            }
        }
        _ => {}
    }
}

/// Validates against the schema; returns `(field, message)` causes like kube-apiserver.
pub fn validate(schema: &Value, v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    if v.is_null() {
        if schema["nullable"] != Value::Bool(true) && !path.is_empty() {
            out.push((
                path.into(),
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let shown = |v: &Value| match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if let Some(ty) = schema["type"].as_str() {
        let ok = match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => {
                v.is_string()
                    || (schema["x-kubernetes-int-or-string"] == Value::Bool(true) && v.is_i64())
            }
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            let actual = match v {
                Value::Object(_) => "object",
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_f64() => "number",
                Value::Number(_) => "integer",
                Value::Null => "null",
            };
            out.push((
                path.into(),
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {ty}: \"{actual}\""
                ),
            ));
            return;
        }
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        let allowed: Vec<String> = e.iter().map(shown).collect();
        out.push((
            path.into(),
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                allowed.join(", ")
            ),
        ));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            out.push((
                path.into(),
                format!(
                    "Invalid value: {}: {path} in body should be greater than or equal to {}",
                    shown(v),
                    go_float(min)
                ),
            ));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            out.push((
                path.into(),
                format!(
                    "Invalid value: {}: {path} in body should be less than or equal to {}",
                    shown(v),
                    go_float(max)
                ),
            ));
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64()
            && len < min
        {
            out.push((
                path.into(),
                format!(
                    "Invalid value: {}: {path} in body should be at least {min} chars long",
                    shown(v)
                ),
            ));
        }
        if let Some(max) = schema["maxLength"].as_u64()
            && len > max
        {
            out.push((
                path.into(),
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
    }
    if let Some(m) = v.as_object() {
        if let Some(req) = schema["required"].as_array() {
            for r in req.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    let p = if path.is_empty() {
                        r.to_string()
                    } else {
                        format!("{path}.{r}")
                    };
                    out.push((p, "Required value".into()));
                }
            }
        }
        let props = schema["properties"].as_object();
        for (k, c) in m {
            if path.is_empty() && (k == "metadata" || k == "apiVersion" || k == "kind") {
                continue;
            }
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                validate(ps, c, &p, out);
            } else if schema["additionalProperties"].is_object() {
                validate(&schema["additionalProperties"], c, &p, out);
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(min) = schema["minItems"].as_u64()
            && (a.len() as u64) < min
        {
            out.push((
                path.into(),
                format!(
                    "Invalid value: {}: {path} in body should have at least {min} items",
                    a.len()
                ),
            ));
        }
        if let Some(max) = schema["maxItems"].as_u64()
            && (a.len() as u64) > max
        {
            out.push((
                path.into(),
                format!("Too many: {}: must have at most {max} items", a.len()),
            ));
        }
        if schema["items"].is_object() {
            for (i, c) in a.iter().enumerate() {
                validate(&schema["items"], c, &format!("{path}[{i}]"), out);
            }
        }
    }
}

/// Lists the `x-kubernetes-validations` rules that are present but not enforced (documented gap).
pub fn has_cel_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => {
            m.contains_key("x-kubernetes-validations") || m.values().any(has_cel_rules)
        }
        Value::Array(a) => a.iter().any(has_cel_rules),
        _ => false,
    }
}

/// A bound as kube-apiserver prints it (Go's `%v` of a float64: `1`, not `1.0`).
fn go_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}
