//! `mmf check`: a policy gate for pipelines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::findings::{Finding, json_report, sarif_log};
use super::input::{read_config, read_inputs};
use crate::core::policy::{Outcome, Scope, evaluate_plugin, evaluate_service, outcome};

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// One line per violation.
    Text,
    /// One JSON document, for pipelines.
    Json,
    /// SARIF 2.1.0, for code review tools (GitHub code scanning and others).
    Sarif,
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

/// Judges every plugin and service in the paths as the API server would (CRD schema and CEL
/// rules: always errors) and against the environment's policy, each finding at its field.
/// Exit code 0 when everything complies, 1 otherwise (policy warnings of a lenient
/// environment only with `--fail-on-warnings`).
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let configs = read_config(&args.config_dir)?;
    let environment = configs.environment(&args.environment)?;
    let inputs = read_inputs(&args.paths)?;
    let mode = environment.plugins.loading;
    let mut found: Vec<Finding> = inputs
        .refused
        .iter()
        .map(|(location, violation)| Finding {
            severity: "error",
            location: location.clone(),
            violation: violation.clone(),
        })
        .collect();
    let refused = found.len();
    let mut violations = Vec::new();
    let mut sources = Vec::new();
    for (source, plugin) in &inputs.plugins {
        let evaluation = evaluate_plugin(plugin, environment, &configs);
        sources.extend(evaluation.violations.iter().map(|_| source));
        violations.extend(evaluation.violations);
    }
    for (source, service) in &inputs.services {
        let available = inputs.plugins_for(service);
        let evaluation = evaluate_service(service, environment, &configs, &available);
        sources.extend(evaluation.violations.iter().map(|_| source));
        violations.extend(evaluation.violations);
    }
    // The gate sees the whole set of manifests, as a rollout does: the rollout scope.
    let judged = outcome(&violations, mode, Scope::Rollout);
    let severity = if judged == Outcome::Deny {
        "error"
    } else {
        "warning"
    };
    found.extend(
        violations
            .into_iter()
            .zip(sources)
            .map(|(violation, source)| Finding {
                severity,
                location: source.at(&violation.field),
                violation,
            }),
    );
    found.sort_by(|a, b| {
        let key = |f: &Finding| (f.location.path.clone(), f.location.line, f.location.column);
        key(a).cmp(&key(b))
    });
    let policy = found.len() - refused;
    let failed = refused > 0
        || judged == Outcome::Deny
        || (judged == Outcome::Warn && args.fail_on_warnings);
    let objects = inputs.documents;
    match args.output {
        Output::Text => {
            for finding in &found {
                eprintln!("{}", finding.line());
            }
            if found.is_empty() {
                println!(
                    "{objects} object(s) comply with the {} policy",
                    environment.name
                );
            } else if refused == 0 {
                println!(
                    "{policy} violation(s) of the {} policy ({}) in {objects} object(s)",
                    environment.name,
                    mode.as_str()
                );
            } else {
                println!(
                    "{refused} schema violation(s) the API server refuses and {policy} violation(s) of the {} policy ({}) in {objects} object(s)",
                    environment.name,
                    mode.as_str()
                );
            }
        }
        Output::Json => {
            let report = json_report(&environment.name, mode.as_str(), objects, &found)?;
            println!("{report}");
        }
        Output::Sarif => {
            println!("{}", serde_json::to_string_pretty(&sarif_log(&found))?);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
