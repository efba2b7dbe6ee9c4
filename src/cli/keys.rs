//! `mmf keygen`, `mmf payload`, `mmf sign`, `mmf verify`: the offline half of plugin
//! signatures, using the same core functions as the webhook and the controller so a plugin that
//! verifies here verifies in the cluster.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};

use crate::api::MmfPlugin;
use crate::api::plugin::SignatureAlgorithm;
use crate::config;
use crate::core::manifest::{MAX_MANIFEST_BYTES, Manifest, parse_manifests};
use crate::core::manifest_edit::set_plugin_signature;
use crate::core::signature::{self, SigningKey};

use crate::core::limits::MAX_KEY_BYTES;
use crate::files::read_capped;

/// File names `mmf keygen` writes, so docs and scripts can rely on them.
const PRIVATE_KEY_FILE: &str = "signing-key.pem";
const PUBLIC_KEY_FILE: &str = "signing-key.pub.pem";

fn algorithm_parser() -> impl clap::builder::TypedValueParser<Value = SignatureAlgorithm> {
    PossibleValuesParser::new(["ecdsa-p256-sha256", "ed25519"]).map(|value| {
        if value == "ed25519" {
            SignatureAlgorithm::Ed25519
        } else {
            SignatureAlgorithm::EcdsaP256Sha256
        }
    })
}

/// Arguments of `mmf keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Signature algorithm of the new key.
    #[arg(long, value_parser = algorithm_parser())]
    pub algorithm: SignatureAlgorithm,
    /// Directory to write signing-key.pem and signing-key.pub.pem into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Key id to show in the trusted_keys snippet and the sign command printed afterwards.
    #[arg(long, default_value = "mmf-signing-key")]
    pub key_id: String,
    /// Overwrite existing key files (the old private key is lost).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `mmf payload`.
#[derive(Debug, Args)]
pub struct PayloadArgs {
    /// Plugin manifest.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
}

/// Arguments of `mmf sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// PEM private key: PKCS#8 (ECDSA P-256 or Ed25519) or SEC1 EC PRIVATE KEY. The algorithm
    /// follows from the key.
    #[arg(long)]
    pub key: PathBuf,
    /// Key id recorded in the signature (one of the environment's trusted_keys ids).
    #[arg(long)]
    pub key_id: String,
    /// Plugin manifest to sign in place; every MmfPlugin in it is signed.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
}

/// Arguments of `mmf verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Plugin manifest.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Environment whose trusted keys apply.
    #[arg(long = "env")]
    pub environment: String,
    /// Directory holding base.yaml and the environment files.
    #[arg(long, default_value = "config")]
    pub config_dir: PathBuf,
}

/// Writes a new key pair and shows how to trust and use it.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let private_path = args.out.join(PRIVATE_KEY_FILE);
    let public_path = args.out.join(PUBLIC_KEY_FILE);
    if !args.force {
        for path in [&private_path, &public_path] {
            if path.exists() {
                bail!(
                    "{} already exists: pass --force to overwrite it (a replaced private key can no longer sign)",
                    path.display()
                );
            }
        }
    }
    let pair = signature::generate(args.algorithm)?;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create directory {}", args.out.display()))?;
    write_private(&private_path, pair.private_pem.as_bytes(), args.force)?;
    write_file(&public_path, pair.public_pem.as_bytes(), args.force)?;

    let indented: String = pair
        .public_pem
        .lines()
        .map(|line| format!("          {line}\n"))
        .collect();
    println!(
        "wrote {} ({} private key: keep it secret, never commit it)",
        private_path.display(),
        args.algorithm
    );
    println!("wrote {}", public_path.display());
    println!();
    println!(
        "To trust it, add to config/base.yaml or config/<environment>.yaml:\n\nplugins:\n  security:\n    trusted_keys:\n      - id: {}\n        public_key: |\n{indented}",
        args.key_id
    );
    println!(
        "Then sign a plugin with:\n  mmf sign --key {} --key-id {} -f plugin.yaml",
        private_path.display(),
        args.key_id
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints the exact bytes a signature covers, for signing with other tools (openssl, cosign).
pub fn payload(args: &PayloadArgs) -> anyhow::Result<ExitCode> {
    let (_, plugins) = read_plugins(&args.file)?;
    let [plugin] = plugins.as_slice() else {
        bail!(
            "{}: holds {} MmfPlugins; mmf payload needs a file with exactly one",
            args.file.display(),
            plugins.len()
        );
    };
    let bytes = signature::payload(plugin)
        .with_context(|| format!("{}: MmfPlugin/{}", args.file.display(), name(plugin)))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes).context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Signs every MmfPlugin of the file and rewrites only their `spec.signature`.
pub fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key_text = read_capped(&args.key, MAX_KEY_BYTES)?;
    let key = SigningKey::from_pem(&key_text).with_context(|| args.key.display().to_string())?;
    let (mut text, plugins) = read_plugins(&args.file)?;
    let file = args.file.display();
    let mut done = Vec::new();
    for plugin in &plugins {
        let signature = signature::sign(plugin, &key, &args.key_id)
            .with_context(|| format!("{file}: MmfPlugin/{}", name(plugin)))?;
        text = set_plugin_signature(&text, name(plugin), &signature)
            .with_context(|| format!("{file}"))?;
        let digest = signature::digest(&signature::payload(plugin)?);
        done.push(format!(
            "signed MmfPlugin/{} in {file} ({}, key {}, {digest})",
            name(plugin),
            signature.algorithm,
            signature.key_id
        ));
    }
    replace_file(&args.file, &text)?;
    for line in done {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every MmfPlugin of the file against the environment's trusted keys, whether or not
/// the environment requires signatures: the question asked is "is this signature good?".
pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let configs = config::load_dir(&args.config_dir)?;
    let environment = configs.environment(&args.environment)?;
    let trusted = &environment.plugins.security.trusted_keys;
    let (_, plugins) = read_plugins(&args.file)?;
    let mut failed = false;
    for plugin in &plugins {
        match signature::verify(plugin, trusted) {
            Ok(verified) => println!(
                "verified {} ({}, key {}, {})",
                name(plugin),
                verified.algorithm,
                verified.key_id,
                verified.digest
            ),
            Err(error) => {
                failed = true;
                eprintln!(
                    "{}: MmfPlugin/{}: {error}",
                    args.file.display(),
                    name(plugin)
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn name(plugin: &MmfPlugin) -> &str {
    plugin.metadata.name.as_deref().unwrap_or("<unnamed>")
}

/// The file's text and its MmfPlugins; a file with none is an error, since every command here
/// is about plugins.
fn read_plugins(path: &Path) -> anyhow::Result<(String, Vec<MmfPlugin>)> {
    let text = read_capped(path, MAX_MANIFEST_BYTES)?;
    let shown = path.display().to_string();
    let plugins: Vec<MmfPlugin> = parse_manifests(&shown, &text)?
        .into_iter()
        .filter_map(|located| match located.manifest {
            Manifest::Plugin(plugin) => Some(*plugin),
            Manifest::Service(_) | Manifest::Revision(_) => None,
        })
        .collect();
    if plugins.is_empty() {
        bail!("{shown}: no MmfPlugin (apiVersion mmf.marty.dev/v1alpha1) in the file");
    }
    Ok((text, plugins))
}

fn write_file(path: &Path, bytes: &[u8], overwrite: bool) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a private key readable by its owner only (the mode is set before any byte is
/// written, and again on overwrite in case the old file was wider).
fn write_private(path: &Path, bytes: &[u8], overwrite: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mut options = fs::OpenOptions::new();
        options.write(true).mode(0o600);
        if overwrite {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    }
    #[cfg(not(unix))]
    {
        write_file(path, bytes, overwrite)
    }
}

/// Replaces `path` atomically (write a sibling, then rename), keeping its permissions, so an
/// interrupted `mmf sign` never leaves a half-written manifest.
fn replace_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(".mmf-sign.tmp");
    let temporary = path.with_file_name(temporary_name);
    let permissions = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions();
    fs::write(&temporary, text).with_context(|| format!("cannot write {}", temporary.display()))?;
    let result =
        fs::set_permissions(&temporary, permissions).and_then(|()| fs::rename(&temporary, path));
    if let Err(error) = result {
        let _ = fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot replace {}", path.display()));
    }
    Ok(())
}
