//! The webhook scenario: what admission through mmf's validating webhook costs.
//!
//! Two tables from one run. **Direct**: AdmissionReviews posted to the operator's webhook at
//! fixed rates, beside a bare TLS echo server (same client, same body, same rates). **Through
//! the API server**: 50 clients creating MmfPlugins while the operator runs without its
//! webhook, then the same creates with the webhook registered (the operator reconciling in
//! both), so the ratio is what admission adds to a user's `kubectl apply`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::{DynamicObject, PostParams};
use mmf_e2e::load::{Load, Measured, TlsEcho, open_loop};
use mmf_e2e::tls::TestCa;

use crate::cluster::{Cluster, repo};
use crate::operator::{Operator, free_port};
use crate::report::{Table, millis, ratio};
use crate::scenarios::{BenchError, Setup};
use crate::workload::{Workload, plugin_resource};

/// The ValidatingWebhookConfiguration `mmf run` publishes by default.
const CONFIGURATION: &str = "mmf-operator";
/// Concurrent clients of the through-the-API-server table.
const CLIENTS: usize = 50;

/// Runs both tables: direct at each of `rates` (requests/s) for `seconds` each, and `creates`
/// MmfPlugin creates through the API server per side.
pub async fn webhook(
    setup: &Setup,
    rates: &[u64],
    seconds: u64,
    creates: usize,
) -> Result<(), BenchError> {
    let cluster = Cluster::start(setup.server, "webhook").await?;
    let namespace = "bench-webhook";
    cluster.namespace(namespace, "development").await?;

    // Without the webhook: the operator reconciles what is created, nothing is admitted by it.
    let operator = Operator::start(&setup.mmf, setup.concurrency, &cluster, "no-webhook")?;
    let without = create_plugins(&cluster, namespace, "plain", creates).await?;
    operator.stop()?;

    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let url = format!("https://{addr}/validate");
    let operator = Operator::start_with(
        &setup.mmf,
        setup.concurrency,
        &cluster,
        "webhook",
        &["--webhook-addr", &addr, "--webhook-url", &url],
    )?;
    let ca_pem = published_ca(&cluster).await?;
    let with = create_plugins(&cluster, namespace, "admitted", creates).await?;

    let mut table = Table::new(
        format!(
            "webhook through the API server: {creates} MmfPlugin creates by {CLIENTS} clients, each side"
        ),
        &["side", "creates", "failures", "p50", "p99", "max"],
    );
    for (side, measured) in [("no webhook", &without), ("webhook", &with)] {
        table.row(row(side, measured));
    }
    table.footer(format!(
        "ratio webhook/no webhook: p50 {}  p99 {}",
        ratio(ms(with.percentile(0.5)), ms(without.percentile(0.5))),
        ratio(ms(with.percentile(0.99)), ms(without.percentile(0.99)))
    ));
    table.print();

    let body = review_body()?;
    let ca = TestCa::new().map_err(|e| BenchError::Server(e.to_string()))?;
    let cert = ca
        .issue(&[])
        .map_err(|e| BenchError::Server(e.to_string()))?;
    let echo = TlsEcho::start(&cert.cert_pem, &cert.key_pem)
        .await
        .map_err(|e| BenchError::Server(e.to_string()))?;
    let webhook_addr = addr
        .parse()
        .map_err(|e| BenchError::Input(format!("{addr}: {e}")))?;
    let duration = Duration::from_secs(seconds.max(1));
    for &rate in rates {
        let echo_load = Load {
            addr: echo.addr,
            ca_pem: ca.cert_pem(),
            path: "/echo",
            body: body.clone(),
            rate,
            duration,
        };
        let webhook_load = Load {
            addr: webhook_addr,
            ca_pem: &ca_pem,
            path: "/validate",
            ..echo_load.clone()
        };
        // Warm-up of both (connections, allocator, verdict cache), not measured.
        for load in [&echo_load, &webhook_load] {
            measure(&Load {
                duration: Duration::from_secs(1),
                ..load.clone()
            })
            .await?;
        }
        let echoed = measure(&echo_load).await?;
        let admitted = measure(&webhook_load).await?;
        let mut table = Table::new(
            format!(
                "webhook direct: {rate} AdmissionReviews/s for {seconds} s, {} connections, body {} bytes",
                mmf_e2e::load::CONNECTIONS,
                body.len()
            ),
            &["server", "requests", "failures", "p50", "p99", "max"],
        );
        table.row(row("tls echo", &echoed));
        table.row(row("mmf webhook", &admitted));
        table.footer(format!(
            "ratio webhook/echo at {rate}/s: p50 {}  p99 {}",
            ratio(ms(admitted.percentile(0.5)), ms(echoed.percentile(0.5))),
            ratio(ms(admitted.percentile(0.99)), ms(echoed.percentile(0.99)))
        ));
        table.print();
    }
    operator.stop()?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(side: &str, measured: &Measured) -> Vec<String> {
    vec![
        side.to_owned(),
        measured.latencies.len().to_string(),
        measured.failures.to_string(),
        millis(measured.percentile(0.5)),
        millis(measured.percentile(0.99)),
        millis(measured.percentile(1.0)),
    ]
}

async fn measure(load: &Load<'_>) -> Result<Measured, BenchError> {
    open_loop(load)
        .await
        .map_err(|e| BenchError::Server(format!("loading {}: {e}", load.addr)))
}

/// A compliant MmfPlugin CREATE review, the body the API server sends for `kubectl apply`.
fn review_body() -> Result<Bytes, BenchError> {
    let path = repo().join("tests/data/admission/plugin-create-compliant.json");
    std::fs::read(&path)
        .map(Bytes::from)
        .map_err(|e| BenchError::io(&path, e))
}

/// Waits for the operator's ValidatingWebhookConfiguration and returns its CA bundle (PEM).
async fn published_ca(cluster: &Cluster) -> Result<String, BenchError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(cluster.client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let configuration = api
            .get_opt(CONFIGURATION)
            .await
            .map_err(|e| BenchError::api(format!("reading {CONFIGURATION}"), e))?;
        let bundle = configuration
            .and_then(|c| c.webhooks?.into_iter().next()?.client_config.ca_bundle)
            .filter(|b| !b.0.is_empty());
        if let Some(bundle) = bundle {
            // ByteString holds the decoded bytes: the PEM itself.
            return String::from_utf8(bundle.0)
                .map_err(|_| BenchError::Input(format!("{CONFIGURATION}'s caBundle is not PEM")));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!(
                "the operator to publish {CONFIGURATION}'s caBundle"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `count` MmfPlugins named `<prefix>-<i>` by [`CLIENTS`] clients, each create timed.
async fn create_plugins(
    cluster: &Cluster,
    namespace: &str,
    prefix: &str,
    count: usize,
) -> Result<Measured, BenchError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), namespace, &plugin_resource());
    let results: Vec<(Duration, bool)> = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let object = Workload::plugin_object(namespace, &format!("{prefix}-{i}"), i);
            async move {
                let Ok(object) = serde_json::from_value::<DynamicObject>(object) else {
                    return (Duration::ZERO, false);
                };
                let started = Instant::now();
                let ok = api.create(&PostParams::default(), &object).await.is_ok();
                (started.elapsed(), ok)
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let mut measured = Measured::default();
    for (latency, ok) in results {
        measured.latencies.push(latency);
        measured.failures += usize::from(!ok);
    }
    measured.latencies.sort();
    Ok(measured)
}
