//! Gathering manifests and config from the paths a user names.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::api::{MmfPlugin, MmfService};
use crate::config::{ConfigSet, load_dir};
use crate::manifest::{
    LocatedManifest, MAX_MANIFEST_BYTES, Manifest, SourceLocation, parse_manifests,
};

/// Every MmfPlugin and MmfService found, with where each came from.
#[derive(Debug, Default)]
pub struct Inputs {
    pub plugins: Vec<(SourceLocation, MmfPlugin)>,
    pub services: Vec<(SourceLocation, MmfService)>,
}

impl Inputs {
    /// Places manifests without a namespace into `namespace`.
    pub fn default_namespace(&mut self, namespace: &str) {
        let plugins = self.plugins.iter_mut().map(|(_, p)| &mut p.metadata);
        let services = self.services.iter_mut().map(|(_, s)| &mut s.metadata);
        for meta in plugins.chain(services) {
            meta.namespace.get_or_insert_with(|| namespace.to_owned());
        }
    }

    /// Plugins visible to a service: those in the same namespace.
    pub fn plugins_for(&self, service: &MmfService) -> Vec<&MmfPlugin> {
        self.plugins
            .iter()
            .map(|(_, plugin)| plugin)
            .filter(|plugin| plugin.metadata.namespace == service.metadata.namespace)
            .collect()
    }
}

/// Reads files and directories (recursively, `*.yaml`/`*.yml`). Every problem in every file is
/// reported, not just the first.
pub fn read_inputs(paths: &[PathBuf]) -> anyhow::Result<Inputs> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    let mut inputs = Inputs::default();
    let mut errors = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let text = read_capped(&file, MAX_MANIFEST_BYTES)?;
        match parse_manifests(&shown, &text) {
            Ok(manifests) => {
                for LocatedManifest { location, manifest } in manifests {
                    match manifest {
                        Manifest::Plugin(plugin) => inputs.plugins.push((location, *plugin)),
                        Manifest::Service(service) => inputs.services.push((location, *service)),
                    }
                }
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(inputs)
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if metadata.is_file() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("{}: cannot list directory", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, files)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(entry);
        }
    }
    Ok(())
}

/// Reads a text file, refusing anything larger than `limit` bytes (every input is capped).
pub fn read_capped(path: &Path, limit: usize) -> anyhow::Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    if size > limit as u64 {
        bail!(
            "{}: file is {size} bytes, more than the {limit} allowed",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// Loads the config directory.
pub fn read_config(dir: &Path) -> anyhow::Result<ConfigSet> {
    Ok(load_dir(dir)?)
}
