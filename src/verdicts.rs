//! The signature verdict cache, counted: shared by the controllers and the admission webhook of
//! one process, so a plugin verified by one is a cache hit for the other.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::api::{MmfPlugin, SignatureAlgorithm};
use crate::core::policy::SignatureVerifier;
use crate::core::signature::{SignatureError, TrustedKey, Verified};
use crate::core::verdict_cache::{Lookup, VerdictCache};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    algorithm: String,
    result: String,
}

/// The verdict cache, counted: `mmf_signature_verifications_total{algorithm,result}` for every
/// signature judged, and the cache's hits and misses.
#[derive(Debug, Default)]
pub struct SignatureVerdicts {
    cache: VerdictCache,
    verifications: Family<VerificationLabels, Counter>,
    hits: Counter,
    misses: Counter,
}

impl SignatureVerdicts {
    /// Registers the counters (`mmf_signature_*`).
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("mmf");
        registry.register(
            "signature_verifications",
            "Plugin signatures judged, per algorithm and result",
            self.verifications.clone(),
        );
        registry.register(
            "signature_verdict_cache_hits",
            "Signature verdicts answered from the cache",
            self.hits.clone(),
        );
        registry.register(
            "signature_verdict_cache_misses",
            "Signature verdicts computed and added to the cache",
            self.misses.clone(),
        );
    }
}

/// `result` of `mmf_signature_verifications_total`.
fn verification_result(verdict: &Result<Verified, SignatureError>) -> &'static str {
    match verdict {
        Ok(_) => "verified",
        Err(SignatureError::Missing) => "unsigned",
        Err(SignatureError::UntrustedKey { .. }) => "untrusted_key",
        Err(_) => "invalid",
    }
}

impl SignatureVerifier for SignatureVerdicts {
    fn verify(
        &self,
        plugin: &MmfPlugin,
        digest: Option<&str>,
        trusted: &[TrustedKey],
    ) -> Result<Verified, SignatureError> {
        let (verdict, lookup) = self.cache.verify(plugin, digest, trusted);
        match lookup {
            Lookup::Hit => {
                self.hits.inc();
            }
            Lookup::Miss => {
                self.misses.inc();
            }
            Lookup::Bypassed => {}
        }
        let algorithm = plugin
            .spec
            .signature
            .as_ref()
            .map_or("none", |s| SignatureAlgorithm::as_str(s.algorithm));
        self.verifications
            .get_or_create(&VerificationLabels {
                algorithm: algorithm.to_owned(),
                result: verification_result(&verdict).to_owned(),
            })
            .inc();
        verdict
    }
}
