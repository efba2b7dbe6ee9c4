//! Reading a config directory from disk (each file capped, through [`read_capped`]).

use std::path::Path;

use crate::core::config::{ConfigError, ConfigSet, ConfigSource};
use crate::files::read_capped;

pub use crate::core::limits::MAX_CONFIG_FILE_BYTES;

/// Reads `dir/*.yaml` and `dir/plugins/*.yaml` and layers them.
pub fn load_dir(dir: &Path) -> Result<ConfigSet, ConfigError> {
    let mut sources = Vec::new();
    read_yaml_files(dir, "", &mut sources)?;
    let plugins = dir.join("plugins");
    if plugins.is_dir() {
        read_yaml_files(&plugins, "plugins/", &mut sources)?;
    }
    if sources.is_empty() {
        return Err(ConfigError::Io {
            path: dir.display().to_string(),
            message: "no *.yaml environment files found (expected base.yaml and one file per environment)".to_owned(),
        });
    }
    ConfigSet::from_sources(&sources)
}

fn read_yaml_files(
    dir: &Path,
    prefix: &str,
    sources: &mut Vec<ConfigSource>,
) -> Result<(), ConfigError> {
    let io_error = |path: &Path, error: std::io::Error| ConfigError::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        // Kubernetes ConfigMap volumes hold `..data` symlinks and hidden timestamped folders.
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if is_yaml && !hidden && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    for path in paths {
        let text = read_capped(&path, MAX_CONFIG_FILE_BYTES).map_err(|e| ConfigError::Io {
            path: e.path,
            message: e.reason,
        })?;
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        sources.push(ConfigSource {
            path: path.display().to_string(),
            relative: format!("{prefix}{file}"),
            text,
        });
    }
    Ok(())
}
