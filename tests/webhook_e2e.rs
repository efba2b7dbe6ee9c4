//! The webhook end to end: the in-memory API server calls it over TLS (trusting the
//! `caBundle` the operator published) and real kubectl shows the user what it decided.
//!
//! Environments: `prod` is labelled production (the shipped production.yaml); `dev` is labelled
//! development, but the shipped development.yaml checks neither signatures, digests nor limits,
//! so here development is production's rules in lenient mode, to show the warnings a lenient
//! environment returns for the same objects.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use mmf_e2e::TestApiServer;
use mmf_operator::api::MmfPlugin;
use mmf_operator::cluster_view::ClusterView;
use mmf_operator::config::ConfigSet;
use mmf_operator::config::SharedConfig;
use mmf_operator::webhook::configuration::{LENIENT_WEBHOOK, STRICT_WEBHOOK, trusts};
use mmf_operator::webhook::{
    AdmissionMetrics, CONFIGURATION_NAME, DEFAULT_SECRET_NAME, DEFAULT_SERVICE_NAME, TlsSource,
    WebhookHealth, WebhookOptions, serve_on,
};

fn kubectl_path() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("KUBECTL") {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from("/usr/bin/kubectl");
    default.is_file().then_some(default)
}

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Shipped base, production and plugin settings; development = production, lenient.
fn configs() -> ConfigSet {
    let production = repo("config/production.yaml");
    ConfigSet::from_files(&[
        ("base.yaml", repo("config/base.yaml")),
        ("production.yaml", production.clone()),
        (
            "development.yaml",
            production.replace("loading: strict", "loading: lenient"),
        ),
        (
            "plugins/production-payment.yaml",
            repo("config/plugins/production-payment.yaml"),
        ),
    ])
    .unwrap()
}

/// Namespaces and plugins from reflectors, as the controller's caches provide them. The
/// watchers back off: without it, once the test API server stops at the end of a test, a
/// watcher spins on connection errors and the runtime cannot shut down.
struct ReflectorView {
    namespaces: Store<Namespace>,
    plugins: Store<MmfPlugin>,
}

impl ClusterView for ReflectorView {
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.metadata.labels.clone().unwrap_or_default())
    }
    fn plugins_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>> {
        self.plugins
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

async fn reflector_view(client: &kube::Client) -> Arc<ReflectorView> {
    let (namespaces, ns_writer) = reflector::store::<Namespace>();
    let (plugins, plugin_writer) = reflector::store::<MmfPlugin>();
    let ns_stream = reflector::reflector(
        ns_writer,
        watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .touched_objects();
    let plugin_stream = reflector::reflector(
        plugin_writer,
        watcher(
            Api::<MmfPlugin>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .touched_objects();
    tokio::spawn(ns_stream.for_each(|_| async {}));
    tokio::spawn(plugin_stream.for_each(|_| async {}));
    namespaces.wait_until_ready().await.unwrap();
    plugins.wait_until_ready().await.unwrap();
    Arc::new(ReflectorView {
        namespaces,
        plugins,
    })
}

struct Cluster {
    server: TestApiServer,
    dir: tempfile::TempDir,
    kubectl: PathBuf,
}

impl Cluster {
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.kubectl)
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    /// `kubectl apply -n NS -f -`: (success, stdout, stderr).
    async fn apply(&self, namespace: &str, manifest: &str) -> (bool, String, String) {
        let out = self
            .run(&["apply", "-n", namespace, "-f", "-"], Some(manifest))
            .await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None).await;
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn signed_plugin() -> String {
    repo("plugins/production_payment_service/plugin.yaml")
}

fn unsigned_plugin() -> String {
    let signed = signed_plugin();
    let without_signature = &signed[..signed.find("  signature:").unwrap()];
    without_signature
        .replace("name: production-payment", "name: unsigned-payment")
        .replace(
            "production-payment@sha256:5fdfe21e1a6ffb2dc7fb404c2c9893091825dc2072ec70e0eb06f01850ad1792",
            "production-payment:1.0.0",
        )
}

fn tampered_plugin() -> String {
    signed_plugin().replace("review_threshold: 10000", "review_threshold: 999999")
}

fn big_service() -> String {
    repo("plugins/production_payment_service/payment-service.yaml")
        .replace("      memory: 256Mi", "      memory: 1Gi")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_denials_in_production_and_warnings_in_development() {
    let Some(kubectl) = kubectl_path() else {
        mmf_e2e::tools::missing(
            "the `kubectl` command (webhook_e2e)",
            "install kubectl (https://kubernetes.io/docs/tasks/tools/), set KUBECTL, or run `bash .ci/run`",
        );
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server
        .write_kubeconfig(dir.path().join("kubeconfig"))
        .unwrap();
    let cluster = Cluster {
        server,
        dir,
        kubectl,
    };
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    cluster.ok(&["apply", "-f", crds.to_str().unwrap()]).await;
    for (namespace, environment) in [
        ("prod", "production"),
        ("dev", "development"),
        ("mmf-system", ""),
    ] {
        cluster.ok(&["create", "namespace", namespace]).await;
        if !environment.is_empty() {
            let label = format!("mmf.marty.dev/environment={environment}");
            cluster.ok(&["label", "namespace", namespace, &label]).await;
        }
    }

    let client = cluster.server.client().await.unwrap();
    let view = reflector_view(&client).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let options = WebhookOptions {
        addr,
        tls: TlsSource::SelfManaged,
        webhook_url: Some(format!("https://127.0.0.1:{}/validate", addr.port())),
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
    let health = WebhookHealth::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve_on(
        listener,
        options,
        Arc::new(SharedConfig::new(configs(), "development")),
        view.clone(),
        client.clone(),
        AdmissionMetrics::unregistered(),
        health.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    for _ in 0..100 {
        if health.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(health.is_ready(), "the webhook never became ready");

    // What the operator wrote: the Secret and a configuration that trusts its CA.
    let secret = Api::<Secret>::namespaced(client.clone(), "mmf-system")
        .get(DEFAULT_SECRET_NAME)
        .await
        .unwrap();
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    let live = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(CONFIGURATION_NAME)
        .await
        .unwrap();
    assert!(trusts(&live, &ca));
    let names: Vec<_> = live
        .webhooks
        .iter()
        .flatten()
        .map(|w| w.name.clone())
        .collect();
    assert_eq!(names, [STRICT_WEBHOOK, LENIENT_WEBHOOK]);

    // Denied in production, with the reasons.
    let denied = |kind: &str, name: &str, lines: &[&str]| {
        format!(
            "Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"{STRICT_WEBHOOK}\" denied the request: mmf-operator denied this {kind}: the production environment is strict and the object violates its policy:\n{}\n",
            lines
                .iter()
                .map(|line| line.replace("{name}", name))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    let unsigned_lines = [
        "MmfPlugin/{name} (namespace prod): spec.signature is missing: sign the plugin with `mmf sign --key KEY.pem --key-id ID -f FILE`",
        "MmfPlugin/{name} (namespace prod): spec.image: image \"ghcr.io/marty-framework/plugins/production-payment:1.0.0\" is not pinned by digest: environment production requires references of the form name@sha256:<64 hex digits>",
    ];
    let (ok, _, stderr) = cluster.apply("prod", &unsigned_plugin()).await;
    assert!(!ok);
    assert_eq!(
        stderr,
        denied("MmfPlugin", "unsigned-payment", &unsigned_lines)
    );

    let tampered_lines = [
        "MmfPlugin/{name} (namespace prod): spec.signature.value does not verify with key \"mmf-demo-2026\": the spec, the name or the key changed since signing",
    ];
    let (ok, _, stderr) = cluster.apply("prod", &tampered_plugin()).await;
    assert!(!ok);
    assert_eq!(
        stderr,
        denied("MmfPlugin", "production-payment", &tampered_lines)
    );

    // A compliant plugin is admitted into production.
    let (ok, stdout, stderr) = cluster.apply("prod", &signed_plugin()).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "mmfplugin.mmf.marty.dev/production-payment created\n"
    );
    assert_eq!(stderr, "");
    for _ in 0..100 {
        if !view.plugins_in("prod").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let service_lines = [
        "MmfService/{name} (namespace prod): spec.resources.limits.memory: 1Gi is above the 256Mi per-container limit of environment production: lower it to at most 256Mi",
    ];
    let (ok, _, stderr) = cluster.apply("prod", &big_service()).await;
    assert!(!ok);
    assert_eq!(
        stderr,
        denied("MmfService", "payment-service", &service_lines)
    );

    // The same objects into development: admitted, and kubectl prints the warnings.
    let warnings = |lines: &[&str], name: &str| {
        lines
            .iter()
            .map(|line| {
                format!(
                    "Warning: {}\n",
                    line.replace("{name}", name)
                        .replace("namespace prod", "namespace dev")
                        .replace("environment production", "environment development")
                )
            })
            .collect::<String>()
    };
    let (ok, stdout, stderr) = cluster.apply("dev", &unsigned_plugin()).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "mmfplugin.mmf.marty.dev/unsigned-payment created\n");
    assert_eq!(stderr, warnings(&unsigned_lines, "unsigned-payment"));

    let (ok, stdout, stderr) = cluster.apply("dev", &tampered_plugin()).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "mmfplugin.mmf.marty.dev/production-payment created\n"
    );
    assert_eq!(stderr, warnings(&tampered_lines, "production-payment"));

    let (ok, stdout, stderr) = cluster.apply("dev", &big_service()).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "mmfservice.mmf.marty.dev/payment-service created\n");
    // The service also enables the (tampered, so rejected) plugin: a second warning.
    assert!(
        stderr.starts_with(&warnings(&service_lines, "payment-service")),
        "{stderr}"
    );

    // Nothing denied was stored.
    let stored = cluster
        .ok(&["get", "mmfplugins,mmfservices", "-n", "prod", "-o", "name"])
        .await;
    assert_eq!(stored, "mmfplugin.mmf.marty.dev/production-payment\n");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Starts a cluster with the CRDs and the `prod`/`dev`/`mmf-system` namespaces.
async fn cluster_with_namespaces(kubectl: PathBuf) -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = TestApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server
        .write_kubeconfig(dir.path().join("kubeconfig"))
        .unwrap();
    let cluster = Cluster {
        server,
        dir,
        kubectl,
    };
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    cluster.ok(&["apply", "-f", crds.to_str().unwrap()]).await;
    for (namespace, environment) in [("prod", "production"), ("mmf-system", "")] {
        cluster.ok(&["create", "namespace", namespace]).await;
        if !environment.is_empty() {
            let label = format!("mmf.marty.dev/environment={environment}");
            cluster.ok(&["label", "namespace", namespace, &label]).await;
        }
    }
    cluster
}

fn in_cluster_options(addr: std::net::SocketAddr) -> WebhookOptions {
    WebhookOptions {
        addr,
        tls: TlsSource::SelfManaged,
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
    }
}

/// The chart's path: the configuration points at the operator's Service with a stale
/// `caBundle`; the operator fills in its CA, and only then reports ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_the_operator_keeps_the_charts_ca_bundle_current() {
    use mmf_operator::webhook::configuration::{Endpoint, configuration};
    let Some(kubectl) = kubectl_path() else {
        mmf_e2e::tools::missing(
            "the `kubectl` command (webhook_e2e)",
            "install kubectl (https://kubernetes.io/docs/tasks/tools/), set KUBECTL, or run `bash .ci/run`",
        );
        return;
    };
    let cluster = cluster_with_namespaces(kubectl).await;
    let client = cluster.server.client().await.unwrap();
    let view = reflector_view(&client).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    cluster
        .server
        .map_service("mmf-system", DEFAULT_SERVICE_NAME, 443, addr);

    // What the chart installs before the operator has a CA.
    let chart = configuration(
        CONFIGURATION_NAME,
        &Endpoint::Service {
            namespace: "mmf-system".to_owned(),
            name: DEFAULT_SERVICE_NAME.to_owned(),
        },
        b"",
        "mmf-system",
        &["production".to_owned()],
        false,
    );
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&Default::default(), &chart)
        .await
        .unwrap();

    let health = WebhookHealth::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve_on(
        listener,
        in_cluster_options(addr),
        Arc::new(SharedConfig::new(configs(), "development")),
        view,
        client.clone(),
        AdmissionMetrics::unregistered(),
        health.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    for _ in 0..100 {
        if health.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(health.is_ready(), "the webhook never became ready");
    let secret = Api::<Secret>::namespaced(client.clone(), "mmf-system")
        .get(DEFAULT_SECRET_NAME)
        .await
        .unwrap();
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    let live = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(CONFIGURATION_NAME)
        .await
        .unwrap();
    assert!(trusts(&live, &ca));
    // Only caBundle changed: the rest is still exactly the chart's.
    let mut expected = chart.webhooks.clone().unwrap();
    for webhook in &mut expected {
        webhook.client_config.ca_bundle = live.webhooks.as_ref().unwrap()[0]
            .client_config
            .ca_bundle
            .clone();
    }
    assert_eq!(live.webhooks.unwrap(), expected);

    // The API server reaches the webhook through the Service name and trusts it.
    let (ok, _, stderr) = cluster.apply("prod", &unsigned_plugin()).await;
    assert!(!ok);
    assert!(
        stderr.starts_with("Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"strict.validate.mmf.marty.dev\" denied the request: mmf-operator denied this MmfPlugin"),
        "{stderr}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Two replicas starting together: one creates the Secret, the other gets a conflict, re-reads
/// and serves the same certificates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_for_the_secret_end_up_with_the_same_certificates() {
    use mmf_operator::webhook::certs::serving_names;
    use mmf_operator::webhook::tls::ensure_secret;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "mmf-system"}})).unwrap();
    namespaces
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    let names = serving_names(DEFAULT_SERVICE_NAME, "mmf-system", None);
    let lifetimes = mmf_operator::webhook::certs::Lifetimes::default();
    let (a, b) = tokio::join!(
        ensure_secret(
            &client,
            "mmf-system",
            "webhook-tls",
            &names,
            None,
            lifetimes
        ),
        ensure_secret(
            &client,
            "mmf-system",
            "webhook-tls",
            &names,
            None,
            lifetimes
        ),
    );
    let (a, a_renewal) = a.unwrap();
    let (b, b_renewal) = b.unwrap();
    assert_eq!(a, b);
    // Exactly one of them issued.
    assert_eq!(
        [a_renewal, b_renewal]
            .iter()
            .filter(|r| r.is_some())
            .count(),
        1,
        "{a_renewal:?} {b_renewal:?}"
    );
    // A later pass (a restart) keeps them.
    let (c, renewal) = ensure_secret(
        &client,
        "mmf-system",
        "webhook-tls",
        &names,
        Some(&a.ca_cert),
        lifetimes,
    )
    .await
    .unwrap();
    assert_eq!((c, renewal), (a, None));
}
