//! Certificates from a mounted directory: kubelet updates a Secret volume by swapping the
//! `..data` symlink, and the next TLS handshake must present the new certificate without a
//! restart (policy-server's rotation test, extended to the symlink swap).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::SharedConfig;
use mmf_operator::config::load_dir;
use mmf_operator::webhook::certs::{issue_all, serving_names};
use mmf_operator::webhook::{
    AdmissionMetrics, CONFIGURATION_NAME, DEFAULT_SECRET_NAME, DEFAULT_SERVICE_NAME, TlsSource,
    WebhookHealth, WebhookOptions, serve_on,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use time::OffsetDateTime;

/// Writes a kubelet-style projection: `..<version>/` with the files, `..data` pointing at
/// it, and `tls.crt`/`tls.key`/`ca.crt` pointing through `..data`.
fn project(dir: &Path, version: &str, cert: &str, key: &str, ca: &str) {
    let data = dir.join(format!("..{version}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    std::fs::write(data.join("ca.crt"), ca).unwrap();
    let tmp = dir.join("..data_tmp");
    symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        if !dir.join(file).exists() {
            symlink(format!("..data/{file}"), dir.join(file)).unwrap();
        }
    }
}

/// Connects trusting `ca_pem` and returns the certificate the server presented.
async fn served_certificate(addr: std::net::SocketAddr, ca_pem: &str) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn a_swapped_data_symlink_is_served_on_the_next_handshake() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let names = serving_names(DEFAULT_SERVICE_NAME, "mmf-system", Some("127.0.0.1"));
    let now = OffsetDateTime::now_utc();
    let first = issue_all(&names, now, Default::default()).unwrap();
    let second = issue_all(&names, now, Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "2026_11_25_12_00_00.1",
        &first.tls_cert,
        &first.tls_key,
        &first.ca_cert,
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let config = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config")).unwrap();
    let options = WebhookOptions {
        addr,
        tls: TlsSource::Files {
            cert_dir: dir.path().to_owned(),
        },
        webhook_url: None,
        cert_hosts: Vec::new(),
        configuration_name: CONFIGURATION_NAME.to_owned(),
        namespace: "mmf-system".to_owned(),
        service_name: DEFAULT_SERVICE_NAME.to_owned(),
        secret_name: DEFAULT_SECRET_NAME.to_owned(),
        fail_closed_environments: vec!["production".to_owned()],
        unlabelled_fail_closed: false,
        lifetimes: Default::default(),
        check_interval: mmf_operator::webhook::MAINTENANCE_INTERVAL,
    };
    // Nothing listens here: publishing the caBundle fails and readiness says so.
    let client =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:9".parse().unwrap())).unwrap();
    let health = WebhookHealth::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        options,
        Arc::new(SharedConfig::new(config, "development")),
        Arc::new(StaticView::new()),
        client,
        AdmissionMetrics::unregistered(),
        health.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let first_der = CertificateDer::from_pem_slice(first.tls_cert.as_bytes()).unwrap();
    let second_der = CertificateDer::from_pem_slice(second.tls_cert.as_bytes()).unwrap();
    let mut served = None;
    for _ in 0..50 {
        if let Ok(cert) = tokio::time::timeout(
            Duration::from_millis(500),
            served_certificate(addr, &first.ca_cert),
        )
        .await
        {
            served = Some(cert);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, Some(first_der));
    assert!(
        !health.is_ready(),
        "ca.crt is mounted but was never published"
    );

    project(
        dir.path(),
        "2026_11_25_13_00_00.2",
        &second.tls_cert,
        &second.tls_key,
        &second.ca_cert,
    );
    let mut now_served = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let cert = served_certificate(addr, &format!("{}{}", first.ca_cert, second.ca_cert)).await;
        if cert == second_der {
            now_served = Some(cert);
            break;
        }
    }
    assert_eq!(
        now_served,
        Some(second_der),
        "the new certificate was never served"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
