//! Building the MmfPlugin manifest from a plugin package's declarative files, so the manifest
//! never drifts from the code (`mmf plugin manifest`).
//!
//! A package (what `mmf generate plugin` writes) declares itself in three files, all read here
//! as text, never executed:
//! - `pyproject.toml`: `project.version` and the one `[project.entry-points."mmf.plugins"]`
//!   entry, `<entry_point_name> = "<module>:<Class>"`; the MmfPlugin name is the entry point
//!   name in Kubernetes spelling (`loyalty_points` -> `loyalty-points`);
//! - `<package>/plugin.yaml`: an MmfPlugin manifest with what only people can say (description,
//!   dependencies, services and routes); the Python plugin reads the same file for its
//!   `metadata` and `get_service_definitions()`;
//! - `<package>/config_schema.json`: the configuration's JSON Schema, whose `default` keywords
//!   are the plugin's default configuration; the Python plugin returns it from
//!   `get_configuration_schema()`.

use serde_json::{Map, Value};

use crate::api::MmfPlugin;
use crate::core::manifest::{Manifest, parse_manifests};

/// The entry point group MMF discovers plugins by.
pub const ENTRY_POINT_GROUP: &str = "mmf.plugins";
/// The package's manifest source, inside the Python package.
pub const PLUGIN_YAML: &str = "plugin.yaml";
/// The configuration schema, inside the Python package.
pub const CONFIG_SCHEMA_JSON: &str = "config_schema.json";

/// Why a package's files do not make a manifest. Each names the file and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// `pyproject.toml` is not TOML.
    #[error("{file}: not valid TOML: {message}")]
    Toml { file: String, message: String },
    /// A required field is missing or has the wrong type.
    #[error("{file}: {field}: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
    /// `plugin.yaml` does not parse as an MmfPlugin.
    #[error("{0}")]
    Manifest(String),
    /// The schema file is not JSON.
    #[error("{file}: not valid JSON: {message}")]
    Json { file: String, message: String },
    /// The image is not pinned by digest.
    #[error(
        "--image {image:?} is not pinned by digest: pass a reference of the form name@sha256:<64 hex digits> (the digest `docker push` or `podman push --digestfile` reports)"
    )]
    Unpinned { image: String },
}

/// The `mmf.plugins` entry point of a package and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    /// MMF's `entry_point_name`, for example `loyalty_points`.
    pub name: String,
    /// Importable module, for example `loyalty_points.plugin`.
    pub module: String,
    /// The `MMFPlugin` subclass in that module.
    pub class: String,
    /// `project.version`.
    pub version: String,
}

impl EntryPoint {
    /// The top-level package directory (the module's first segment).
    pub fn package(&self) -> &str {
        self.module.split('.').next().unwrap_or(&self.module)
    }
}

/// Reads the entry point and version from `pyproject.toml` (`file` names it in errors).
pub fn entry_point(file: &str, pyproject: &str) -> Result<EntryPoint, PackageError> {
    let document: toml::Table = toml::from_str(pyproject).map_err(|e| PackageError::Toml {
        file: file.to_owned(),
        message: e.message().to_owned(),
    })?;
    let field = |field: &str, reason: &str| PackageError::Field {
        file: file.to_owned(),
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let project = document
        .get("project")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| field("project", "missing: a [project] table is required"))?;
    let version = project
        .get("version")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| field("project.version", "missing: the plugin version is required"))?;
    let group_field = format!("project.entry-points.\"{ENTRY_POINT_GROUP}\"");
    let group = project
        .get("entry-points")
        .and_then(|e| e.get(ENTRY_POINT_GROUP))
        .and_then(toml::Value::as_table)
        .ok_or_else(|| {
            field(
                &group_field,
                "missing: register the plugin as `<name> = \"<module>:<Class>\"`",
            )
        })?;
    let mut entries = group.iter();
    let (name, target) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        _ => {
            return Err(field(
                &group_field,
                &format!(
                    "must hold exactly one entry point, found {}: one package is one plugin",
                    group.len()
                ),
            ));
        }
    };
    let entry_field = format!("{group_field}.{name}");
    let target = target
        .as_str()
        .ok_or_else(|| field(&entry_field, "must be a string \"<module>:<Class>\""))?;
    let (module, class) = target
        .split_once(':')
        .filter(|(m, c)| !m.trim().is_empty() && !c.trim().is_empty())
        .ok_or_else(|| {
            field(
                &entry_field,
                &format!("{target:?} is not of the form \"<module>:<Class>\""),
            )
        })?;
    Ok(EntryPoint {
        name: name.clone(),
        module: module.trim().to_owned(),
        class: class.trim().to_owned(),
        version: version.to_owned(),
    })
}

/// The package's files, as read by the CLI, with the names to use in errors.
#[derive(Debug, Clone, Copy)]
pub struct PackageFiles<'a> {
    /// `pyproject.toml`: (file name, text).
    pub pyproject: (&'a str, &'a str),
    /// `<package>/plugin.yaml`.
    pub plugin_yaml: (&'a str, &'a str),
    /// `<package>/config_schema.json`.
    pub config_schema: (&'a str, &'a str),
}

/// `true` for `name@sha256:<64 lowercase hex>`.
pub fn pinned_by_digest(image: &str) -> bool {
    image.rsplit_once("@sha256:").is_some_and(|(name, hex)| {
        !name.is_empty()
            && hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// Builds the unsigned MmfPlugin: plugin.yaml's spec, with the name from the entry point, the
/// version from pyproject, the schema and its defaults from config_schema.json, and `image`.
/// plugin.yaml's own name and version must agree with the code's (else it drifted).
pub fn build_manifest(files: PackageFiles<'_>, image: &str) -> Result<MmfPlugin, PackageError> {
    if !pinned_by_digest(image) {
        return Err(PackageError::Unpinned {
            image: image.to_owned(),
        });
    }
    let entry = entry_point(files.pyproject.0, files.pyproject.1)?;
    let (yaml_file, yaml_text) = files.plugin_yaml;
    let field = |file: &str, field: &str, reason: String| PackageError::Field {
        file: file.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let manifests =
        parse_manifests(yaml_file, yaml_text).map_err(|e| PackageError::Manifest(e.to_string()))?;
    let mut plugins = manifests.into_iter().filter_map(|m| match m.manifest {
        Manifest::Plugin(plugin) => Some(*plugin),
        Manifest::Service(_) | Manifest::Revision(_) => None,
    });
    let mut plugin = match (plugins.next(), plugins.next()) {
        (Some(plugin), None) => plugin,
        (found, _) => {
            return Err(field(
                yaml_file,
                "kind",
                format!(
                    "must hold exactly one MmfPlugin, found {}",
                    if found.is_some() { "several" } else { "none" }
                ),
            ));
        }
    };
    let name = entry.name.trim().replace('_', "-").to_lowercase();
    if plugin.metadata.name.as_deref() != Some(name.as_str()) {
        return Err(field(
            yaml_file,
            "metadata.name",
            format!(
                "{:?} differs from the entry point {:?} (MmfPlugin {name:?}): rename one of them",
                plugin.metadata.name.as_deref().unwrap_or_default(),
                entry.name
            ),
        ));
    }
    if plugin.spec.version != entry.version {
        return Err(field(
            yaml_file,
            "spec.version",
            format!(
                "{:?} differs from {} project.version {:?}: bump both together",
                plugin.spec.version, files.pyproject.0, entry.version
            ),
        ));
    }
    let (schema_file, schema_text) = files.config_schema;
    let schema: Value = serde_json::from_str(schema_text).map_err(|e| PackageError::Json {
        file: schema_file.to_owned(),
        message: e.to_string(),
    })?;
    if !schema.is_object() {
        return Err(field(
            schema_file,
            "(root)",
            "must be a JSON Schema object".into(),
        ));
    }
    plugin.spec.config = defaults(&schema).filter(|d| d.as_object().is_some_and(|m| !m.is_empty()));
    plugin.spec.config_schema = Some(schema);
    plugin.spec.image = image.to_owned();
    plugin.spec.signature = None;
    Ok(plugin)
}

/// The configuration made of the schema's `default` keywords: an object's own `default` wins,
/// else one built from its properties' defaults (nested objects included).
pub fn defaults(schema: &Value) -> Option<Value> {
    if let Some(default) = schema.get("default") {
        return Some(default.clone());
    }
    let properties = schema.get("properties")?.as_object()?;
    let object: Map<String, Value> = properties
        .iter()
        .filter_map(|(key, property)| defaults(property).map(|value| (key.clone(), value)))
        .collect();
    Some(Value::Object(object))
}

#[cfg(test)]
#[path = "plugin_package_tests.rs"]
mod tests;
