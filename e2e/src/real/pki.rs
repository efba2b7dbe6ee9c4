//! Certificates and keys for a throwaway real control plane: one CA, a serving certificate for
//! every component (loopback names only), an admin client certificate in `system:masters`, and
//! the service-account signing key pair. Generated per cluster, written under its directory.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::RealError;

/// Paths of the files [`write`] created.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA certificate: trusted by every client, `--client-ca-file` of the API server.
    pub ca_cert: PathBuf,
    /// The CA key (kube-controller-manager signs CSRs with it).
    pub ca_key: PathBuf,
    /// The serving certificate shared by all components (SANs: 127.0.0.1, localhost and the
    /// in-cluster names of the `kubernetes` Service).
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
    /// Client certificate of the `admin` user (group `system:masters`).
    pub admin_cert: PathBuf,
    /// Its key.
    pub admin_key: PathBuf,
    /// Service-account token signing key (private).
    pub sa_key: PathBuf,
    /// Service-account token verification key (public).
    pub sa_pub: PathBuf,
}

/// Generates everything and writes it under `dir/pki`.
pub fn write(dir: &Path) -> Result<Pki, RealError> {
    let pki_dir = dir.join("pki");
    std::fs::create_dir_all(&pki_dir).map_err(|e| RealError::io(&pki_dir, e))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mmf-e2e control plane CA (tests only)");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(tls)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut serving = CertificateParams::new(
        [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(String::from)
        .to_vec(),
    )
    .map_err(tls)?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    serving
        .distinguished_name
        .push(DnType::CommonName, "mmf-e2e control plane");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_key = KeyPair::generate().map_err(tls)?;
    let serving_cert = serving.signed_by(&serving_key, &issuer).map_err(tls)?;

    let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    admin.distinguished_name.push(DnType::CommonName, "admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_key = KeyPair::generate().map_err(tls)?;
    let admin_cert = admin.signed_by(&admin_key, &issuer).map_err(tls)?;

    let sa_key = KeyPair::generate().map_err(tls)?;

    let pki = Pki {
        ca_cert: pki_dir.join("ca.crt"),
        ca_key: pki_dir.join("ca.key"),
        serving_cert: pki_dir.join("serving.crt"),
        serving_key: pki_dir.join("serving.key"),
        admin_cert: pki_dir.join("admin.crt"),
        admin_key: pki_dir.join("admin.key"),
        sa_key: pki_dir.join("sa.key"),
        sa_pub: pki_dir.join("sa.pub"),
    };
    for (path, contents) in [
        (&pki.ca_cert, ca_pem),
        (&pki.ca_key, ca_key_pem),
        (&pki.serving_cert, serving_cert.pem()),
        (&pki.serving_key, serving_key.serialize_pem()),
        (&pki.admin_cert, admin_cert.pem()),
        (&pki.admin_key, admin_key.serialize_pem()),
        (&pki.sa_key, sa_key.serialize_pem()),
        (&pki.sa_pub, sa_key.public_key_pem()),
    ] {
        std::fs::write(path, contents).map_err(|e| RealError::io(path, e))?;
    }
    Ok(pki)
}

fn tls(e: rcgen::Error) -> RealError {
    RealError::Pki(e.to_string())
}
