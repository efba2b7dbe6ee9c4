//! `mmf plugin manifest`: the MmfPlugin manifest of a plugin package, built from its
//! declarative files (never by running its code), ready for `mmf sign`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::core::plugin_package::{
    self, CONFIG_SCHEMA_JSON, PLUGIN_YAML, PackageError, PackageFiles, pinned_by_digest,
};

use crate::core::limits::MAX_PACKAGE_FILE_BYTES;
use crate::files::read_capped;

/// Plugin package commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print (or write) the unsigned MmfPlugin built from a package: name from the mmf.plugins
    /// entry point, version from pyproject.toml, services, routes and dependencies from
    /// plugin.yaml, configSchema and its defaults from config_schema.json, and --image.
    Manifest(ManifestArgs),
}

/// Arguments of `mmf plugin manifest`.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The package directory (holding pyproject.toml), as `mmf generate plugin` writes it.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The plugin image, pinned by digest: name@sha256:<64 hex digits>.
    #[arg(long)]
    pub image: String,
    /// File to write instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs a plugin command.
pub fn run(command: &PluginCommand) -> anyhow::Result<ExitCode> {
    let PluginCommand::Manifest(args) = command;
    if !pinned_by_digest(&args.image) {
        return Err(PackageError::Unpinned {
            image: args.image.clone(),
        }
        .into());
    }
    let read = |path: &Path| read_capped(path, MAX_PACKAGE_FILE_BYTES);
    let pyproject_path = args.dir.join("pyproject.toml");
    let pyproject = read(&pyproject_path)?;
    let pyproject_name = pyproject_path.display().to_string();
    let entry = plugin_package::entry_point(&pyproject_name, &pyproject)?;
    let package = args.dir.join(entry.package());
    let yaml_path = package.join(PLUGIN_YAML);
    let schema_path = package.join(CONFIG_SCHEMA_JSON);
    let (yaml, schema) = (read(&yaml_path)?, read(&schema_path)?);
    let (yaml_name, schema_name) = (
        yaml_path.display().to_string(),
        schema_path.display().to_string(),
    );
    let plugin = plugin_package::build_manifest(
        PackageFiles {
            pyproject: (&pyproject_name, &pyproject),
            plugin_yaml: (&yaml_name, &yaml),
            config_schema: (&schema_name, &schema),
        },
        &args.image,
    )?;
    let text = format!(
        "# MmfPlugin built by `mmf plugin manifest` from {}: change the package, not this file,\n# then rebuild and sign: mmf sign --key KEY --key-id ID -f THIS_FILE\n{}",
        args.dir.display(),
        crate::core::manifest::to_yaml(&plugin)?
    );
    match &args.out {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("{}: cannot create directory", parent.display()))?;
            }
            std::fs::write(path, text)
                .with_context(|| format!("{}: cannot write", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
