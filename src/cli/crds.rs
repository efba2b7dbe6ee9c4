//! `mmf crds`: the CustomResourceDefinitions, generated from the Rust types.

use kube::CustomResourceExt;

use crate::api::{MmfPlugin, MmfService};

/// File name under `crds/` and YAML of each CRD, in a stable order.
pub fn crd_documents() -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        (
            "mmfplugins.yaml",
            crate::manifest::to_yaml(&MmfPlugin::crd())?,
        ),
        (
            "mmfservices.yaml",
            crate::manifest::to_yaml(&MmfService::crd())?,
        ),
    ])
}

/// Prints every CRD as one multi-document YAML stream (the same documents as `crds/*.yaml`).
pub fn run() -> anyhow::Result<std::process::ExitCode> {
    for (_, document) in crd_documents()? {
        print!("---\n{document}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
