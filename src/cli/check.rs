//! `mmf check`: a policy gate for pipelines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::input::{read_config, read_inputs};
use crate::config::LoadingMode;
use crate::core::policy::{evaluate_plugin, evaluate_service};
use crate::core::violation::Violation;
use crate::manifest::SourceLocation;

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// One line per violation.
    Text,
    /// One JSON document, for pipelines.
    Json,
}

/// Arguments of `mmf check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories of (multi-document) YAML holding MmfPlugins and MmfServices.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Environment whose policy applies.
    #[arg(long = "env", env = "MMF_ENVIRONMENT")]
    pub environment: String,
    /// Directory holding base.yaml, the environment files and plugins/.
    #[arg(long, default_value = "config")]
    pub config_dir: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Output,
    /// In a lenient environment, fail on warnings too.
    #[arg(long)]
    pub fail_on_warnings: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    environment: &'a str,
    loading: &'a str,
    compliant: bool,
    objects: usize,
    violations: Vec<Finding<'a>>,
}

#[derive(Serialize)]
struct Finding<'a> {
    severity: &'a str,
    file: &'a str,
    line: u64,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    field: &'a str,
    reason: &'a str,
    message: &'a str,
}

/// Judges every plugin and service in the paths against the environment. Exit code 0 when
/// everything complies, 1 otherwise (in lenient mode only with `--fail-on-warnings`).
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let configs = read_config(&args.config_dir)?;
    let environment = configs.environment(&args.environment)?;
    let inputs = read_inputs(&args.paths)?;
    let mut found: Vec<(&SourceLocation, Violation)> = Vec::new();
    for (location, plugin) in &inputs.plugins {
        let evaluation = evaluate_plugin(plugin, environment, &configs);
        found.extend(evaluation.violations.into_iter().map(|v| (location, v)));
    }
    for (location, service) in &inputs.services {
        let available = inputs.plugins_for(service);
        let evaluation = evaluate_service(service, environment, &configs, &available);
        found.extend(evaluation.violations.into_iter().map(|v| (location, v)));
    }
    let mode = environment.plugins.loading;
    let severity = mode.severity();
    let failed = !found.is_empty() && (mode == LoadingMode::Strict || args.fail_on_warnings);
    match args.output {
        Output::Text => {
            for (location, violation) in &found {
                eprintln!("{severity}: {location}: {violation}");
            }
            let objects = inputs.plugins.len() + inputs.services.len();
            if found.is_empty() {
                println!(
                    "{objects} object(s) comply with the {} policy",
                    environment.name
                );
            } else {
                println!(
                    "{} violation(s) of the {} policy ({}) in {objects} object(s)",
                    found.len(),
                    environment.name,
                    mode.as_str()
                );
            }
        }
        Output::Json => {
            let report = Report {
                environment: &environment.name,
                loading: mode.as_str(),
                compliant: found.is_empty(),
                objects: inputs.plugins.len() + inputs.services.len(),
                violations: found
                    .iter()
                    .map(|(location, v)| Finding {
                        severity,
                        file: &location.path,
                        line: location.line,
                        kind: v.object.kind,
                        namespace: v.object.namespace.as_deref(),
                        name: &v.object.name,
                        field: &v.field,
                        reason: v.kind.reason(),
                        message: &v.message,
                    })
                    .collect(),
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
