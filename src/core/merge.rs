//! The one deep-merge rule used for policy layers and plugin configuration: later wins, maps
//! merge key by key, everything else (lists included) is replaced.

use serde_json::Value;

/// Merges `overlay` into `base` in place.
pub fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_recursively_and_later_wins() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "b": 1});
        deep_merge(&mut base, json!({"a": {"y": 3, "z": 4}, "c": 5}));
        assert_eq!(base, json!({"a": {"x": 1, "y": 3, "z": 4}, "b": 1, "c": 5}));
    }

    #[test]
    fn lists_are_replaced_not_appended() {
        let mut base = json!({"paths": ["a", "b"]});
        deep_merge(&mut base, json!({"paths": ["c"]}));
        assert_eq!(base, json!({"paths": ["c"]}));
    }

    #[test]
    fn a_scalar_replaces_a_map_and_null_overrides() {
        let mut base = json!({"a": {"x": 1}, "b": 2});
        deep_merge(&mut base, json!({"a": 7, "b": null}));
        assert_eq!(base, json!({"a": 7, "b": null}));
    }
}
