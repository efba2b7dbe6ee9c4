//! Schema fragments schemars cannot derive in the form a structural CRD schema needs.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Free-form JSON object (plugin configuration, JSON Schema documents): kept verbatim by the API
/// server instead of being pruned.
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Map of environment name to a free-form configuration object.
pub fn environment_overrides(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}
