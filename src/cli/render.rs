//! `mmf render`: print what the operator would apply.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::input::{read_config, read_inputs};
use crate::core::policy::{Decision, evaluate_service};
use crate::core::render::{render, to_manifest_yaml};

/// Arguments of `mmf render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Files or directories of (multi-document) YAML holding MmfPlugins and MmfServices.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Environment whose policy applies (a file `<env>.yaml` in the config directory).
    #[arg(long = "env", env = "MMF_ENVIRONMENT", default_value = "development")]
    pub environment: String,
    /// Directory holding base.yaml, the environment files and plugins/.
    #[arg(long, default_value = "config")]
    pub config_dir: PathBuf,
    /// Namespace for manifests that carry none (as `kubectl apply -n` would place them).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// Prints the ConfigMap, Deployment and Service of every MmfService, exactly as the operator
/// applies them (without the ownerReference, which needs a live object). A service that a
/// strict environment blocks is reported on stderr and makes the command fail.
pub fn run(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let configs = read_config(&args.config_dir)?;
    let environment = configs.environment(&args.environment)?;
    let mut inputs = read_inputs(&args.paths)?;
    if let Some(namespace) = &args.namespace {
        inputs.default_namespace(namespace);
    }
    if !inputs.refused.is_empty() {
        for (location, violation) in &inputs.refused {
            eprintln!("error: {location}: {violation}");
        }
        eprintln!(
            "error: nothing rendered: the API server would refuse the object(s) above (CRD schema)"
        );
        return Ok(ExitCode::FAILURE);
    }
    if inputs.services.is_empty() {
        eprintln!("warning: no MmfService found in the given paths; nothing to render");
    }
    let mut services: Vec<_> = inputs.services.iter().collect();
    services.sort_by_key(|(_, s)| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut blocked = false;
    let mut out = String::new();
    for (source, service) in services {
        let available = inputs.plugins_for(service);
        let evaluation = evaluate_service(service, environment, &configs, &available);
        let label = evaluation.mode.severity();
        for violation in &evaluation.violations {
            eprintln!("{label}: {}: {violation}", source.at(&violation.field));
        }
        if evaluation.decision == Decision::Blocked {
            eprintln!(
                "error: {source}: MmfService/{}: not rendered: the {} environment is strict and the service has the violations above",
                service.metadata.name.as_deref().unwrap_or_default(),
                environment.name
            );
            blocked = true;
            continue;
        }
        let loaded: Vec<_> = evaluation.loaded().collect();
        let rendered = render(service, environment, &loaded)?;
        out.push_str(&to_manifest_yaml(&rendered)?);
    }
    print!("{out}");
    Ok(if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
