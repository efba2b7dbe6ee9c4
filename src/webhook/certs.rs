//! The self-managed certificate authority and serving certificate, as pure functions of what is
//! stored and the time `now`, so issuing, renewal and CA rotation are testable without waiting
//! years.
//!
//! The API server trusts whatever is in the ValidatingWebhookConfiguration's `caBundle`; it
//! never sees the CA key. A CA rotation therefore goes in two steps: the new CA is published
//! next to the old one, and only once the published bundle holds it is the serving certificate
//! re-issued from it (kyverno#8074 is what happens otherwise).

use std::collections::BTreeMap;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

/// Secret key of the current CA certificate.
pub const CA_CERT: &str = "ca.crt";
/// Secret key of the current CA's private key.
pub const CA_KEY: &str = "ca.key";
/// Secret key of the CA being replaced, still published in `caBundle` until it expires.
pub const PREVIOUS_CA_CERT: &str = "ca-previous.crt";
/// Secret key of the serving certificate.
pub const TLS_CERT: &str = "tls.crt";
/// Secret key of the serving certificate's private key.
pub const TLS_KEY: &str = "tls.key";

/// How long a generated CA is valid by default (`--webhook-ca-validity`).
pub const CA_VALIDITY: Duration = Duration::days(5 * 365);
/// How long a serving certificate is valid by default (`--webhook-cert-validity`).
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// The shortest CA lifetime accepted: a rotation needs time to publish and settle.
pub const MIN_CA_VALIDITY: Duration = Duration::seconds(60);
/// The shortest serving-certificate lifetime accepted: the one re-issued at a CA rotation must
/// outlast the new CA's settling (5 s) and a check before it falls due.
pub const MIN_LEAF_VALIDITY: Duration = Duration::seconds(12);
/// Certificates are back-dated by this much, for API servers whose clock runs a little behind.
const BACKDATE: Duration = Duration::hours(1);

/// A certificate problem.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what} is not a PEM certificate")]
    NotPem { what: &'static str },
    #[error("{what} cannot be parsed as X.509: {message}")]
    Parse { what: &'static str, message: String },
}

/// Certificate lifetimes that cannot work, named after the flags that set them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifetimeError {
    #[error(
        "--webhook-ca-validity {ca} is shorter than the {MIN_CA_VALIDITY} a CA rotation needs to publish and settle"
    )]
    CaTooShort { ca: Duration },
    #[error(
        "--webhook-cert-validity {leaf} is shorter than the {MIN_LEAF_VALIDITY} a serving certificate must last across a CA rotation"
    )]
    LeafUnderMinimum { leaf: Duration },
    #[error(
        "--webhook-ca-validity {ca} must be at least three times --webhook-cert-validity {leaf}: a serving certificate must fit in the last third of its CA's life, when the next CA takes over"
    )]
    LeafOutlivesCa { ca: Duration, leaf: Duration },
    #[error(
        "--webhook-cert-validity {leaf} must be at least six times --webhook-cert-check-interval {interval}: a certificate is renewed when a third of its life is left, and that must span two checks"
    )]
    LeafTooShort { leaf: Duration, interval: Duration },
}

/// How long the CA and the serving certificate live. Each is replaced when a third of its life
/// is left (cert-manager's default rule): the serving certificate under the same CA; the CA in
/// two published steps, the old one staying in `caBundle` until it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    ca: Duration,
    leaf: Duration,
}

impl Default for Lifetimes {
    fn default() -> Lifetimes {
        Lifetimes {
            ca: CA_VALIDITY,
            leaf: LEAF_VALIDITY,
        }
    }
}

impl Lifetimes {
    /// Checked lifetimes for certificates looked at every `check_interval`.
    pub fn new(
        ca: Duration,
        leaf: Duration,
        check_interval: Duration,
    ) -> Result<Lifetimes, LifetimeError> {
        if ca < MIN_CA_VALIDITY {
            return Err(LifetimeError::CaTooShort { ca });
        }
        if leaf < MIN_LEAF_VALIDITY {
            return Err(LifetimeError::LeafUnderMinimum { leaf });
        }
        if ca < leaf * 3 {
            return Err(LifetimeError::LeafOutlivesCa { ca, leaf });
        }
        if leaf < check_interval * 6 {
            return Err(LifetimeError::LeafTooShort {
                leaf,
                interval: check_interval,
            });
        }
        Ok(Lifetimes { ca, leaf })
    }

    /// How long a new CA is valid.
    pub fn ca(&self) -> Duration {
        self.ca
    }

    /// How long a new serving certificate is valid.
    pub fn leaf(&self) -> Duration {
        self.leaf
    }

    /// A CA this close to expiry is replaced.
    pub fn ca_renew_before(&self) -> Duration {
        self.ca / 3
    }

    /// A serving certificate this close to expiry is re-issued.
    pub fn leaf_renew_before(&self) -> Duration {
        self.leaf / 3
    }
}

/// The contents of the webhook's TLS Secret, as PEM text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBundle {
    /// Current CA certificate.
    pub ca_cert: String,
    /// Current CA private key (PKCS#8).
    pub ca_key: String,
    /// The CA being rotated out, still trusted until it expires.
    pub previous_ca_cert: Option<String>,
    /// Serving certificate (leaf only).
    pub tls_cert: String,
    /// Serving key (PKCS#8).
    pub tls_key: String,
}

impl CertBundle {
    /// Reads the Secret's `data` (already base64-decoded); None when a required key is missing
    /// or not UTF-8, which the caller treats as "issue everything anew".
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Option<CertBundle> {
        let text = |key: &str| {
            data.get(key)
                .and_then(|bytes| String::from_utf8(bytes.clone()).ok())
        };
        Some(CertBundle {
            ca_cert: text(CA_CERT)?,
            ca_key: text(CA_KEY)?,
            previous_ca_cert: text(PREVIOUS_CA_CERT).filter(|s| !s.trim().is_empty()),
            tls_cert: text(TLS_CERT)?,
            tls_key: text(TLS_KEY)?,
        })
    }

    /// The Secret's `data`, before base64.
    pub fn to_secret_data(&self) -> BTreeMap<String, Vec<u8>> {
        let mut data = BTreeMap::from([
            (CA_CERT.to_owned(), self.ca_cert.clone().into_bytes()),
            (CA_KEY.to_owned(), self.ca_key.clone().into_bytes()),
            (TLS_CERT.to_owned(), self.tls_cert.clone().into_bytes()),
            (TLS_KEY.to_owned(), self.tls_key.clone().into_bytes()),
        ]);
        if let Some(previous) = &self.previous_ca_cert {
            data.insert(PREVIOUS_CA_CERT.to_owned(), previous.clone().into_bytes());
        }
        data
    }

    /// The CA of this bundle (current or previous) whose subject is `issuer`, as PEM.
    pub fn ca_with_subject(&self, issuer: &[u8]) -> Option<&str> {
        [
            Some(self.ca_cert.as_str()),
            self.previous_ca_cert.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find(|pem| CertInfo::from_pem(pem, CA_CERT).is_ok_and(|ca| ca.subject == issuer))
    }

    /// What the API server must trust: the current CA, then the previous one while it lasts.
    pub fn ca_bundle(&self) -> String {
        let mut bundle = self.ca_cert.trim_end().to_owned();
        bundle.push('\n');
        if let Some(previous) = &self.previous_ca_cert {
            bundle.push_str(previous.trim_end());
            bundle.push('\n');
        }
        bundle
    }
}

/// The facts about a certificate that renewal decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Expiry, Unix seconds.
    pub not_after: i64,
    /// DNS names and IP addresses (as text) in the subjectAltName.
    pub names: Vec<String>,
    /// DER of the subject name.
    pub subject: Vec<u8>,
    /// DER of the issuer name.
    pub issuer: Vec<u8>,
}

impl CertInfo {
    /// Parses the first certificate of a PEM text.
    pub fn from_pem(pem: &str, what: &'static str) -> Result<CertInfo, CertError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| CertError::NotPem { what })?;
        CertInfo::from_der(&der, what)
    }

    /// Parses one DER certificate.
    pub fn from_der(der: &[u8], what: &'static str) -> Result<CertInfo, CertError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Parse {
            what,
            message: e.to_string(),
        })?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                            _ => None,
                        };
                        if let Some(ip) = ip {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(CertInfo {
            not_after: cert.validity().not_after.timestamp(),
            names,
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
        })
    }

    /// True when the certificate expires within `margin` of `now`.
    pub fn expires_within(&self, now: OffsetDateTime, margin: Duration) -> bool {
        self.not_after <= (now + margin).unix_timestamp()
    }

    /// True when every name in `wanted` is in the subjectAltName.
    pub fn covers(&self, wanted: &[String]) -> bool {
        wanted
            .iter()
            .all(|name| self.names.iter().any(|n| n == name))
    }
}

/// The names the serving certificate must carry: the Service's DNS names in every form the API
/// server may use, plus the host of `webhook_url` when the operator runs outside the cluster.
pub fn serving_names(service: &str, namespace: &str, url_host: Option<&str>) -> Vec<String> {
    let mut names = vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    if let Some(host) = url_host {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
    }
    names
}

/// A new CA valid from `now`. The common name carries the time so successive CAs have distinct
/// subjects, which is how a serving certificate's issuer is matched to its CA.
pub fn new_ca(now: OffsetDateTime, validity: Duration) -> Result<(String, String), CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "mmf-operator");
    name.push(
        DnType::CommonName,
        format!("mmf-operator webhook CA {}", now.unix_timestamp()),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A serving certificate for `names`, signed by the CA `(ca_cert, ca_key)`, valid for
/// `validity` but never beyond the CA (a client would refuse it once the CA expires).
pub fn new_leaf(
    ca_cert: &str,
    ca_key: &str,
    names: &[String],
    now: OffsetDateTime,
    validity: Duration,
) -> Result<(String, String), CertError> {
    let ca_expiry = CertInfo::from_pem(ca_cert, CA_CERT)?.not_after;
    let ca_key = KeyPair::from_pem(ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "mmf-operator");
    name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - BACKDATE;
    params.not_after = match OffsetDateTime::from_unix_timestamp(ca_expiry) {
        Ok(ca_not_after) => (now + validity).min(ca_not_after),
        Err(_) => now + validity,
    };
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A fresh CA and serving certificate.
pub fn issue_all(
    names: &[String],
    now: OffsetDateTime,
    lifetimes: Lifetimes,
) -> Result<CertBundle, CertError> {
    let (ca_cert, ca_key) = new_ca(now, lifetimes.ca)?;
    let (tls_cert, tls_key) = new_leaf(&ca_cert, &ca_key, names, now, lifetimes.leaf)?;
    Ok(CertBundle {
        ca_cert,
        ca_key,
        previous_ca_cert: None,
        tls_cert,
        tls_key,
    })
}

/// Whether a pass starts serving the stored serving certificate (issued by `stored_issuer`, a
/// DER subject) in place of the one served now (issued by `served_issuer`): at once when
/// nothing is served yet or the CA is the same; a certificate of another CA only once that CA
/// has been published long enough for every API server to trust it (`settled_ca`).
pub fn should_serve(
    served_issuer: Option<&[u8]>,
    stored_issuer: &[u8],
    settled_ca: Option<&[u8]>,
) -> bool {
    match served_issuer {
        None => true,
        Some(served) if served == stored_issuer => true,
        Some(_) => settled_ca == Some(stored_issuer),
    }
}

/// Why a bundle was changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing usable was stored: a new CA and serving certificate.
    Issued,
    /// The CA nears expiry: a new CA is published beside the old one, and the serving
    /// certificate is re-issued by the old one a last time.
    CaRotated,
    /// The serving certificate was re-issued (expiry, names, or the new CA is now published).
    LeafReissued,
    /// The previous CA expired and was dropped from the bundle.
    PreviousCaDropped,
}

/// The bundle to store, or None when `current` is fine as it is. `ca_published` says whether
/// the API servers already trust the current CA (it has been in the live `caBundle` for a
/// while); until they do, a serving certificate from a freshly rotated CA would be refused, so
/// the old one stays in use.
pub fn renew(
    current: Option<&CertBundle>,
    names: &[String],
    now: OffsetDateTime,
    ca_published: bool,
    lifetimes: Lifetimes,
) -> Result<Option<(CertBundle, Renewal)>, CertError> {
    let fresh = || issue_all(names, now, lifetimes);
    let Some(current) = current else {
        return Ok(Some((fresh()?, Renewal::Issued)));
    };
    let (Ok(ca), Ok(leaf)) = (
        CertInfo::from_pem(&current.ca_cert, CA_CERT),
        CertInfo::from_pem(&current.tls_cert, TLS_CERT),
    ) else {
        return Ok(Some((fresh()?, Renewal::Issued)));
    };
    if KeyPair::from_pem(&current.ca_key).is_err() || ca.expires_within(now, Duration::ZERO) {
        return Ok(Some((fresh()?, Renewal::Issued)));
    }
    if ca.expires_within(now, lifetimes.ca_renew_before()) {
        let (ca_cert, ca_key) = new_ca(now, lifetimes.ca)?;
        // A fresh serving certificate from the outgoing CA (its last chance: its key is not
        // kept), so the one served lasts until the new CA has settled in every API server.
        let (tls_cert, tls_key) = new_leaf(
            &current.ca_cert,
            &current.ca_key,
            names,
            now,
            lifetimes.leaf,
        )?;
        let rotated = CertBundle {
            ca_cert,
            ca_key,
            previous_ca_cert: Some(current.ca_cert.clone()),
            tls_cert,
            tls_key,
        };
        return Ok(Some((rotated, Renewal::CaRotated)));
    }
    let from_current_ca = leaf.issuer == ca.subject;
    let leaf_due = leaf.expires_within(now, lifetimes.leaf_renew_before()) || !leaf.covers(names);
    let previous_usable = current
        .previous_ca_cert
        .as_deref()
        .and_then(|pem| CertInfo::from_pem(pem, PREVIOUS_CA_CERT).ok())
        .filter(|previous| !previous.expires_within(now, Duration::ZERO));
    // A leaf from an outgoing CA switches once the new CA is trusted, or when waiting longer
    // would outlive the old CA.
    let switch_ca = !from_current_ca
        && (ca_published
            || previous_usable
                .as_ref()
                .is_none_or(|p| p.expires_within(now, lifetimes.leaf_renew_before())));
    if leaf_due || switch_ca {
        let (tls_cert, tls_key) = new_leaf(
            &current.ca_cert,
            &current.ca_key,
            names,
            now,
            lifetimes.leaf,
        )?;
        let reissued = CertBundle {
            tls_cert,
            tls_key,
            previous_ca_cert: previous_usable.and(current.previous_ca_cert.clone()),
            ..current.clone()
        };
        return Ok(Some((reissued, Renewal::LeafReissued)));
    }
    if current.previous_ca_cert.is_some() && previous_usable.is_none() {
        let dropped = CertBundle {
            previous_ca_cert: None,
            ..current.clone()
        };
        return Ok(Some((dropped, Renewal::PreviousCaDropped)));
    }
    Ok(None)
}
