//! The one spelling of a sha256: lowercase hex, optionally shortened, optionally prefixed with
//! `sha256:` as digests are written in status, audit records and signatures.

use sha2::{Digest, Sha256};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Lowercase hex of the sha256 of `bytes` (64 characters).
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(bytes.as_ref()))
}

/// The sha256 of `parts`, each preceded by its length, so no two different lists of parts
/// hash alike (`["ab", "c"]` is not `["a", "bc"]`).
pub fn sha256_of_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The first `chars` characters of [`sha256_hex`] (all 64 when `chars` is larger), for names
/// and change detection where a full digest is not needed.
pub fn sha256_hex_prefix(bytes: impl AsRef<[u8]>, chars: usize) -> String {
    let mut hex = sha256_hex(bytes);
    hex.truncate(chars);
    hex
}

/// `sha256:<hex>` of `bytes`, the form digests take in status and the audit trail.
pub fn sha256_digest(bytes: impl AsRef<[u8]>) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn the_hex_is_lowercase_and_the_digest_is_prefixed() {
        assert_eq!(sha256_hex(b""), EMPTY);
        assert_eq!(sha256_digest(""), format!("sha256:{EMPTY}"));
    }

    #[test]
    fn parts_are_length_prefixed_so_their_boundaries_count() {
        let split = |parts: &[&str]| sha256_of_parts(parts.iter().map(|p| p.as_bytes()));
        assert_ne!(split(&["ab", "c"]), split(&["a", "bc"]));
        assert_eq!(
            hex(&split(&[""])),
            sha256_hex([0u8; 8]),
            "an empty part is its zero length alone"
        );
    }

    #[test]
    fn a_prefix_is_the_start_of_the_hex() {
        assert_eq!(sha256_hex_prefix(b"", 8), "e3b0c442");
        assert_eq!(sha256_hex_prefix(b"", 100), EMPTY);
    }
}
