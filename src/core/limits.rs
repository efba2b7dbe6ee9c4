//! Every size and depth cap on input, in one place, and the one depth check. An input over a
//! cap is refused with the file or object, the field and the limit named, before anything
//! recursive or expensive runs on it (Crossplane's 2023 audit found a DoS from an oversized
//! package; LESSONS.md).

use serde_json::Value;

const MIB: usize = 1024 * 1024;

/// A manifest file for `mmf render`/`mmf check`. kube-apiserver caps a request body at
/// 3 MiB, so nothing larger could be applied anyway.
pub const MAX_MANIFEST_BYTES: usize = 3 * MIB;

/// An AdmissionReview body. kube-apiserver accepts requests up to 3 MiB and a review of an
/// update carries the new object and the stored one (etcd stores at most 1.5 MiB), so a
/// legitimate review stays under 3 + 1.5 MiB; anything larger is not from the API server.
pub const MAX_ADMISSION_REVIEW_BYTES: usize = 4 * MIB + MIB / 2;

/// A config file (an environment policy or plugin settings): a policy is a few kilobytes.
pub const MAX_CONFIG_FILE_BYTES: usize = MIB;

/// A plugin package file read by `mmf plugin`.
pub const MAX_PACKAGE_FILE_BYTES: usize = MIB;

/// A PEM key file.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// Nesting of mappings and lists in any YAML or JSON input (manifests, reviewed objects,
/// config files). It equals serde-saphyr's default budget, so YAML readers refuse deeper
/// documents while parsing; JSON (admission) is checked with [`check_depth`].
pub const MAX_DEPTH: usize = 64;

/// Documents (not blank) in one manifest file: each is parsed on its own, so a file of tiny
/// documents costs a parse each.
pub const MAX_DOCUMENTS: usize = 10_000;

/// Events that YAML aliases may replay in one document. Manifests rarely use aliases; the
/// parser's default (a million) lets a "billion laughs" document keep `mmf check` busy for
/// seconds before it is refused.
pub const MAX_YAML_ALIAS_EVENTS: usize = 10_000;

/// A plugin's `spec.configSchema`, serialized as JSON. The schema is compiled on every
/// admission and reconcile of every service using the plugin, so it must stay small.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// Nesting of a `spec.configSchema`.
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// Path segments shown when naming a too-deep field: enough to find it, short enough for a
/// condition message.
const SHOWN_SEGMENTS: usize = 6;

/// A value nested deeper than allowed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: nested deeper than the {limit} levels allowed")]
pub struct TooDeep {
    /// The first field past the limit, as `spec.config.a.b…` (shortened).
    pub field: String,
    /// The limit that was exceeded.
    pub limit: usize,
}

/// Checks that `value` nests at most `limit` levels (a scalar is depth 0, `{"a": 1}` depth 1),
/// naming the first field past the limit relative to `prefix` (for example `spec.config`).
/// Iterative, so the check itself cannot overflow the stack.
pub fn check_depth(value: &Value, prefix: &str, limit: usize) -> Result<(), TooDeep> {
    // (value, depth of its container level, path segments to it)
    let mut stack: Vec<(&Value, usize, Vec<String>)> = vec![(value, 0, Vec::new())];
    while let Some((value, depth, path)) = stack.pop() {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[{i}]"), v))
                .collect(),
            _ => continue,
        };
        if depth + 1 > limit {
            return Err(TooDeep {
                field: shown_path(prefix, &path),
                limit,
            });
        }
        for (segment, child) in children {
            let mut child_path = path.clone();
            if child_path.len() <= SHOWN_SEGMENTS {
                child_path.push(segment);
            }
            stack.push((child, depth + 1, child_path));
        }
    }
    Ok(())
}

fn shown_path(prefix: &str, path: &[String]) -> String {
    let mut shown = prefix.to_owned();
    for segment in path.iter().take(SHOWN_SEGMENTS) {
        if !segment.starts_with('[') && !shown.is_empty() {
            shown.push('.');
        }
        shown.push_str(segment);
    }
    if path.len() > SHOWN_SEGMENTS {
        shown.push('…');
    }
    if shown.is_empty() {
        shown.push_str("the document");
    }
    shown
}

/// Why a `spec.configSchema` is refused before it is compiled.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(schema).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_SCHEMA_BYTES {
        return Err(format!(
            "spec.configSchema is {bytes} bytes as JSON, more than the {MAX_SCHEMA_BYTES} allowed"
        ));
    }
    check_depth(schema, "spec.configSchema", MAX_SCHEMA_DEPTH).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(levels: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!({ "a": value });
        }
        value
    }

    #[test]
    fn a_value_at_the_limit_passes_and_one_level_more_names_the_field() {
        assert_eq!(check_depth(&nested(3), "spec", 3), Ok(()));
        assert_eq!(
            check_depth(&nested(4), "spec", 3),
            Err(TooDeep {
                field: "spec.a.a.a".to_owned(),
                limit: 3
            })
        );
    }

    #[test]
    fn lists_count_as_levels_and_show_their_index() {
        let value = json!({"items": [{"x": [1]}]});
        assert_eq!(check_depth(&value, "", 4), Ok(()));
        assert_eq!(check_depth(&value, "", 3).unwrap_err().field, "items[0].x");
    }

    #[test]
    fn a_very_deep_path_is_shortened() {
        let error = check_depth(&nested(1000), "spec.config", MAX_DEPTH).unwrap_err();
        assert_eq!(
            error.to_string(),
            "spec.config.a.a.a.a.a.a…: nested deeper than the 64 levels allowed"
        );
    }

    #[test]
    fn schemas_over_the_size_or_depth_cap_are_refused_by_name() {
        let big = json!({"type": "object", "description": "d".repeat(MAX_SCHEMA_BYTES)});
        assert_eq!(
            check_schema(&big).unwrap_err(),
            format!(
                "spec.configSchema is {} bytes as JSON, more than the 65536 allowed",
                MAX_SCHEMA_BYTES + 34
            )
        );
        assert!(check_schema(&nested(MAX_SCHEMA_DEPTH)).is_ok());
        assert_eq!(
            check_schema(&nested(MAX_SCHEMA_DEPTH + 1)).unwrap_err(),
            "spec.configSchema.a.a.a.a.a.a…: nested deeper than the 32 levels allowed"
        );
    }
}
