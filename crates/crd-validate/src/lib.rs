//! CRD validation the way kube-apiserver does it, as plain functions over JSON: defaults,
//! unknown fields (strict field validation), the structural schema and the CEL rules
//! (`x-kubernetes-validations`, with kube-cel). One implementation, shared by `mmf check`
//! (offline) and the e2e test API server, so both refuse the same objects with the same words.

mod schema;

pub use schema::{apply_defaults, has_cel_rules, prune, validate};

use serde_json::Value;

/// One reason the API server would refuse an object: the field path (`spec.replicas`) and the
/// message as kube-apiserver words it (`Invalid value: -1: spec.replicas in body should be ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Dotted field path, `[i]` for list items; empty for the object itself.
    pub field: String,
    /// kube-apiserver's wording.
    pub message: String,
}

/// Everything the API server would refuse in `object` (a whole custom resource, as JSON) under
/// the CRD version's `openAPIV3Schema`, as a `kubectl apply` with strict field validation does:
/// unknown fields first (`unknown field "spec.foo"`, the server's strict-decoding wording),
/// then schema violations, then (only when the schema passes, as the server does) CEL rules.
pub fn validate_object(schema: &Value, object: &Value) -> Vec<Cause> {
    let mut object = object.clone();
    apply_defaults(schema, &mut object);
    let mut unknown = Vec::new();
    prune(schema, &mut object, "", true, &mut unknown);
    let mut causes: Vec<Cause> = unknown
        .into_iter()
        .map(|field| Cause {
            message: format!("unknown field \"{field}\""),
            field,
        })
        .collect();
    let mut found = Vec::new();
    validate(schema, &object, "", &mut found);
    if found.is_empty() {
        found = cel_causes(schema, &object, None);
    }
    causes.extend(
        found
            .into_iter()
            .map(|(field, message)| Cause { field, message }),
    );
    causes
}

/// `x-kubernetes-validations` (CEL) failures, evaluated with kube-cel (transition rules using
/// `oldSelf` when `old` is given). Field paths are dotted, like the schema's.
#[cfg(feature = "cel")]
pub fn cel_causes(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<(String, String)> {
    if !has_cel_rules(schema) {
        return vec![];
    }
    match kube::core::cel::Validator::new().validate(schema, object, old) {
        Ok(()) => vec![],
        Err(errors) => errors
            .iter()
            .map(|e| {
                let field = if e.field_path.is_empty() {
                    "<root>".to_string()
                } else {
                    e.field_path.clone()
                };
                // kube-apiserver (v1.36, checked against the real one) prints a scalar's value
                // and leaves objects and lists out.
                let message = match at_path(object, &e.field_path) {
                    v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                        format!("Invalid value: {v}: {}", e.message)
                    }
                    _ => format!("Invalid value: {}", e.message),
                };
                (field, message)
            })
            .collect(),
    }
}

/// The value at a dotted path with `[i]` list indices (`spec.services[0].routes[1].path`).
#[cfg(feature = "cel")]
fn at_path<'a>(object: &'a Value, path: &str) -> &'a Value {
    let mut v = object;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let mut parts = segment.split('[');
        if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            v = &v[name];
        }
        for index in parts {
            v = index
                .trim_end_matches(']')
                .parse::<usize>()
                .map_or(&Value::Null, |i| &v[i]);
        }
    }
    v
}

/// Without the `cel` feature, rules are stored but not enforced.
#[cfg(not(feature = "cel"))]
pub fn cel_causes(_: &Value, _: &Value, _: Option<&Value>) -> Vec<(String, String)> {
    vec![]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "minimum": 0.0, "maximum": 10.0},
            "plugins": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"],
                                  "properties": {"name": {"type": "string"}}}}}}}})
    }

    fn causes(spec: Value) -> Vec<(String, String)> {
        validate_object(&schema(), &json!({"metadata": {"name": "x"}, "spec": spec}))
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect()
    }

    #[test]
    fn a_float_bound_is_printed_like_go_prints_it() {
        assert_eq!(
            causes(json!({"replicas": 11})),
            [(
                "spec.replicas".to_owned(),
                "Invalid value: 11: spec.replicas in body should be less than or equal to 10"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn a_repeated_list_map_key_is_a_duplicate_value_at_the_later_item() {
        assert_eq!(
            causes(json!({"plugins": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})),
            [(
                "spec.plugins[2]".to_owned(),
                "Duplicate value: map[string]interface {}{\"name\":\"a\"}".to_owned()
            )]
        );
    }

    #[test]
    fn unknown_fields_come_first_with_the_strict_decoding_wording() {
        assert_eq!(
            causes(json!({"replicas": -1, "extra": true})),
            [
                (
                    "spec.extra".to_owned(),
                    "unknown field \"spec.extra\"".to_owned()
                ),
                (
                    "spec.replicas".to_owned(),
                    "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
                        .to_owned()
                ),
            ]
        );
    }

    #[cfg(feature = "cel")]
    #[test]
    fn a_path_with_list_indices_reaches_the_value() {
        let object = json!({"spec": {"services": [{"routes": [{}, {"path": "x"}]}]}});
        assert_eq!(
            at_path(&object, "spec.services[0].routes[1].path"),
            &json!("x")
        );
    }
}
