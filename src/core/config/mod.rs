//! The environment policy (`config/base.yaml` layered with `config/<env>.yaml`) and the
//! per-plugin settings (`config/plugins/<plugin>.yaml`).
//!
//! Parsing and layering are pure ([`ConfigSet::from_sources`]): text in, typed policy out,
//! trusted keys parsed once here. Reading the files is the shell's job.

mod policy;

pub use policy::{
    EnvironmentPolicy, LoadingMode, PluginsPolicy, ResourceLimits, Sandboxing, SecurityPolicy,
};

use std::collections::BTreeMap;

use serde_json::Value;

use super::manifest::{SourceLocation, parse_yaml_value, yaml_error};
use super::merge::deep_merge;

/// Name of the layer every environment starts from.
pub const BASE_FILE: &str = "base.yaml";

/// A configuration problem, always naming the file (and line and column when there is one).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{location}: {message}")]
    Invalid {
        location: SourceLocation,
        message: String,
    },
    #[error(
        "environment {name:?} has no config file {name}.yaml in the config directory (known environments: {})",
        known.join(", ")
    )]
    UnknownEnvironment { name: String, known: Vec<String> },
}

/// Settings of one plugin in MMF's shape: a `default` section plus optional sections per
/// environment, each a configuration object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSettings {
    /// `default:` section.
    pub default: Option<Value>,
    /// Sections named after environments.
    pub environments: BTreeMap<String, Value>,
}

impl PluginSettings {
    /// The section for `environment`, if any.
    pub fn for_environment(&self, environment: &str) -> Option<&Value> {
        self.environments.get(environment)
    }
}

/// Everything read from a config directory: each environment's layered policy and the plugin
/// settings. Immutable; the controller swaps a whole new set in when files change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSet {
    environments: BTreeMap<String, EnvironmentPolicy>,
    plugin_settings: BTreeMap<String, PluginSettings>,
}

/// A config file's name (relative to the config dir) and its text.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// Path as shown in messages, for example `config/production.yaml`.
    pub path: String,
    /// Path relative to the config directory: `production.yaml` or `plugins/x.yaml`.
    pub relative: String,
    /// File contents.
    pub text: String,
}

impl ConfigSet {
    /// Parses and layers config files. `base.yaml` is optional; every other top-level
    /// `<name>.yaml` defines environment `<name>`; `plugins/<plugin>.yaml` holds plugin settings.
    pub fn from_sources(sources: &[ConfigSource]) -> Result<ConfigSet, ConfigError> {
        let base = match sources.iter().find(|s| s.relative == BASE_FILE) {
            Some(source) => {
                let value = parse_policy_layer(source)?;
                Some(value)
            }
            None => None,
        };
        let mut environments = BTreeMap::new();
        let mut plugin_settings = BTreeMap::new();
        for source in sources {
            if source.relative == BASE_FILE {
                continue;
            }
            if let Some(file) = source.relative.strip_prefix("plugins/") {
                let plugin = file_stem(file);
                plugin_settings.insert(plugin.to_owned(), parse_plugin_settings(source)?);
                continue;
            }
            let name = file_stem(&source.relative).to_owned();
            let mut layered = base
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default()));
            deep_merge(&mut layered, parse_policy_layer(source)?);
            let mut policy: EnvironmentPolicy =
                serde_json::from_value(layered).map_err(|e| ConfigError::Invalid {
                    location: SourceLocation::file(&source.path),
                    message: format!("after layering over {BASE_FILE}: {e}"),
                })?;
            policy.name = name.clone();
            policy.validate().map_err(|message| ConfigError::Invalid {
                location: SourceLocation::file(&source.path),
                message,
            })?;
            environments.insert(name, policy);
        }
        Ok(ConfigSet {
            environments,
            plugin_settings,
        })
    }

    /// [`ConfigSet::from_sources`] over in-memory files, each named by its path relative to a
    /// `config/` directory (`base.yaml`, `production.yaml`, `plugins/x.yaml`): how tests and
    /// tools build a config without a directory.
    pub fn from_files<T: AsRef<str>>(files: &[(&str, T)]) -> Result<ConfigSet, ConfigError> {
        let sources: Vec<ConfigSource> = files
            .iter()
            .map(|(relative, text)| ConfigSource {
                path: format!("config/{relative}"),
                relative: (*relative).to_owned(),
                text: text.as_ref().to_owned(),
            })
            .collect();
        ConfigSet::from_sources(&sources)
    }

    /// The policy of `name`, or an error listing the environments that exist.
    pub fn environment(&self, name: &str) -> Result<&EnvironmentPolicy, ConfigError> {
        self.environments
            .get(name)
            .ok_or_else(|| ConfigError::UnknownEnvironment {
                name: name.to_owned(),
                known: self.environments.keys().cloned().collect(),
            })
    }

    /// Names of every environment defined.
    pub fn environment_names(&self) -> impl Iterator<Item = &str> {
        self.environments.keys().map(String::as_str)
    }

    /// Settings file of `plugin`, if there is one.
    pub fn plugin_settings(&self, plugin: &str) -> Option<&PluginSettings> {
        self.plugin_settings.get(plugin)
    }
}

fn file_stem(file: &str) -> &str {
    file.strip_suffix(".yaml")
        .or_else(|| file.strip_suffix(".yml"))
        .unwrap_or(file)
}

/// Parses one policy layer, checking every key and type against [`EnvironmentPolicy`] with
/// the file's own line and column, before it is merged.
fn parse_policy_layer(source: &ConfigSource) -> Result<Value, ConfigError> {
    if let Err(error) = serde_saphyr::from_str::<policy::PolicyLayer>(&source.text) {
        return Err(ConfigError::Invalid {
            location: yaml_error(&source.path, 0, &error).0,
            message: yaml_error(&source.path, 0, &error).1,
        });
    }
    let value = parse_yaml_value(&source.path, &source.text)
        .map_err(|(location, message)| ConfigError::Invalid { location, message })?;
    Ok(match value {
        Value::Null => Value::Object(Default::default()),
        other => other,
    })
}

fn parse_plugin_settings(source: &ConfigSource) -> Result<PluginSettings, ConfigError> {
    let sections: BTreeMap<String, Value> = serde_saphyr::from_str::<Option<_>>(&source.text)
        .map_err(|error| {
            let (location, message) = yaml_error(&source.path, 0, &error);
            ConfigError::Invalid { location, message }
        })?
        .unwrap_or_default();
    let mut settings = PluginSettings::default();
    for (section, value) in sections {
        let value = match value {
            Value::Null => Value::Object(Default::default()),
            Value::Object(_) => value,
            _ => {
                return Err(ConfigError::Invalid {
                    location: SourceLocation::file(&source.path),
                    message: format!("section {section:?} must be a mapping of settings"),
                });
            }
        };
        if section == "default" {
            settings.default = Some(value);
        } else {
            settings.environments.insert(section, value);
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ED25519_PUB: &str = include_str!("../../../tests/data/ed25519-test-key.pub.pem");

    fn trusting(pem: &str) -> String {
        let indented = pem.trim().replace('\n', "\n          ");
        format!(
            "plugins:\n  security:\n    trusted_keys:\n      - id: release\n        public_key: |\n          {indented}\n"
        )
    }

    #[test]
    fn trusted_keys_are_parsed_when_the_config_is_read() {
        let set = ConfigSet::from_files(&[("production.yaml", trusting(ED25519_PUB))]).unwrap();
        let keys = &set
            .environment("production")
            .unwrap()
            .plugins
            .security
            .trusted_keys;
        assert_eq!(
            keys,
            &[crate::core::signature::TrustedKey::parse("release", ED25519_PUB).unwrap()]
        );
    }

    #[test]
    fn a_trusted_key_that_does_not_parse_fails_the_load_at_its_line() {
        let error = ConfigSet::from_files(&[("production.yaml", trusting("garbage"))]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config/production.yaml:4:9: plugins.security.trusted_keys[release].public_key: not a PEM public key: expected a block starting with -----BEGIN PUBLIC KEY----- (export one with `openssl pkey -in KEY.pem -pubout`)"
        );
    }
}
