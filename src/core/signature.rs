//! Plugin signatures (DESIGN.md section 4): the payload, its digest, signing and verification.
//!
//! The signed payload is the RFC 8785 (JCS) canonical JSON of
//! `{"apiVersion", "kind", "name", "spec"}` where `spec` is the **typed, normalized** spec:
//! the manifest's spec deserialized into [`MmfPluginSpec`](crate::api::MmfPluginSpec), its `signature` removed, and
//! serialized back. The API server applies the CRD's schema defaults (for example
//! `services[].healthCheckPath: /health`) and prunes empty or unknown fields before it stores an
//! object; hashing the user's raw YAML would therefore make every signature fail once the plugin
//! is in the cluster. The typed round trip fills the same defaults and omits the same empty
//! fields, so a manifest signed offline verifies identically in the CLI, the admission webhook
//! and the controller.
//!
//! The flip side: the typed spec *is* the signed format. A new spec field must serialize to
//! nothing when unset (`skip_serializing_if`), and a new schema default must not appear in the
//! output of existing manifests, or every signature made before the change stops verifying.
//!
//! Pure: no I/O, no clock; randomness only in [`generate`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use p256::pkcs8::LineEnding;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::plugin::SignatureAlgorithm;
use crate::api::{API_VERSION, MmfPlugin, PluginSignature};

/// Why a plugin could not be signed or verified. Each message names the field and says what to
/// do; the policy engine matches on the variant to decide how to report it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The plugin has no `spec.signature`.
    #[error(
        "spec.signature is missing: sign the plugin with `mmf sign --key KEY.pem --key-id ID -f FILE`"
    )]
    Missing,
    /// `spec.signature.keyId` is not among the environment's trusted keys.
    #[error(
        "spec.signature.keyId {key_id:?} is not one of the environment's trusted keys ({})",
        if trusted.is_empty() { "none are configured in plugins.security.trusted_keys".to_owned() } else { trusted.join(", ") }
    )]
    UntrustedKey {
        /// The key id the signature names.
        key_id: String,
        /// Ids of the environment's trusted keys.
        trusted: Vec<String>,
    },
    /// The signature claims an algorithm the trusted key cannot produce.
    #[error(
        "spec.signature.algorithm is {signature_algorithm} but trusted key {key_id:?} is an {key_algorithm} key: re-sign with that key or fix the algorithm"
    )]
    AlgorithmMismatch {
        /// The trusted key's id.
        key_id: String,
        /// What the key is.
        key_algorithm: SignatureAlgorithm,
        /// What the signature says.
        signature_algorithm: SignatureAlgorithm,
    },
    /// `spec.signature.value` is not a well-formed signature of its algorithm.
    #[error("spec.signature.value is malformed: {reason}")]
    MalformedValue {
        /// What is wrong with it.
        reason: String,
    },
    /// The signature is well-formed but does not match the payload.
    #[error(
        "spec.signature.value does not verify with key {key_id:?}: the spec, the name or the key changed since signing"
    )]
    Invalid {
        /// The key id used.
        key_id: String,
    },
    /// A key could not be read.
    #[error("{reason}")]
    BadKey {
        /// What is wrong with the key, naming it.
        reason: String,
    },
    /// The payload could not be built from the plugin.
    #[error("cannot build the signed payload: {reason}")]
    Payload {
        /// What is missing or unserializable.
        reason: String,
    },
}

impl SignatureError {
    /// The manifest field the error is about, for violations and conditions.
    pub fn field(&self) -> &'static str {
        match self {
            SignatureError::Missing => "spec.signature",
            SignatureError::UntrustedKey { .. } => "spec.signature.keyId",
            SignatureError::AlgorithmMismatch { .. } => "spec.signature.algorithm",
            SignatureError::MalformedValue { .. } | SignatureError::Invalid { .. } => {
                "spec.signature.value"
            }
            SignatureError::BadKey { .. } | SignatureError::Payload { .. } => "spec.signature",
        }
    }
}

/// What a successful verification established, for status and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The trusted key that made the signature.
    pub key_id: String,
    /// The algorithm used.
    pub algorithm: SignatureAlgorithm,
    /// `sha256:<hex>` of the payload: exactly what was verified (`status.digest`).
    pub digest: String,
}

/// The exact bytes a signature covers. See the module documentation for why `spec` is the
/// typed round trip rather than the raw manifest.
pub fn payload(plugin: &MmfPlugin) -> Result<Vec<u8>, SignatureError> {
    let name = plugin
        .metadata
        .name
        .as_deref()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| SignatureError::Payload {
            reason: "metadata.name is missing".to_owned(),
        })?;
    let mut spec = plugin.spec.clone();
    spec.signature = None;
    // How many revisions the cluster keeps is an operational setting, not plugin content.
    spec.revision_history_limit = None;
    let spec = serde_json::to_value(&spec).map_err(|e| SignatureError::Payload {
        reason: format!("spec: {e}"),
    })?;
    let document: Value = json!({
        "apiVersion": API_VERSION,
        "kind": "MmfPlugin",
        "name": name,
        "spec": spec,
    });
    serde_json_canonicalizer::to_vec(&document).map_err(|e| SignatureError::Payload {
        reason: format!("canonical JSON: {e}"),
    })
}

/// `sha256:<lowercase hex>` of `payload`, naming exactly what was signed.
pub fn digest(payload: &[u8]) -> String {
    super::hash::sha256_digest(payload)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKeyInner {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A trusted public key. Parsed from policy once, so a bad key is reported when the policy
/// loads rather than when the first plugin arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(PublicKeyInner);

impl PublicKey {
    /// Parses a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`) holding an ECDSA P-256
    /// or Ed25519 key, as `openssl pkey -pubout` and `mmf keygen` write it.
    pub fn from_pem(pem: &str) -> Result<PublicKey, SignatureError> {
        let pem = pem.trim();
        if !pem.starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(SignatureError::BadKey {
                reason: "not a PEM public key: expected a block starting with -----BEGIN PUBLIC KEY----- (export one with `openssl pkey -in KEY.pem -pubout`)".to_owned(),
            });
        }
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey(PublicKeyInner::P256(key)));
        }
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey(PublicKeyInner::Ed25519(key)));
        }
        Err(SignatureError::BadKey {
            reason: "the public key is neither an ECDSA P-256 nor an Ed25519 key (or its PEM is damaged)".to_owned(),
        })
    }

    /// The only algorithm this key verifies.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self.0 {
            PublicKeyInner::P256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            PublicKeyInner::Ed25519(_) => SignatureAlgorithm::Ed25519,
        }
    }

    /// The key as PEM SubjectPublicKeyInfo, for `trusted_keys`.
    pub fn to_pem(&self) -> Result<String, SignatureError> {
        let pem = match &self.0 {
            PublicKeyInner::P256(key) => key.to_public_key_pem(LineEnding::LF),
            PublicKeyInner::Ed25519(key) => key.to_public_key_pem(LineEnding::LF),
        };
        pem.map_err(|e| SignatureError::BadKey {
            reason: format!("cannot encode the public key as PEM: {e}"),
        })
    }

    /// Checks `signature` (the decoded `spec.signature.value`) over `message`.
    fn verify(&self, message: &[u8], signature: &[u8], key_id: &str) -> Result<(), SignatureError> {
        use signature_traits::Verifier as _;
        match &self.0 {
            PublicKeyInner::P256(key) => {
                let signature = p256::ecdsa::Signature::from_der(signature).map_err(|_| {
                    SignatureError::MalformedValue {
                        reason: "an ecdsa-p256-sha256 signature must be base64 of an ASN.1 DER ECDSA-Sig-Value (as `openssl dgst -sha256 -sign` writes)".to_owned(),
                    }
                })?;
                key.verify(message, &signature)
                    .map_err(|_| SignatureError::Invalid {
                        key_id: key_id.to_owned(),
                    })
            }
            PublicKeyInner::Ed25519(key) => {
                let bytes: [u8; 64] =
                    signature
                        .try_into()
                        .map_err(|_| SignatureError::MalformedValue {
                            reason: format!(
                                "an ed25519 signature is 64 bytes, this one is {}",
                                signature.len()
                            ),
                        })?;
                let signature = ed25519_dalek::Signature::from_bytes(&bytes);
                key.verify_strict(message, &signature)
                    .map_err(|_| SignatureError::Invalid {
                        key_id: key_id.to_owned(),
                    })
            }
        }
    }
}

/// A public key trusted for plugin signatures (`plugins.security.trusted_keys[]`): its id and
/// PEM as written in the policy, and the key parsed from that PEM. Built only by
/// [`TrustedKey::parse`] (deserializing calls it), so a key that does not parse is reported
/// when the policy loads, and verification never parses PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TrustedKeyFile", into = "TrustedKeyFile")]
pub struct TrustedKey {
    id: String,
    pem: String,
    key: PublicKey,
}

/// A trusted key as a policy file spells it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedKeyFile {
    /// Id that `signature.keyId` refers to.
    id: String,
    /// PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
    public_key: String,
}

impl TrustedKey {
    /// Parses `pem` (see [`PublicKey::from_pem`]) as the key named `id`; the error names the
    /// policy field.
    pub fn parse(
        id: impl Into<String>,
        pem: impl Into<String>,
    ) -> Result<TrustedKey, SignatureError> {
        let (id, pem) = (id.into(), pem.into());
        let key = PublicKey::from_pem(&pem).map_err(|error| SignatureError::BadKey {
            reason: format!("plugins.security.trusted_keys[{id}].public_key: {error}"),
        })?;
        Ok(TrustedKey { id, pem, key })
    }

    /// The id `spec.signature.keyId` refers to.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The PEM as written in the policy.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The parsed key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }
}

impl TryFrom<TrustedKeyFile> for TrustedKey {
    type Error = SignatureError;

    fn try_from(file: TrustedKeyFile) -> Result<TrustedKey, SignatureError> {
        TrustedKey::parse(file.id, file.public_key)
    }
}

impl From<TrustedKey> for TrustedKeyFile {
    fn from(key: TrustedKey) -> TrustedKeyFile {
        TrustedKeyFile {
            id: key.id,
            public_key: key.pem,
        }
    }
}

/// The signer traits, under a name that does not clash with this module.
mod signature_traits {
    pub use ed25519_dalek::{Signer, Verifier};
}

enum SigningKeyInner {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private key that signs plugins. Deliberately not `Debug`, so it cannot end up in logs.
pub struct SigningKey(SigningKeyInner);

impl SigningKey {
    /// Reads an unencrypted private key: PKCS#8 (`-----BEGIN PRIVATE KEY-----`, as
    /// `openssl genpkey` and `mmf keygen` write) for both algorithms, or SEC1
    /// (`-----BEGIN EC PRIVATE KEY-----`, as `openssl ecparam -genkey` writes, possibly after an
    /// `EC PARAMETERS` block) for P-256.
    pub fn from_pem(pem: &str) -> Result<SigningKey, SignatureError> {
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(SignatureError::BadKey {
                reason: "the private key is encrypted: write an unencrypted copy with `openssl pkey -in KEY.pem -out plain.pem` and keep it safe".to_owned(),
            });
        }
        if let Some(block) = pem_block(pem, "EC PRIVATE KEY") {
            let secret =
                p256::SecretKey::from_sec1_pem(block).map_err(|_| SignatureError::BadKey {
                    reason: "the EC PRIVATE KEY is not a valid P-256 key (only the prime256v1 curve is supported)".to_owned(),
                })?;
            return Ok(SigningKey(SigningKeyInner::P256(secret.into())));
        }
        let Some(block) = pem_block(pem, "PRIVATE KEY") else {
            return Err(SignatureError::BadKey {
                reason: "not a PEM private key: expected -----BEGIN PRIVATE KEY----- (PKCS#8) or -----BEGIN EC PRIVATE KEY-----".to_owned(),
            });
        };
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(block) {
            return Ok(SigningKey(SigningKeyInner::P256(key)));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(block) {
            return Ok(SigningKey(SigningKeyInner::Ed25519(key)));
        }
        Err(SignatureError::BadKey {
            reason: "the private key is neither an ECDSA P-256 nor an Ed25519 key (or its PEM is damaged)".to_owned(),
        })
    }

    /// The algorithm of the signatures this key makes.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key().algorithm()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(match &self.0 {
            SigningKeyInner::P256(key) => PublicKeyInner::P256(*key.verifying_key()),
            SigningKeyInner::Ed25519(key) => PublicKeyInner::Ed25519(key.verifying_key()),
        })
    }

    /// The matching public key as PEM SubjectPublicKeyInfo, to paste into `trusted_keys`.
    pub fn public_key_pem(&self) -> Result<String, SignatureError> {
        self.public_key().to_pem()
    }

    fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        use signature_traits::Signer as _;
        match &self.0 {
            SigningKeyInner::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            SigningKeyInner::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}

/// Returns the text of the first `-----BEGIN <label>-----` block, so keys with a leading
/// `EC PARAMETERS` block or surrounding text still parse.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = pem[start..].find(&end)? + start + end.len();
    Some(&pem[start..stop])
}

/// Signs `plugin` (its current `spec.signature` is ignored) and returns the signature to store
/// in `spec.signature`.
pub fn sign(
    plugin: &MmfPlugin,
    key: &SigningKey,
    key_id: &str,
) -> Result<PluginSignature, SignatureError> {
    if key_id.is_empty() {
        return Err(SignatureError::BadKey {
            reason: "the key id is empty: pass the id the environment's trusted_keys use"
                .to_owned(),
        });
    }
    let payload = payload(plugin)?;
    Ok(PluginSignature {
        key_id: key_id.to_owned(),
        algorithm: key.algorithm(),
        value: BASE64.encode(key.sign_bytes(&payload)),
    })
}

/// Checks `plugin`'s signature against the environment's trusted keys (parsed when the policy
/// was read).
pub fn verify(plugin: &MmfPlugin, trusted: &[TrustedKey]) -> Result<Verified, SignatureError> {
    let signature = plugin
        .spec
        .signature
        .as_ref()
        .ok_or(SignatureError::Missing)?;
    let trusted_key = trusted
        .iter()
        .find(|key| key.id == signature.key_id)
        .ok_or_else(|| SignatureError::UntrustedKey {
            key_id: signature.key_id.clone(),
            trusted: trusted.iter().map(|key| key.id.clone()).collect(),
        })?;
    let public_key = trusted_key.public_key();
    if public_key.algorithm() != signature.algorithm {
        return Err(SignatureError::AlgorithmMismatch {
            key_id: trusted_key.id.clone(),
            key_algorithm: public_key.algorithm(),
            signature_algorithm: signature.algorithm,
        });
    }
    let bytes =
        BASE64
            .decode(signature.value.as_bytes())
            .map_err(|e| SignatureError::MalformedValue {
                reason: format!("not standard padded base64 ({e})"),
            })?;
    let payload = payload(plugin)?;
    public_key.verify(&payload, &bytes, &trusted_key.id)?;
    Ok(Verified {
        key_id: trusted_key.id.clone(),
        algorithm: signature.algorithm,
        digest: digest(&payload),
    })
}

/// A freshly generated key pair, both halves PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKeyPair {
    /// PKCS#8 private key (v1 for Ed25519, which OpenSSL 3.0 reads; v2 it refuses).
    pub private_pem: String,
    /// SubjectPublicKeyInfo public key, for `trusted_keys`.
    pub public_pem: String,
}

impl std::fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKeyPair")
            .field("private_pem", &"<redacted>")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

/// Generates a key pair from the operating system's random source; the only impure function
/// of this module.
pub fn generate(algorithm: SignatureAlgorithm) -> Result<GeneratedKeyPair, SignatureError> {
    let random = |bytes: &mut [u8; 32]| {
        getrandom::fill(bytes).map_err(|e| SignatureError::BadKey {
            reason: format!("the operating system's random source failed: {e}"),
        })
    };
    let encode_error = |e: &dyn std::fmt::Display| SignatureError::BadKey {
        reason: format!("cannot encode the new key as PEM: {e}"),
    };
    let mut bytes = [0_u8; 32];
    let private_pem = match algorithm {
        SignatureAlgorithm::Ed25519 => {
            random(&mut bytes)?;
            let keypair = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: bytes,
                public_key: None,
            };
            keypair
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| encode_error(&e))?
                .to_string()
        }
        SignatureAlgorithm::EcdsaP256Sha256 => {
            // A uniformly random 32-byte string is a valid scalar except with probability
            // about 2^-32; retry on the rare rejection.
            let mut secret = None;
            for _ in 0..16 {
                random(&mut bytes)?;
                if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
                    secret = Some(key);
                    break;
                }
            }
            let secret = secret.ok_or_else(|| SignatureError::BadKey {
                reason: "could not draw a valid P-256 scalar from the random source".to_owned(),
            })?;
            secret
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| encode_error(&e))?
                .to_string()
        }
    };
    bytes.fill(0);
    let key = SigningKey::from_pem(&private_pem)?;
    Ok(GeneratedKeyPair {
        public_pem: key.public_key_pem()?,
        private_pem,
    })
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
