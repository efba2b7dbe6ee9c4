//! Webhook latency at a fixed request rate, beside a bare TLS echo server measured in the same
//! run (same rustls configuration, same axum-server, same client, same body), so the figure
//! that matters is the ratio: what policy evaluation adds on top of TLS + HTTP.
//!
//!     cargo bench --bench webhook
//!
//! `MMF_BENCH_RATE` (requests per second, default 200, at most 2000) and `MMF_BENCH_SECONDS`
//! (default 10, at most 60) change the load. Loopback only; stops by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::SharedConfig;
use mmf_operator::config::load_dir;
use mmf_operator::webhook::certs::{issue_all, serving_names};
use mmf_operator::webhook::tls::{CertCell, certified_key, server_config};
use mmf_operator::webhook::{
    AdmissionMetrics, CONFIGURATION_NAME, DEFAULT_SERVICE_NAME, TlsSource, WebhookHealth,
    WebhookOptions, serve_on,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::sync::{Mutex, Semaphore};

/// Connections each client keeps open (HTTP/1.1, one request in flight per connection).
const CONNECTIONS: usize = 16;

fn env_number(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

async fn connect(addr: SocketAddr, ca_pem: &str) -> SendRequest<Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// Open-loop load: one request every `1/rate` s for `seconds`, latency measured from the
/// scheduled send time (so a stalled server cannot hide its queue).
async fn measure(
    addr: SocketAddr,
    ca_pem: &str,
    path: &'static str,
    body: Bytes,
    rate: u64,
    seconds: u64,
) -> (Vec<Duration>, usize) {
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        senders.push(connect(addr, ca_pem).await);
    }
    let pool = Arc::new(Mutex::new(senders));
    let permits = Arc::new(Semaphore::new(CONNECTIONS));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let (pool, permits, body) = (pool.clone(), permits.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let mut sender = pool.lock().await.pop().unwrap();
            let request = hyper::Request::post(path)
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .body(Full::new(body))
                .unwrap();
            let ok = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    response.into_body().collect().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            };
            let latency = scheduled.elapsed();
            pool.lock().await.push(sender);
            (latency, ok)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        latencies.push(latency);
        if !ok {
            failures += 1;
        }
    }
    latencies.sort();
    (latencies, failures)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The policy decision alone, in a loop on this thread: what the webhook adds, without I/O.
fn decision_only(config_dir: &Path, body: &[u8], iterations: usize) -> Vec<Duration> {
    use kube::core::DynamicObject;
    use kube::core::admission::{AdmissionRequest, AdmissionReview};
    let config = load_dir(config_dir).unwrap();
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).unwrap();
    let request: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
    let mut latencies = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let verdict = mmf_operator::webhook::decide(
            &request,
            &config,
            "development",
            &StaticView::new().every_namespace_in("production"),
        );
        latencies.push(started.elapsed());
        assert!(verdict.allowed);
    }
    latencies.sort();
    latencies
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let rate = env_number("MMF_BENCH_RATE", 200, 2000);
    let seconds = env_number("MMF_BENCH_SECONDS", 10, 60);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = serving_names(DEFAULT_SERVICE_NAME, "mmf-system", Some("127.0.0.1"));
    let bundle = issue_all(&names, time::OffsetDateTime::now_utc()).unwrap();
    let body = Bytes::from(
        std::fs::read(root.join("tests/data/admission/plugin-create-compliant.json")).unwrap(),
    );

    // The webhook, through the same entry point `mmf run` uses (mounted-files TLS, so no API
    // server is needed; with no ca.crt and no URL it publishes nothing).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &bundle.tls_cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), &bundle.tls_key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let webhook_addr = listener.local_addr().unwrap();
    let options = WebhookOptions {
        addr: webhook_addr,
        tls: TlsSource::Files {
            cert_dir: dir.path().to_owned(),
        },
        webhook_url: None,
        cert_hosts: Vec::new(),
        configuration_name: CONFIGURATION_NAME.to_owned(),
        namespace: "mmf-system".to_owned(),
        service_name: DEFAULT_SERVICE_NAME.to_owned(),
        secret_name: "unused".to_owned(),
        fail_closed_environments: vec!["production".to_owned()],
        unlabelled_fail_closed: false,
    };
    let client =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:9".parse().unwrap())).unwrap();
    let config = load_dir(&root.join("config")).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let webhook = tokio::spawn(serve_on(
        listener,
        options,
        Arc::new(SharedConfig::new(config, "development")),
        Arc::new(StaticView::new().every_namespace_in("production")),
        client,
        AdmissionMetrics::unregistered(),
        WebhookHealth::new(),
        async move {
            let _ = stopped.await;
        },
    ));

    // The baseline: same rustls configuration and certificate, same axum-server, echoing the body.
    let cell = Arc::new(CertCell::default());
    cell.store(certified_key(bundle.tls_cert.as_bytes(), bundle.tls_key.as_bytes()).unwrap());
    let echo_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    echo_listener.set_nonblocking(true).unwrap();
    let echo_addr = echo_listener.local_addr().unwrap();
    let echo_app = Router::new().route("/echo", post(|body: Bytes| async move { body }));
    let echo_handle = axum_server::Handle::<SocketAddr>::new();
    let echo = tokio::spawn(
        axum_server::from_tcp_rustls(
            echo_listener,
            RustlsConfig::from_config(server_config(cell).unwrap()),
        )
        .unwrap()
        .handle(echo_handle.clone())
        .serve(echo_app.into_make_service()),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!(
        "webhook benchmark: {rate} req/s for {seconds} s each, {CONNECTIONS} keep-alive HTTP/1.1 connections, body {} bytes (signed MmfPlugin CREATE into production)",
        body.len()
    );
    // Warm-up of both (connection set-up, allocator, lazy statics), not measured.
    measure(echo_addr, &bundle.ca_cert, "/echo", body.clone(), rate, 1).await;
    measure(
        webhook_addr,
        &bundle.ca_cert,
        "/validate",
        body.clone(),
        rate,
        1,
    )
    .await;

    let started = Instant::now();
    let (echo_lat, echo_fail) = measure(
        echo_addr,
        &bundle.ca_cert,
        "/echo",
        body.clone(),
        rate,
        seconds,
    )
    .await;
    let (hook_lat, hook_fail) = measure(
        webhook_addr,
        &bundle.ca_cert,
        "/validate",
        body.clone(),
        rate,
        seconds,
    )
    .await;
    let row = |name: &str, lat: &[Duration], failures: usize| {
        println!(
            "{name:<16} n={:<6} failures={failures:<3} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
            lat.len(),
            ms(percentile(lat, 0.50)),
            ms(percentile(lat, 0.99)),
            ms(percentile(lat, 1.0)),
        )
    };
    row("tls-echo", &echo_lat, echo_fail);
    row("webhook", &hook_lat, hook_fail);
    let decision = decision_only(&root.join("config"), &body, (rate * seconds) as usize);
    row("decide() only", &decision, 0);
    println!(
        "ratio webhook/echo: p50 {:.2}x  p99 {:.2}x  (measured in {:.1} s)",
        ms(percentile(&hook_lat, 0.50)) / ms(percentile(&echo_lat, 0.50)),
        ms(percentile(&hook_lat, 0.99)) / ms(percentile(&echo_lat, 0.99)),
        started.elapsed().as_secs_f64()
    );

    stop.send(()).unwrap();
    echo_handle.graceful_shutdown(Some(Duration::from_secs(1)));
    let _ = webhook.await;
    let _ = echo.await;
}
