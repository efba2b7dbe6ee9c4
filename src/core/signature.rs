//! Placeholder until the signature module lands.

/// A trusted public key.
pub struct PublicKey;

impl PublicKey {
    /// Parses a PEM SubjectPublicKeyInfo.
    pub fn from_pem(_pem: &str) -> Result<PublicKey, String> {
        Ok(PublicKey)
    }
}
