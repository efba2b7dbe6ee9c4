//! `mmf crds`: the CustomResourceDefinitions, generated from the Rust types.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use kube::CustomResourceExt;

use crate::api::{MmfPlugin, MmfPluginRevision, MmfService};

/// Arguments of `mmf crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory (as committed under `crds/`) instead of
    /// printing them.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// File name under `crds/` and YAML of each CRD, in a stable order.
pub fn crd_documents() -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        (
            "mmfplugins.yaml",
            crate::core::manifest::to_yaml(&MmfPlugin::crd())?,
        ),
        (
            "mmfservices.yaml",
            crate::core::manifest::to_yaml(&MmfService::crd())?,
        ),
        (
            "mmfpluginrevisions.yaml",
            crate::core::manifest::to_yaml(&MmfPluginRevision::crd())?,
        ),
    ])
}

/// Prints every CRD as one multi-document YAML stream (the same documents as `crds/*.yaml`),
/// or writes them to `--out-dir`.
pub fn run(args: &CrdsArgs) -> anyhow::Result<ExitCode> {
    for (file, document) in crd_documents()? {
        match &args.out_dir {
            Some(dir) => {
                let path = dir.join(file);
                std::fs::write(&path, &document)
                    .with_context(|| format!("{}: cannot write", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            None => print!("---\n{document}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
