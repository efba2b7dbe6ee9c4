//! Remembered signature verdicts, so judging an already verified plugin again (every
//! admission review of a service re-judges each plugin it requests) costs a hash, not an
//! ECDSA or Ed25519 verification.
//!
//! A verdict is a function of the signed payload, the signature and the trusted key, so the
//! key of an entry is the sha256 of exactly those: a changed spec, signature or trusted key is
//! a different entry, and a stale verdict cannot be returned. Bounded: the oldest entry goes
//! first. No I/O; the shell counts hits and misses.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::signature::{self, SignatureError, Verified};
use crate::api::MmfPlugin;
use crate::config::TrustedKey;

/// Entries kept by default: far more than the plugins of any cluster, and a few MiB at most.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Whether a verification was answered from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Remembered.
    Hit,
    /// Verified now, and remembered.
    Miss,
    /// Nothing to remember: no signature, or no trusted key of its id (cheap checks).
    Bypassed,
}

type Key = [u8; 32];
type Entry = Result<Verified, SignatureError>;

#[derive(Debug, Default)]
struct Entries {
    verdicts: HashMap<Key, Entry>,
    order: VecDeque<Key>,
}

/// A bounded map from (payload digest, signature, trusted key) to verdict.
#[derive(Debug)]
pub struct VerdictCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

impl Default for VerdictCache {
    fn default() -> Self {
        VerdictCache::new(DEFAULT_CAPACITY)
    }
}

impl VerdictCache {
    /// A cache of at most `capacity` verdicts (at least one).
    pub fn new(capacity: usize) -> VerdictCache {
        VerdictCache {
            capacity: capacity.max(1),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Number of verdicts held.
    pub fn len(&self) -> usize {
        self.lock().verdicts.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave a half-written verdict (one insert).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`signature::verify`], answered from the cache when the same payload (by `digest`, its
    /// `sha256:` digest, computed here when None), signature and key were verified before.
    pub fn verify(
        &self,
        plugin: &MmfPlugin,
        digest: Option<&str>,
        trusted: &[TrustedKey],
    ) -> (Entry, Lookup) {
        let Some(key) = cache_key(plugin, digest, trusted) else {
            return (signature::verify(plugin, trusted), Lookup::Bypassed);
        };
        if let Some(verdict) = self.lock().verdicts.get(&key) {
            return (verdict.clone(), Lookup::Hit);
        }
        let verdict = signature::verify(plugin, trusted);
        let mut entries = self.lock();
        if entries.verdicts.insert(key, verdict.clone()).is_none() {
            entries.order.push_back(key);
        }
        while entries.order.len() > self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.verdicts.remove(&oldest);
            }
        }
        (verdict, Lookup::Miss)
    }
}

/// sha256 over the payload digest, the signature and the trusted key it names; None when there
/// is no signature or no such key (the verdict is then cheap and not worth remembering).
fn cache_key(plugin: &MmfPlugin, digest: Option<&str>, trusted: &[TrustedKey]) -> Option<Key> {
    let signed = plugin.spec.signature.as_ref()?;
    let key = trusted.iter().find(|k| k.id == signed.key_id)?;
    let digest = match digest {
        Some(digest) => digest.to_owned(),
        None => signature::digest(&signature::payload(plugin).ok()?),
    };
    let mut hasher = Sha256::new();
    for part in [
        digest.as_bytes(),
        signed.algorithm.as_str().as_bytes(),
        signed.value.as_bytes(),
        key.id.as_bytes(),
        key.public_key.as_bytes(),
    ] {
        // Length-prefixed, so no two different inputs concatenate alike.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    Some(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::plugin::SignatureAlgorithm;
    use crate::api::{MmfPluginSpec, PluginSignature};

    fn plugin(value: &str) -> MmfPlugin {
        MmfPlugin::new(
            "payment",
            MmfPluginSpec {
                version: "1.0.0".into(),
                description: None,
                author: None,
                tags: vec![],
                image: "r/p:1".into(),
                dependencies: vec![],
                optional_dependencies: vec![],
                mmf_version: None,
                services: vec![],
                config_schema: None,
                config: None,
                environments: Default::default(),
                signature: Some(PluginSignature {
                    key_id: "k1".into(),
                    algorithm: SignatureAlgorithm::Ed25519,
                    value: value.into(),
                }),
                revision_history_limit: None,
            },
        )
    }

    fn keys(pem: &str) -> Vec<TrustedKey> {
        vec![TrustedKey {
            id: "k1".into(),
            public_key: pem.into(),
        }]
    }

    #[test]
    fn the_same_payload_signature_and_key_is_a_hit_with_the_same_verdict() {
        let cache = VerdictCache::new(8);
        let trusted = keys("not a key");
        let (first, lookup) = cache.verify(&plugin("AAAA"), None, &trusted);
        assert_eq!(lookup, Lookup::Miss);
        let (second, lookup) = cache.verify(&plugin("AAAA"), None, &trusted);
        assert_eq!(lookup, Lookup::Hit);
        assert_eq!(first, second);
        assert_eq!(first, signature::verify(&plugin("AAAA"), &trusted));
    }

    #[test]
    fn a_changed_signature_or_key_is_a_different_entry() {
        let cache = VerdictCache::new(8);
        let _ = cache.verify(&plugin("AAAA"), None, &keys("one"));
        assert_eq!(
            cache.verify(&plugin("BBBB"), None, &keys("one")).1,
            Lookup::Miss
        );
        assert_eq!(
            cache.verify(&plugin("AAAA"), None, &keys("two")).1,
            Lookup::Miss
        );
        let mut changed = plugin("AAAA");
        changed.spec.version = "1.0.1".into();
        assert_eq!(cache.verify(&changed, None, &keys("one")).1, Lookup::Miss);
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn the_oldest_verdict_is_dropped_beyond_capacity() {
        let cache = VerdictCache::new(2);
        let trusted = keys("k");
        for value in ["AAAA", "BBBB", "CCCC"] {
            let _ = cache.verify(&plugin(value), None, &trusted);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.verify(&plugin("CCCC"), None, &trusted).1, Lookup::Hit);
        assert_eq!(
            cache.verify(&plugin("AAAA"), None, &trusted).1,
            Lookup::Miss
        );
    }

    #[test]
    fn an_unsigned_plugin_or_an_unknown_key_bypasses_the_cache() {
        let cache = VerdictCache::new(2);
        let mut unsigned = plugin("AAAA");
        unsigned.spec.signature = None;
        let (verdict, lookup) = cache.verify(&unsigned, None, &keys("k"));
        assert_eq!(
            (verdict, lookup),
            (Err(SignatureError::Missing), Lookup::Bypassed)
        );
        assert_eq!(cache.verify(&plugin("AAAA"), None, &[]).1, Lookup::Bypassed);
        assert!(cache.is_empty());
    }
}
