//! Certificate rotation under load: the operator's self-managed webhook CA and serving
//! certificate rotate (lifetimes of seconds instead of years) while 50 clients keep applying
//! MmfServices in a fail-closed production namespace. Every admission succeeds, the new CA is
//! published in `caBundle` beside the old one before anything it signed is served, the old CA
//! leaves the bundle once it has expired, and readiness stays true throughout. A `caBundle`
//! overwritten by someone else is published again at once, and readiness is false while the
//! live bundle does not hold the served certificate's CA.
//!
//! Runs on the in-memory test API server and, in `.ci/test`'s second pass, against the real
//! kube-apiserver (which calls the webhook by URL and reads `caBundle` from its own watch).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::real::DeleteOnDrop;
use common::{Cluster, Operator, eventually, free_port, operator_args, repo, require_tool};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use mmf_operator::api::MmfService;
use mmf_operator::webhook::certs::{CertInfo, issue_all, serving_names};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

const CLIENTS: usize = 50;
/// Lifetimes that make a whole rotation last about a minute: the CA is replaced 40 s after it
/// was made and expires at 60 s; the serving certificate is re-issued every 8 s.
const CA_VALIDITY: &str = "60s";
const CERT_VALIDITY: &str = "12s";
/// Each client applies its MmfService this often.
const CLIENT_PAUSE: Duration = Duration::from_millis(500);

/// The operator with the webhook on a free port, its own configuration and Secret; the
/// configuration is deleted when the returned guard drops (after the operator stops).
struct Webhook<'a> {
    operator: Operator,
    addr: SocketAddr,
    configuration: String,
    secret: String,
    _cleanup: DeleteOnDrop<'a>,
}

fn start_webhook<'a>(cluster: &'a Cluster, name: &str, extra: &[&str]) -> Webhook<'a> {
    let port = free_port();
    let configuration = format!("mmf-{name}-{}", std::process::id());
    let secret = format!("mmf-{name}-tls-{}", std::process::id());
    let cleanup = DeleteOnDrop {
        cluster,
        objects: vec![
            format!("validatingwebhookconfiguration/{configuration}"),
            format!("secret/{secret}"),
        ],
    };
    let addr = format!("127.0.0.1:{port}");
    let url = format!("https://{addr}/validate");
    let mut args: Vec<&str> = vec![
        "--leader-election=false",
        "--webhook-addr",
        &addr,
        "--webhook-url",
        &url,
        "--webhook-configuration",
        &configuration,
        "--webhook-secret",
        &secret,
    ];
    args.extend(extra);
    let operator = cluster.operator_with(&operator_args(&args), &[]);
    Webhook {
        operator,
        addr: addr.parse().unwrap(),
        configuration,
        secret,
        _cleanup: cleanup,
    }
}

/// HTTP status of the operator's probe endpoint `path`, None when it does not answer.
fn probe(port: u16, path: &str) -> Option<u16> {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|&code| code != 0)
}

/// The live `caBundle` of every webhook of `configuration` (base64, as stored), via kubectl.
fn live_bundle_text(cluster: &Cluster, configuration: &str) -> String {
    cluster.kubectl_ok(&[
        "get",
        "validatingwebhookconfiguration",
        configuration,
        "-o",
        "jsonpath={.webhooks[*].clientConfig.caBundle}",
    ])
}

/// The MmfService client `index` applies, with `round` in an annotation so every apply is an
/// UPDATE the webhook reviews.
fn load_service(index: usize, round: u64) -> serde_json::Value {
    json!({
        "apiVersion": "mmf.marty.dev/v1alpha1",
        "kind": "MmfService",
        "metadata": {
            "name": format!("load-{index}"),
            "annotations": {"rotation.test/round": round.to_string()},
        },
        "spec": {
            "image": "ghcr.io/marty-framework/services/payment-service@sha256:ba7e79489a0523530b9de3353136ef1e2cdb1861ef36be0b4e75fcdad57d2dba",
            "replicas": 1,
            "type": "fastapi",
            "port": 8080,
            "plugins": [{"name": "production-payment", "priority": 100, "config": {"currency": "EUR"}}],
            "resources": {
                "requests": {"memory": "128Mi", "cpu": "100m"},
                "limits": {"memory": "256Mi", "cpu": "300m"},
            },
        },
    })
}

/// Applies load-`index` every [`CLIENT_PAUSE`] until `stop`; returns (admitted, failures).
async fn client(api: Api<MmfService>, index: usize, stop: Arc<AtomicBool>) -> (u64, Vec<String>) {
    let params = PatchParams::apply(&format!("rotation-client-{index}")).force();
    let (mut admitted, mut failures) = (0, Vec::new());
    let mut round = 0;
    while !stop.load(Ordering::Acquire) {
        round += 1;
        let name = format!("load-{index}");
        match api
            .patch(&name, &params, &Patch::Apply(load_service(index, round)))
            .await
        {
            Ok(_) => admitted += 1,
            Err(error) => failures.push(format!("{name} round {round}: {error}")),
        }
        tokio::time::sleep(CLIENT_PAUSE).await;
    }
    (admitted, failures)
}

/// The certificates of a PEM bundle, in order.
fn certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|cert| cert.to_vec())
        .collect()
}

/// The live `caBundle` (of the first webhook; the operator writes the same into each).
async fn live_bundle(api: &Api<ValidatingWebhookConfiguration>, name: &str) -> Vec<u8> {
    let live = api.get(name).await.unwrap();
    let webhooks = live.webhooks.unwrap_or_default();
    let bundles: BTreeSet<Vec<u8>> = webhooks
        .iter()
        .map(|w| w.client_config.ca_bundle.clone().unwrap_or_default().0)
        .collect();
    assert_eq!(bundles.len(), 1, "webhooks with different caBundles");
    bundles.into_iter().next().unwrap()
}

/// A TLS handshake with the webhook trusting only `bundle`, as the API server makes it:
/// the served certificate (DER) when it verifies, else the error.
async fn handshake(addr: SocketAddr, bundle: &[u8]) -> Result<Vec<u8>, String> {
    let config = mmf_e2e::tls::client_config_for_bundle(bundle).map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.to_vec())
        .ok_or_else(|| "no certificate served".to_owned())
}

/// What the observer saw while the clients ran.
#[derive(Debug, Default)]
struct Observed {
    /// Distinct CA certificates the Secret held, in order of appearance.
    secret_cas: Vec<Vec<u8>>,
    /// Distinct `caBundle`s (as lists of certificates), in order of appearance.
    bundles: Vec<Vec<Vec<u8>>>,
    /// Distinct served certificates, in order of appearance.
    served: Vec<Vec<u8>>,
    handshakes: u64,
    handshake_failures: Vec<String>,
}

fn push_new<T: PartialEq>(seen: &mut Vec<T>, item: T) {
    if seen.last() != Some(&item) {
        seen.push(item);
    }
}

#[test]
fn the_ca_and_serving_certificate_rotate_under_50_clients_without_a_failed_admission() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("rotation", "production");
    let webhook = start_webhook(
        &cluster,
        "rotation",
        &[
            "--webhook-ca-validity",
            CA_VALIDITY,
            "--webhook-cert-validity",
            CERT_VALIDITY,
            "--webhook-cert-check-interval",
            "1s",
        ],
    );
    let started = Instant::now();
    // The signed example plugin, which the load's services load; then proof that the webhook is
    // consulted and fails closed here: an unsigned copy is denied.
    let example = repo().join("plugins/production_payment_service/plugin.yaml");
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &example.display().to_string(),
    ]);
    let signed = std::fs::read_to_string(&example).unwrap();
    let unsigned = signed[..signed.find("  signature:").unwrap()]
        .replace("name: production-payment", "name: unsigned-payment");
    let (ok, _, stderr) = cluster.kubectl_input(&["apply", "-n", &namespace, "-f", "-"], &unsigned);
    assert!(
        !ok && stderr.contains("spec.signature is missing"),
        "{stderr}"
    );

    // Readiness, polled from a thread of its own (curl) while the clients run.
    let stop = Arc::new(AtomicBool::new(false));
    let readiness = {
        let stop = stop.clone();
        let port = webhook.operator.probe_port;
        std::thread::spawn(move || {
            let (mut polls, mut not_ready) = (0u64, Vec::new());
            while !stop.load(Ordering::Acquire) {
                let probe = probe(port, "/readyz");
                polls += 1;
                if probe != Some(200) {
                    not_ready.push(format!(
                        "{:.1} s: {probe:?}",
                        started.elapsed().as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (polls, not_ready)
        })
    };

    let client_handle = cluster.client();
    let (admitted, failures, observed) = cluster.block_on(async {
        let services: Api<MmfService> = Api::namespaced(client_handle.clone(), &namespace);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|index| tokio::spawn(client(services.clone(), index, stop.clone())))
            .collect();
        let secrets: Api<Secret> = Api::namespaced(client_handle.clone(), "default");
        let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client_handle.clone());
        let mut observed = Observed::default();
        let deadline = Instant::now() + Duration::from_secs(100);
        let mut finished_at = None;
        // Until the old CA has left caBundle, and 3 s more of load after that.
        while finished_at.is_none_or(|at: Instant| at.elapsed() < Duration::from_secs(3)) {
            assert!(
                Instant::now() < deadline,
                "no full rotation in 100 s: {observed:?}"
            );
            let secret = secrets.get(&webhook.secret).await.unwrap();
            let ca = secret.data.unwrap_or_default()["ca.crt"].0.clone();
            push_new(&mut observed.secret_cas, certificates(&ca).remove(0));
            let bundle = live_bundle(&configurations, &webhook.configuration).await;
            let certs = certificates(&bundle);
            observed.handshakes += 1;
            match handshake(webhook.addr, &bundle).await {
                Ok(served) => push_new(&mut observed.served, served),
                Err(error) => observed
                    .handshake_failures
                    .push(format!("{:.1} s: {error}", started.elapsed().as_secs_f64())),
            }
            let rotated_and_dropped =
                certs.len() == 1 && observed.bundles.iter().any(|b| b.len() == 2);
            push_new(&mut observed.bundles, certs);
            if rotated_and_dropped && finished_at.is_none() {
                finished_at = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::Release);
        let (mut admitted, mut failures) = (0, Vec::new());
        for handle in clients {
            let (ok, failed) = handle.await.unwrap();
            admitted += ok;
            failures.extend(failed);
        }
        (admitted, failures, observed)
    });
    let (polls, not_ready) = readiness.join().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "figure: {admitted} admissions by {CLIENTS} clients in {elapsed:.1} s, {} failed; {} handshakes trusting the live caBundle, {} failed; {polls} readiness polls, {} not ready",
        failures.len(),
        observed.handshakes,
        observed.handshake_failures.len(),
        not_ready.len()
    );
    println!(
        "figure: CAs in the Secret {}, caBundles published {:?} (certificates in each), certificates served {}",
        observed.secret_cas.len(),
        observed.bundles.iter().map(Vec::len).collect::<Vec<_>>(),
        observed.served.len()
    );
    let log = webhook.operator.log_text();
    let upkeep: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("webhook") && !line.contains("reconcile"))
        .collect();
    let first = |all: &[String]| all.iter().take(3).cloned().collect::<Vec<_>>();
    assert!(
        failures.is_empty() && observed.handshake_failures.is_empty() && not_ready.is_empty(),
        "failed admissions {} (first: {:?}); failed handshakes {:?}; not ready {:?}; the operator's certificate upkeep:\n{}",
        failures.len(),
        first(&failures),
        first(&observed.handshake_failures),
        first(&not_ready),
        upkeep.join("\n")
    );
    assert!(admitted > 0);

    // One rotation: CA A, then B; caBundle [A], then [B, A], then [B].
    let [a, b] = &observed.secret_cas[..] else {
        panic!(
            "CAs seen in the Secret: {}\n{}",
            observed.secret_cas.len(),
            upkeep.join("\n")
        );
    };
    assert_eq!(
        observed.bundles,
        vec![vec![a.clone()], vec![b.clone(), a.clone()], vec![b.clone()]],
        "{}",
        upkeep.join("\n")
    );
    // Served: certificates of A (re-issued every 8 s), then of B only; the first of B only
    // after B had been published.
    let issuers: Vec<Vec<u8>> = observed
        .served
        .iter()
        .map(|leaf| CertInfo::from_der(leaf, "served").unwrap().issuer)
        .collect();
    let subject = |ca: &[u8]| CertInfo::from_der(ca, "ca").unwrap().subject;
    let switch = issuers.iter().position(|i| *i == subject(b)).unwrap();
    assert!(switch >= 2, "{issuers:?}");
    assert!(issuers[..switch].iter().all(|i| *i == subject(a)));
    assert!(issuers[switch..].iter().all(|i| *i == subject(b)));
    assert!(
        log.contains("serving the certificate of the new webhook CA"),
        "{}",
        upkeep.join("\n")
    );
}

#[test]
fn a_ca_bundle_overwritten_by_someone_else_is_published_again_at_once_and_unready_meanwhile() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    // The default check interval (60 s): only the watch on the configuration can be this quick.
    let webhook = start_webhook(&cluster, "clobber", &[]);
    let ours = live_bundle_text(&cluster, &webhook.configuration);
    let names = serving_names("other", "default", None);
    let foreign = issue_all(&names, time::OffsetDateTime::now_utc(), Default::default())
        .unwrap()
        .ca_bundle();
    let ready = |operator: &Operator| probe(operator.probe_port, "/readyz") == Some(200);
    let overwrite = || {
        // An update (PUT), as a GitOps tool re-applying a stale copy would make.
        let mut live: serde_json::Value = serde_json::from_str(&cluster.kubectl_ok(&[
            "get",
            "validatingwebhookconfiguration",
            &webhook.configuration,
            "-o",
            "json",
        ]))
        .unwrap();
        for hook in live["webhooks"].as_array_mut().unwrap() {
            hook["clientConfig"]["caBundle"] = json!(base64_encode(foreign.as_bytes()));
        }
        let (ok, _, stderr) = cluster.kubectl_input(&["replace", "-f", "-"], &live.to_string());
        assert!(ok, "{stderr}");
    };

    // While the operator cannot publish (the in-memory server fails its patches), the
    // overwritten bundle keeps it unready; once it can, it publishes and is ready again.
    if let Some(server) = &cluster.server {
        server.faults().error_rate(
            Some("patch"),
            Some("validatingwebhookconfigurations"),
            1.0,
            500,
        );
        overwrite();
        assert!(
            eventually(Duration::from_secs(3), || !ready(&webhook.operator)),
            "{}",
            webhook.operator.log_text()
        );
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            !ready(&webhook.operator),
            "ready while caBundle does not hold its CA"
        );
        server.faults().clear();
        let healed = Instant::now();
        assert!(eventually(Duration::from_secs(10), || ready(
            &webhook.operator
        )));
        println!(
            "figure: unready while the overwritten caBundle could not be repaired; ready {:.1} s after it could",
            healed.elapsed().as_secs_f64()
        );
        assert_eq!(live_bundle_text(&cluster, &webhook.configuration), ours);
    }

    // Republished at once, well within the 60 s check interval.
    overwrite();
    let overwritten = Instant::now();
    let restored = eventually(Duration::from_secs(5), || {
        live_bundle_text(&cluster, &webhook.configuration) == ours
    });
    assert!(restored, "{}", webhook.operator.log_text());
    println!(
        "figure: overwritten caBundle published again after {:.2} s",
        overwritten.elapsed().as_secs_f64()
    );
    assert!(eventually(Duration::from_secs(3), || ready(
        &webhook.operator
    )));
    assert!(
        webhook
            .operator
            .log_text()
            .contains("the live caBundle does not hold the CA of the served certificate")
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
