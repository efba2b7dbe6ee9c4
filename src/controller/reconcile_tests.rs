//! One reconcile at a time, in process, against the in-memory API server: the exact writes a
//! pass makes. The controller runtime (queues, leader election) is left out on purpose: these
//! tests pin what one call of `service::reconcile` sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, CustomResourceExt};
use mmf_e2e::{Readiness, TestApiServer};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::caches::Caches;
use super::context::Context;
use super::metrics::Metrics;
use super::service;
use crate::api::{ENVIRONMENT_LABEL, MmfPlugin, MmfPluginRevision, MmfService};
use crate::config::{SharedConfig, load_dir};

const NAMESPACE: &str = "shop";

fn example<K: serde::de::DeserializeOwned>(file: &str) -> K {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/production_payment_service");
    let text = std::fs::read_to_string(path.join(file)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Polls `check` every 20 ms for up to 10 s.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The server with the CRDs, a development namespace and the payment example created, and a
/// reconcile context whose caches have seen them.
async fn setup() -> (TestApiServer, Client, Arc<Context>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Deployments never become ready, so no rollout step lands between two passes.
    let server = TestApiServer::builder()
        .deployment_readiness(Readiness::Never)
        .start()
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        MmfPlugin::crd(),
        MmfService::crd(),
        MmfPluginRevision::crd(),
    ] {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_owned()),
            labels: Some(BTreeMap::from([(
                ENVIRONMENT_LABEL.to_owned(),
                "development".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let plugin: MmfPlugin = example("plugin.yaml");
    Api::<MmfPlugin>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &plugin)
        .await
        .unwrap();
    let service: MmfService = example("payment-service.yaml");
    Api::<MmfService>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &service)
        .await
        .unwrap();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Arc::new(SharedConfig::new(
        load_dir(&root.join("config")).unwrap(),
        "development",
    ));
    let caches = Caches::start(client.clone(), Arc::clone(&config), Gauge::default());
    caches.wait_synced().await;
    let metrics = Metrics::register(&mut Registry::default(), Gauge::default());
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        caches,
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "mmf-operator".into(),
                instance: Some("reconcile-test".into()),
            },
        ),
        metrics: Arc::new(metrics),
        failures: Mutex::new(HashMap::new()),
    });
    let service_ref = ObjectRef::<MmfService>::new("payment-service").within(NAMESPACE);
    let plugin_ref = ObjectRef::<MmfPlugin>::new("production-payment").within(NAMESPACE);
    until("the caches to see the example", || {
        ctx.caches.services.get(&service_ref).is_some()
            && ctx.caches.plugins.get(&plugin_ref).is_some()
    })
    .await;
    (server, client, ctx)
}

/// Writes since the last reset, as `verb resource` -> count.
fn writes(server: &TestApiServer) -> BTreeMap<String, u64> {
    let mut writes = BTreeMap::new();
    for (key, count) in server.stats().counts {
        if key.is_write() {
            *writes
                .entry(format!("{} {}", key.verb, key.resource))
                .or_insert(0) += count;
        }
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_reconcile_applies_three_children_and_writes_one_status() {
    let (server, client, ctx) = setup().await;
    let services: Api<MmfService> = Api::namespaced(client.clone(), NAMESPACE);
    let service = services.get("payment-service").await.unwrap();
    server.reset_stats();

    service::reconcile(Arc::new(service), Arc::clone(&ctx))
        .await
        .unwrap();

    assert_eq!(
        writes(&server),
        BTreeMap::from([
            ("patch configmaps".to_owned(), 1),
            ("patch deployments".to_owned(), 1),
            ("patch mmfservices/status".to_owned(), 1),
            ("patch services".to_owned(), 1),
        ])
    );
    let status = services
        .get("payment-service")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.loaded_plugins.as_deref(), Some("production-payment"));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("Unknown", "Reconciling")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reconcile_with_nothing_changed_writes_nothing() {
    let (server, client, ctx) = setup().await;
    let services: Api<MmfService> = Api::namespaced(client.clone(), NAMESPACE);
    let first = services.get("payment-service").await.unwrap();
    service::reconcile(Arc::new(first), Arc::clone(&ctx))
        .await
        .unwrap();
    // The next pass sees what the first wrote: the children in the caches, the status on the
    // object; the one after sees the Deployment as the simulator left it (never ready).
    let deployment = ObjectRef::new("payment-service").within(NAMESPACE);
    let config_map = ObjectRef::new("payment-service-mmf").within(NAMESPACE);
    until("the caches to see the children", || {
        ctx.caches.children.deployments.get(&deployment).is_some()
            && ctx.caches.children.config_maps.get(&config_map).is_some()
    })
    .await;
    let second = services.get("payment-service").await.unwrap();
    service::reconcile(Arc::new(second), Arc::clone(&ctx))
        .await
        .unwrap();
    let third = services.get("payment-service").await.unwrap();
    server.reset_stats();

    service::reconcile(Arc::new(third), Arc::clone(&ctx))
        .await
        .unwrap();

    assert_eq!(writes(&server), BTreeMap::new());
}
