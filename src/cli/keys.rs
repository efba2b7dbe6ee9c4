//! `mmf keygen`, `mmf payload`, `mmf sign`, `mmf verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

/// Arguments of `mmf keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// `ecdsa-p256-sha256` or `ed25519`.
    #[arg(long)]
    pub algorithm: String,
    /// Directory to write the key pair into.
    #[arg(long)]
    pub out: PathBuf,
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
    /// PKCS#8 PEM private key.
    #[arg(long)]
    pub key: PathBuf,
    /// Key id recorded in the signature (one of the environment's trusted_keys ids).
    #[arg(long)]
    pub key_id: String,
    /// Plugin manifest to sign in place.
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

pub fn keygen(_args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    bail!("not implemented yet")
}

pub fn payload(_args: &PayloadArgs) -> anyhow::Result<ExitCode> {
    bail!("not implemented yet")
}

pub fn sign(_args: &SignArgs) -> anyhow::Result<ExitCode> {
    bail!("not implemented yet")
}

pub fn verify(_args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    bail!("not implemented yet")
}
