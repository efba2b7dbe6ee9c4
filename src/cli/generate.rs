//! `mmf generate service`: scaffold an MmfService manifest, plugin settings stubs and a runnable
//! service skeleton; `mmf generate plugin`: scaffold an MMF plugin package.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::scaffold::{self, Names};
use crate::api::{MmfService, MmfServiceSpec, PluginRef, ServiceType};

/// What to generate.
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// An MmfService that loads the given plugins, a settings stub per plugin, and (for
    /// --type fastapi) a runnable service skeleton in `<out>/<name>/`.
    Service(ServiceArgs),
    /// An MMF plugin package: the MMFPlugin subclass, plugin.yaml, a configuration schema,
    /// pyproject.toml with the mmf.plugins entry point, a Containerfile and its tests.
    Plugin(PluginArgs),
}

/// Arguments of `mmf generate plugin`.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// Plugin name: the MMF entry point (`loyalty_points`) or the MmfPlugin name
    /// (`loyalty-points`); both spellings are derived from it.
    #[arg(long)]
    pub name: String,
    /// Directory to write the package into (default: ./<entry point name>).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

/// Service kinds, as on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TypeArg {
    Fastapi,
    Grpc,
    Hybrid,
    Worker,
}

impl From<TypeArg> for ServiceType {
    fn from(value: TypeArg) -> Self {
        match value {
            TypeArg::Fastapi => ServiceType::Fastapi,
            TypeArg::Grpc => ServiceType::Grpc,
            TypeArg::Hybrid => ServiceType::Hybrid,
            TypeArg::Worker => ServiceType::Worker,
        }
    }
}

/// Arguments of `mmf generate service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Service name (a DNS label: lowercase letters, digits and '-').
    #[arg(long)]
    pub name: String,
    /// Plugin to load (MmfPlugin name; MMF's `entry_point_name` spelling is accepted). Repeat
    /// for several.
    #[arg(long = "plugin")]
    pub plugins: Vec<String>,
    /// Kind of service.
    #[arg(long = "type", value_enum, default_value = "fastapi")]
    pub service_type: TypeArg,
    /// Container image of the service (default: a placeholder pinned by an all-zero digest, to
    /// replace with the digest of the image built from the skeleton's Containerfile).
    #[arg(long)]
    pub image: Option<String>,
    /// Port the service listens on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Directory to write `<name>.yaml` into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Config directory; a `plugins/<plugin>.yaml` settings stub is written for each plugin
    /// that has none.
    #[arg(long, default_value = "config")]
    pub config_dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

/// Kubernetes object names allow no underscores: `production_payment` -> `production-payment`.
pub fn kubernetes_name(name: &str) -> String {
    name.trim().replace('_', "-").to_lowercase()
}

/// A DNS-1035 label, as Service names must be.
fn check_dns_label(what: &str, name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "{what} {name:?} is not a valid name: use at most 63 lowercase letters, digits and '-', starting with a letter"
        );
    }
    Ok(())
}

/// Writes the files, refusing to overwrite any without `--force` (checked before writing
/// anything, so a refusal leaves no half-generated service).
pub fn run(command: &GenerateCommand) -> anyhow::Result<ExitCode> {
    match command {
        GenerateCommand::Service(args) => service(args),
        GenerateCommand::Plugin(args) => plugin(args),
    }
}

fn plugin(args: &PluginArgs) -> anyhow::Result<ExitCode> {
    let name = kubernetes_name(&args.name);
    check_dns_label("plugin name", &name)?;
    let names = Names::new(&name, 8080);
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&names.entry));
    write_all(&scaffold::plugin_files(&names, &dir), args.force)?;
    Ok(ExitCode::SUCCESS)
}

/// The placeholder image of a generated service: pinned, so it never silently floats.
fn placeholder_image(name: &str) -> String {
    format!("registry.example/services/{name}@sha256:{}", "0".repeat(64))
}

fn service(args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let name = kubernetes_name(&args.name);
    check_dns_label("service name", &name)?;
    let mut plugins = Vec::new();
    for plugin in &args.plugins {
        let plugin = kubernetes_name(plugin);
        check_dns_label("plugin name", &plugin)?;
        if !plugins.contains(&plugin) {
            plugins.push(plugin);
        }
    }
    let service = MmfService::new(
        &name,
        MmfServiceSpec {
            image: args
                .image
                .clone()
                .unwrap_or_else(|| placeholder_image(&name)),
            replicas: 1,
            service_type: args.service_type.into(),
            port: i32::from(args.port),
            plugins: plugins
                .iter()
                .map(|plugin| PluginRef {
                    name: plugin.clone(),
                    version: None,
                    enabled: true,
                    priority: 100,
                    config: None,
                })
                .collect(),
            resources: None,
            env: Vec::new(),
            probes: Default::default(),
            metrics: Default::default(),
        },
    );
    let mut body = crate::core::manifest::to_yaml(&service)?;
    if args.image.is_none() {
        let image = placeholder_image(&name);
        body = body.replacen(
            &format!("image: {image}\n"),
            &format!("image: {image} # placeholder: build {name}/Containerfile, push, put its name@sha256 here\n"),
            1,
        );
    }
    let manifest = format!(
        "# MmfService generated by `mmf generate service`. Apply with `kubectl apply -n <namespace> -f`.\n# Service-specific plugin settings go under spec.plugins[].config.\n{body}"
    );
    let mut files: Vec<(PathBuf, String)> = vec![(args.out.join(format!("{name}.yaml")), manifest)];
    for plugin in &plugins {
        let path = args
            .config_dir
            .join("plugins")
            .join(format!("{plugin}.yaml"));
        if !path.exists() {
            files.push((path, settings_stub(plugin)));
        }
    }
    match args.service_type {
        TypeArg::Fastapi => files.extend(scaffold::fastapi_service_files(
            &Names::new(&name, args.port),
            &args.out.join(&name),
        )),
        other => eprintln!(
            "note: no service skeleton for --type {} yet (only fastapi has one): wrote the manifest only",
            ServiceType::from(other).as_str()
        ),
    }
    write_all(&files, args.force)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every file, or none when one exists and `force` is off.
fn write_all(files: &[(PathBuf, String)], force: bool) -> anyhow::Result<()> {
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(path, _)| path.exists())
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "refusing to overwrite {} (use --force)",
                existing.join(", ")
            );
        }
    }
    for (path, contents) in files {
        write_file(path, contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn settings_stub(plugin: &str) -> String {
    format!(
        "# Settings of plugin {plugin} in MMF's shape, merged over the plugin's own defaults.\n\
         # `default` applies everywhere; a section named after an environment applies there only.\n\
         default: {{}}\n\
         # production:\n\
         #   some_setting: value\n"
    )
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create directory", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("{}: cannot write", path.display()))
}
