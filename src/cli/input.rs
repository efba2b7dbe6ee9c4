//! Gathering manifests and config from the paths a user names.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::api::{MmfPlugin, MmfService};
use crate::config::{ConfigSet, load_dir};
use crate::core::manifest::{
    Document, MAX_MANIFEST_BYTES, Manifest, SourceLocation, parse_documents,
};
use crate::core::position::FieldPositions;
use crate::core::violation::Violation;
use crate::files::read_capped;

/// Where an object came from: its document, and where each of its fields is.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The document's first line.
    pub location: SourceLocation,
    /// Field positions in file lines.
    pub positions: FieldPositions,
}

impl Source {
    /// Where `field` is: its own line and column, else the document's start.
    pub fn at(&self, field: &str) -> SourceLocation {
        match self.positions.find(field) {
            Some((line, column)) => SourceLocation {
                path: self.location.path.clone(),
                line,
                column,
            },
            None => self.location.clone(),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.location.fmt(f)
    }
}

/// Every MmfPlugin and MmfService found, with where each came from, and every reason the API
/// server would refuse one of them.
#[derive(Debug, Default)]
pub struct Inputs {
    pub plugins: Vec<(Source, MmfPlugin)>,
    pub services: Vec<(Source, MmfService)>,
    /// MmfPluginRevision documents, as the plugin version each records
    /// ([`crate::api::MmfPluginRevision::to_plugin`]): services resolve among them too.
    pub revisions: Vec<(Source, MmfPlugin)>,
    /// Schema and CEL refusals, at their fields. A refused document that still fits the types
    /// is in `plugins`/`services` too, so the policy judges it as well.
    pub refused: Vec<(SourceLocation, Violation)>,
    /// Documents read (including refused ones that do not fit the types).
    pub documents: usize,
}

impl Inputs {
    /// Places manifests without a namespace into `namespace`.
    pub fn default_namespace(&mut self, namespace: &str) {
        let plugins = self.plugins.iter_mut().map(|(_, p)| &mut p.metadata);
        let services = self.services.iter_mut().map(|(_, s)| &mut s.metadata);
        let revisions = self.revisions.iter_mut().map(|(_, r)| &mut r.metadata);
        for meta in plugins.chain(services).chain(revisions) {
            meta.namespace.get_or_insert_with(|| namespace.to_owned());
        }
    }

    fn add(&mut self, document: Document) {
        self.documents += 1;
        for violation in &document.refused {
            self.refused
                .push((document.locate(&violation.field), violation.clone()));
        }
        let source = Source {
            location: document.location,
            positions: document.positions,
        };
        match document.manifest {
            Some(Manifest::Plugin(plugin)) => self.plugins.push((source, *plugin)),
            Some(Manifest::Service(service)) => self.services.push((source, *service)),
            Some(Manifest::Revision(revision)) => {
                self.revisions.push((source, revision.to_plugin()))
            }
            None => {}
        }
    }

    /// Plugin versions visible to a service: the MmfPlugins and revisions in the same
    /// namespace (several versions of one plugin are candidates for the version solver).
    pub fn plugins_for(&self, service: &MmfService) -> Vec<&MmfPlugin> {
        self.plugins
            .iter()
            .chain(&self.revisions)
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
        match parse_documents(&shown, &text) {
            Ok(documents) => {
                for document in documents {
                    inputs.add(document);
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

/// Loads the config directory.
pub fn read_config(dir: &Path) -> anyhow::Result<ConfigSet> {
    Ok(load_dir(dir)?)
}
