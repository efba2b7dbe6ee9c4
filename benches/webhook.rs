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
use mmf_e2e::load::{CONNECTIONS, Load, Measured, open_loop};
use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::SharedConfig;
use mmf_operator::config::load_dir;
use mmf_operator::webhook::certs::{issue_all, serving_names};
use mmf_operator::webhook::tls::{CertCell, certified_key, server_config};
use mmf_operator::webhook::{
    AdmissionMetrics, CONFIGURATION_NAME, DEFAULT_SERVICE_NAME, TlsSource, WebhookHealth,
    WebhookOptions, serve_on,
};

fn env_number(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The policy decision alone, in a loop on this thread: what the webhook adds, without I/O.
fn decision_only(config_dir: &Path, body: &[u8], iterations: usize) -> Measured {
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
    Measured {
        latencies,
        failures: 0,
    }
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
    let bundle = issue_all(&names, time::OffsetDateTime::now_utc(), Default::default()).unwrap();
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
        lifetimes: Default::default(),
        check_interval: mmf_operator::webhook::MAINTENANCE_INTERVAL,
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
    let echo_load = Load {
        addr: echo_addr,
        ca_pem: &bundle.ca_cert,
        path: "/echo",
        body: body.clone(),
        rate,
        duration: Duration::from_secs(seconds),
    };
    let webhook_load = Load {
        addr: webhook_addr,
        path: "/validate",
        ..echo_load.clone()
    };
    // Warm-up of both (connection set-up, allocator, lazy statics), not measured.
    for load in [&echo_load, &webhook_load] {
        let warm_up = Load {
            duration: Duration::from_secs(1),
            ..load.clone()
        };
        open_loop(&warm_up).await.unwrap();
    }

    let started = Instant::now();
    let echoed = open_loop(&echo_load).await.unwrap();
    let admitted = open_loop(&webhook_load).await.unwrap();
    let row = |name: &str, measured: &Measured| {
        println!(
            "{name:<16} n={:<6} failures={:<3} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
            measured.latencies.len(),
            measured.failures,
            ms(measured.percentile(0.50)),
            ms(measured.percentile(0.99)),
            ms(measured.percentile(1.0)),
        )
    };
    row("tls-echo", &echoed);
    row("webhook", &admitted);
    let decision = decision_only(&root.join("config"), &body, (rate * seconds) as usize);
    row("decide() only", &decision);
    println!(
        "ratio webhook/echo: p50 {:.2}x  p99 {:.2}x  (measured in {:.1} s)",
        ms(admitted.percentile(0.50)) / ms(echoed.percentile(0.50)),
        ms(admitted.percentile(0.99)) / ms(echoed.percentile(0.99)),
        started.elapsed().as_secs_f64()
    );

    stop.send(()).unwrap();
    echo_handle.graceful_shutdown(Some(Duration::from_secs(1)));
    let _ = webhook.await;
    let _ = echo.await;
}
