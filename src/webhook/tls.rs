//! Serving TLS: a certificate cell the handshake reads and the renewal tasks write, so a new
//! certificate takes effect on the next connection without a restart; the Secret that holds
//! the self-managed CA for every replica; and the watch on a mounted certificate directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use super::WebhookError;
use super::certs::{CertBundle, Lifetimes, Renewal, renew};
use crate::api::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::core::hash::sha256_of_parts;
use crate::files::DirWatch;

/// A certificate chain and key from PEM, checked to belong together. Used for every source, so
/// a half-written pair never reaches the handshake.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the PEM".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key PEM: {e}"))?;
    let signer = any_supported_type(&key).map_err(|e| format!("key: {e}"))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| format!("certificate and key do not belong together: {e}"))?;
    Ok(certified)
}

/// The current serving certificate. The handshake reads it synchronously; renewal swaps it.
#[derive(Debug, Default)]
pub struct CertCell {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// `mmf_webhook_certificate_expiry_timestamp_seconds`: notAfter of what is served.
    expiry: prometheus_client::metrics::gauge::Gauge,
}

impl CertCell {
    /// A cell that reports the served certificate's notAfter (Unix seconds) in `expiry`.
    pub fn reporting_expiry(expiry: prometheus_client::metrics::gauge::Gauge) -> CertCell {
        CertCell {
            current: RwLock::default(),
            expiry,
        }
    }

    /// Replaces the certificate for every later handshake.
    pub fn store(&self, key: CertifiedKey) {
        if let Some(leaf) = key.cert.first()
            && let Ok(info) = super::certs::CertInfo::from_der(leaf, "the serving certificate")
        {
            self.expiry.set(info.not_after);
        }
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Some(Arc::new(key));
    }

    /// The certificate in use, if one was loaded.
    pub fn load(&self) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for CertCell {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.load()
    }
}

/// The rustls server configuration every listener uses: ring only, HTTP/2 and HTTP/1.1,
/// certificate from `cell`.
pub fn server_config(cell: Arc<CertCell>) -> Result<Arc<rustls::ServerConfig>, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cell);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

// === Self-managed: the Secret ===

/// Reads the webhook Secret, creating or renewing its certificates as needed, and returns what
/// is stored afterwards. `settled_ca` is the CA the API servers are known to trust by now. Replicas race safely: creation and replacement are conditional, and the
/// loser of a race re-reads and uses the winner's certificates.
pub async fn ensure_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    names: &[String],
    settled_ca: Option<&str>,
    lifetimes: Lifetimes,
) -> Result<(CertBundle, Option<Renewal>), WebhookError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _attempt in 0..3 {
        let existing = api
            .get_opt(name)
            .await
            .map_err(|source| WebhookError::ReadSecret {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })?;
        let stored = existing.as_ref().and_then(|secret| {
            let data = secret.data.as_ref()?;
            let plain = data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
            CertBundle::from_secret_data(&plain)
        });
        let now = OffsetDateTime::now_utc();
        let ca_published = stored
            .as_ref()
            .is_some_and(|stored| Some(stored.ca_cert.as_str()) == settled_ca);
        let Some((bundle, renewal)) = renew(stored.as_ref(), names, now, ca_published, lifetimes)?
        else {
            if let Some(stored) = stored {
                return Ok((stored, None));
            }
            continue;
        };
        let data = bundle
            .to_secret_data()
            .into_iter()
            .map(|(k, v)| (k, ByteString(v)))
            .collect();
        let result = match existing {
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(namespace.to_owned()),
                        labels: Some(
                            [
                                (MANAGED_BY_LABEL, MANAGED_BY),
                                ("app.kubernetes.io/part-of", "mmf"),
                                ("app.kubernetes.io/component", "webhook"),
                            ]
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                        ),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".to_owned()),
                    data: Some(data),
                    ..Secret::default()
                };
                api.create(&PostParams::default(), &secret).await
            }
            Some(mut secret) => {
                // Keeps resourceVersion, so a concurrent writer makes this a 409.
                secret.data = Some(data);
                secret.metadata.managed_fields = None;
                api.replace(name, &PostParams::default(), &secret).await
            }
        };
        match result {
            Ok(_) => return Ok((bundle, Some(renewal))),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::info!(
                    secret = name,
                    "another replica wrote the webhook certificates first; using theirs"
                );
                continue;
            }
            Err(source) => {
                return Err(WebhookError::WriteSecret {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source,
                });
            }
        }
    }
    Err(WebhookError::Tls(format!(
        "Secret {namespace}/{name} kept changing under us; giving up for this pass"
    )))
}

// === Files (cert-manager, or any mounted Secret) ===

/// A certificate directory as mounted from a Secret: `tls.crt`, `tls.key` and optionally
/// `ca.crt`, usually symlinks through a `..data` link that kubelet swaps atomically.
#[derive(Debug, Clone)]
pub struct CertDir {
    dir: PathBuf,
}

/// What a certificate directory held at one read.
#[derive(Debug, Clone)]
pub struct DirContents {
    /// Hash of `tls.crt` and `tls.key`, to notice changes.
    pub fingerprint: [u8; 32],
    /// The parsed pair.
    pub key: CertifiedKey,
    /// `ca.crt` when present: the bundle to publish.
    pub ca: Option<Vec<u8>>,
    /// `tls.crt` as read (the fallback bundle for a self-signed certificate).
    pub cert_pem: Vec<u8>,
}

impl CertDir {
    /// The directory.
    pub fn new(dir: impl Into<PathBuf>) -> CertDir {
        CertDir { dir: dir.into() }
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads and checks the pair; an error (missing file, mismatched pair while kubelet is
    /// mid-update) leaves the certificate in use unchanged.
    pub fn read(&self) -> Result<DirContents, String> {
        let read = |file: &str| {
            std::fs::read(self.dir.join(file))
                .map_err(|e| format!("{}: {e}", self.dir.join(file).display()))
        };
        let cert_pem = read("tls.crt")?;
        let key_pem = read("tls.key")?;
        let key = certified_key(&cert_pem, &key_pem)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let fingerprint = sha256_of_parts([cert_pem.as_slice(), key_pem.as_slice()]);
        let ca = std::fs::read(self.dir.join("ca.crt")).ok();
        Ok(DirContents {
            fingerprint,
            key,
            ca,
            cert_pem,
        })
    }
}

/// How often the directory is re-read even without a file event (events can be missed on
/// some volume types).
pub const DIR_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Watches `dir` (the directory itself, since kubelet replaces a `..data` symlink rather than
/// the files) and calls `on_change` with each new, valid pair. Runs until the returned task is
/// dropped or aborted.
pub fn watch_dir(
    dir: CertDir,
    mut last: [u8; 32],
    on_change: impl Fn(DirContents) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut watch = DirWatch::new(
            dir.path(),
            false,
            DIR_POLL_INTERVAL,
            "certificate directory",
        );
        loop {
            match dir.read() {
                Ok(contents) if contents.fingerprint != last => {
                    last = contents.fingerprint;
                    tracing::info!(dir = %dir.path().display(), "serving certificate changed on disk; reloaded");
                    on_change(contents);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "certificate directory not readable as a pair yet")
                }
            }
            watch.changed().await;
        }
    })
}
