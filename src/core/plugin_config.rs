//! A plugin's effective configuration: the layers of DESIGN.md section 3 merged in order, then
//! validated against the plugin's JSON Schema.

use serde_json::Value;

use super::limits::check_schema;
use super::merge::deep_merge;
use crate::api::MmfPlugin;
use crate::core::config::PluginSettings;

/// Merges, later wins: plugin `spec.config` < `spec.environments[env]` < settings file
/// `default` < its `<env>` section < each of `overrides` in order (service-level config).
pub fn merged_config(
    plugin: &MmfPlugin,
    environment: &str,
    settings: Option<&PluginSettings>,
    overrides: &[&Value],
) -> Value {
    let mut merged = Value::Object(Default::default());
    let layers = [
        plugin.spec.config.as_ref(),
        plugin.spec.environments.get(environment),
        settings.and_then(|s| s.default.as_ref()),
        settings.and_then(|s| s.for_environment(environment)),
    ];
    for layer in layers
        .into_iter()
        .flatten()
        .chain(overrides.iter().copied())
    {
        deep_merge(&mut merged, layer.clone());
    }
    merged
}

/// Why a configuration does not fit a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigProblem {
    /// `configSchema` itself is not a usable JSON Schema.
    BadSchema(String),
    /// Each error: JSON pointer into the configuration, and what is wrong there.
    Invalid(Vec<String>),
}

/// Validates `config` against the plugin's `configSchema` (no schema: anything goes). Remote
/// `$ref`s are never fetched: the check must be fast and offline, on every path.
pub fn validate_config(plugin: &MmfPlugin, config: &Value) -> Result<(), ConfigProblem> {
    let Some(schema) = plugin.spec.config_schema.as_ref() else {
        return Ok(());
    };
    check_schema(schema).map_err(ConfigProblem::BadSchema)?;
    let validator = jsonschema::validator_for(schema)
        .map_err(|error| ConfigProblem::BadSchema(error.to_string()))?;
    let errors: Vec<String> = validator
        .iter_errors(config)
        .map(|error| {
            let path = error.instance_path().as_str();
            let path = if path.is_empty() { "/" } else { path };
            format!("{path}: {}", truncate(&error.to_string(), 240))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigProblem::Invalid(errors))
    }
}

/// Keeps messages about large values readable in a condition or an event.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
