//! Placeholder until the signature module lands (same API).

use crate::api::{MmfPlugin, PluginSignature, SignatureAlgorithm};
use crate::config::TrustedKey;

/// A trusted public key.
pub struct PublicKey;

impl PublicKey {
    /// Parses a PEM SubjectPublicKeyInfo.
    pub fn from_pem(_pem: &str) -> Result<PublicKey, String> {
        Ok(PublicKey)
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub algorithm: SignatureAlgorithm,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignatureError {
    #[error("spec.signature is missing")]
    Missing,
    #[error("untrusted {key_id}")]
    UntrustedKey {
        key_id: String,
        trusted: Vec<String>,
    },
    #[error("invalid {key_id}")]
    Invalid { key_id: String },
}

pub fn payload(_plugin: &MmfPlugin) -> Result<Vec<u8>, SignatureError> {
    Ok(Vec::new())
}

pub fn digest(_payload: &[u8]) -> String {
    String::new()
}

pub fn verify(plugin: &MmfPlugin, _trusted: &[TrustedKey]) -> Result<Verified, SignatureError> {
    let _: Option<&PluginSignature> = plugin.spec.signature.as_ref();
    Err(SignatureError::Missing)
}
