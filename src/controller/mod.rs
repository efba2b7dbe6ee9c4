//! `mmf run`: the operator. Every replica keeps the watch caches (the webhook reads them);
//! only the lease holder reconciles.
//!
//! ```text
//! watches --> Caches --(index, triggers)--> applier(MmfPlugin) --> status
//!                                        \-> applier(MmfService) --> ConfigMap, Deployment, Service, status
//! ```

mod apply;
pub mod cached_child;
pub mod caches;
mod context;
mod error;
pub mod index;
mod leader;
pub mod metrics;
pub mod ops;
mod plugin;
mod reload;
mod revision;
mod service;
mod status_patch;

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod reconcile_tests;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

pub use caches::Caches;
pub use context::Context;
pub use error::Error;
pub use ops::ReadinessCheck;

use crate::api::MmfPlugin;
use crate::cluster_view::ClusterView;
use crate::config::SharedConfig;
use crate::config::{ConfigError, load_dir};
use crate::webhook::{self, WebhookError, WebhookHealth, WebhookOptions};

/// Settings of `mmf run` that concern the controllers.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory of base.yaml, the environment files and plugins/.
    pub config_dir: PathBuf,
    /// Environment for namespaces without the environment label.
    pub default_environment: String,
    /// Address of /healthz, /readyz and /metrics.
    pub probe_addr: SocketAddr,
    /// The operator's own namespace (for the Lease).
    pub namespace: String,
    /// Whether to elect a leader (off only for a single local process).
    pub leader_election: bool,
    /// Lease name.
    pub lease_name: String,
    /// This replica's identity in the election and in events.
    pub identity: String,
    /// Reconciliations run in parallel, per controller.
    pub concurrency: u16,
    /// How often the config directory is re-read even without a file event.
    pub config_poll: Duration,
}

/// Why `mmf run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("loading the environment config: {0}")]
    Config(#[from] ConfigError),
    #[error(
        "the mmf CRDs are not installed or not readable ({0}): install them with `kubectl apply -f crds/` or the Helm chart"
    )]
    CrdsMissing(#[source] kube::Error),
    #[error("serving the operations endpoints on {addr}: {source}")]
    Ops {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the operator namespace {namespace:?} does not exist: create namespace {namespace} or pass --namespace"
    )]
    NamespaceMissing { namespace: String },
    #[error("joining the leader election")]
    Election(#[source] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; exiting so a fresh start cannot overlap with the new leader")]
    LostLeadership,
    #[error("admission webhook: {0}")]
    Webhook(#[from] WebhookError),
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the operator until `stop` resolves (or leadership is lost), serving the admission
/// webhook beside the controllers in every replica unless `webhook` is None.
pub async fn run(
    client: Client,
    options: RunOptions,
    webhook: Option<WebhookOptions>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let config = Arc::new(SharedConfig::new(
        load_dir(&options.config_dir)?,
        options.default_environment.clone(),
    ));
    Api::<MmfPlugin>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
        .map_err(RunError::CrdsMissing)?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown_tx = Arc::new(shutdown_tx);
    let stopper = Arc::clone(&shutdown_tx);
    tokio::spawn(async move {
        stop.await;
        let _ = stopper.send(true);
    });
    let shutdown = || {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let mut registry = Registry::default();
    let queue_depth = prometheus_client::metrics::gauge::Gauge::default();
    let caches = Caches::start(client.clone(), Arc::clone(&config), queue_depth.clone());
    let _stop_watches = StopOnDrop(Arc::clone(&caches));
    let metrics = Arc::new(metrics::Metrics::register(&mut registry, queue_depth));
    let synced = Arc::clone(&caches);
    let mut checks: Vec<ReadinessCheck> = vec![Arc::new(move || {
        if synced.is_synced() {
            Ok(())
        } else {
            Err("watch caches are still loading".to_owned())
        }
    })];
    let mut tasks = Vec::new();
    let (failed_tx, mut failed) = mpsc::unbounded_channel::<WebhookError>();
    if let Some(webhook) = webhook {
        let admission =
            webhook::metrics(&mut registry).sharing(&metrics.audit, &metrics.signatures);
        let health = WebhookHealth::new();
        let probe = health.clone();
        checks.push(Arc::new(move || {
            if probe.is_ready() {
                Ok(())
            } else {
                Err(
                    "the webhook certificate is not loaded or its CA is not yet in the caBundle"
                        .to_owned(),
                )
            }
        }));
        let serving = webhook::serve(
            webhook,
            Arc::clone(&config),
            Arc::clone(&caches) as Arc<dyn ClusterView>,
            client.clone(),
            admission,
            health,
            shutdown(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(error) = serving.await {
                let _ = failed_tx.send(error);
            }
        }));
    }

    let registry = Arc::new(registry);
    let listener_check = tokio::net::TcpListener::bind(options.probe_addr)
        .await
        .map_err(|source| RunError::Ops {
            addr: options.probe_addr,
            source,
        })?;
    drop(listener_check);
    let ops = tokio::spawn(ops::serve(
        options.probe_addr,
        Arc::clone(&registry),
        checks,
        shutdown(),
    ));

    let reload_caches = Arc::clone(&caches);
    let reload_metrics = Arc::clone(&metrics);
    let reload_dir = options.config_dir.display().to_string();
    let reload = tokio::spawn(reload::watch(
        options.config_dir.clone(),
        Arc::clone(&config),
        options.config_poll,
        move |reload| {
            let ok = reload.error.is_none();
            reload_metrics.config_reload(ok);
            reload_metrics
                .audit
                .write(&crate::core::audit::reload_record(
                    k8s_openapi::jiff::Timestamp::now(),
                    &reload_dir,
                    reload.error.as_deref(),
                    reload.before,
                    reload.after,
                ));
            if ok {
                reload_caches.trigger_all();
            }
        },
    ));

    tokio::select! {
        _ = caches.wait_synced() => tracing::info!("watch caches synced"),
        _ = shutdown() => return Ok(()),
        error = next_failure(&mut failed) => return Err(error.into()),
    }

    let mut election = if options.leader_election {
        let mut election = leader::Election::join(
            client.clone(),
            &options.namespace,
            &options.lease_name,
            &options.identity,
        )
        .await
        .map_err(|error| election_error(error, &options.namespace))?;
        tracing::info!(identity = %options.identity, lease = %options.lease_name, "waiting for leadership");
        tokio::select! {
            _ = election.acquired() => {}
            _ = shutdown() => {
                election.release().await;
                return Ok(());
            }
            error = next_failure(&mut failed) => {
                election.release().await;
                return Err(error.into());
            }
        }
        Some(election)
    } else {
        None
    };
    tracing::info!(identity = %options.identity, "leading: reconciling");
    metrics.leader.set(1);

    let ctx = Arc::new(Context {
        client: client.clone(),
        config: Arc::clone(&config),
        caches: Arc::clone(&caches),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "mmf-operator".into(),
                instance: Some(options.identity.clone()),
            },
        ),
        metrics: Arc::clone(&metrics),
        failures: Mutex::new(HashMap::new()),
    });
    let forgetting = tokio::spawn(metrics::forget_deleted_every(
        Arc::clone(&metrics),
        Arc::clone(&caches),
        metrics::FORGET_INTERVAL,
    ));
    let receivers = caches.connect();
    let applier_config = controller::Config::default()
        .concurrency(options.concurrency)
        .debounce(Duration::from_millis(100));
    let plugins = drive(
        "mmfplugin",
        Arc::clone(&ctx),
        caches.plugins.clone(),
        receivers.plugins,
        applier_config.clone(),
        |object, ctx| Box::pin(plugin::reconcile(object, ctx)),
    );
    let services = drive(
        "mmfservice",
        Arc::clone(&ctx),
        caches.services.clone(),
        receivers.services,
        applier_config,
        |object, ctx| Box::pin(service::reconcile(object, ctx)),
    );
    let lost = async {
        match election.as_mut() {
            Some(election) => election.lost().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = plugins => Ok(()),
        _ = services => Ok(()),
        _ = shutdown() => Ok(()),
        _ = lost => Err(RunError::LostLeadership),
        error = next_failure(&mut failed) => Err(error.into()),
    };
    caches.disconnect();
    forgetting.abort();
    metrics.leader.set(0);
    if let Some(election) = election
        && outcome.is_ok()
    {
        election.release().await;
    }
    reload.abort();
    // However the run ended (a lost lease, a failed extension), stop the probes and the
    // extensions too, so the process exits instead of serving on without reconciling.
    let _ = shutdown_tx.send(true);
    let _ = ops.await;
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    tracing::info!("stopped");
    outcome
}

/// A missing operator namespace is the common case: say so with the fix.
fn election_error(error: kube_lease_manager::LeaseManagerError, namespace: &str) -> RunError {
    match &error {
        kube_lease_manager::LeaseManagerError::KubeError(kube::Error::Api(status))
            if status.code == 404 && status.message.contains("namespaces") =>
        {
            RunError::NamespaceMissing {
                namespace: namespace.to_owned(),
            }
        }
        _ => RunError::Election(error),
    }
}

/// Stops the watches however `run` returns.
struct StopOnDrop(Arc<Caches>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The webhook's failure; pending forever while it serves (or when there is none).
async fn next_failure(failed: &mut mpsc::UnboundedReceiver<WebhookError>) -> WebhookError {
    match failed.recv().await {
        Some(error) => error,
        None => std::future::pending().await,
    }
}

type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Action, Error>> + Send>>;

/// Runs one controller: the applier fed by the caches' triggers, with metrics and backoff.
async fn drive<K>(
    controller_name: &'static str,
    ctx: Arc<Context>,
    store: kube::runtime::reflector::Store<K>,
    mut triggers: mpsc::UnboundedReceiver<ObjectRef<K>>,
    config: controller::Config,
    reconcile: fn(Arc<K>, Arc<Context>) -> ReconcileFuture,
) where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    let pending = ctx.caches.pending.clone();
    let queue = futures::stream::poll_fn(move |cx| triggers.poll_recv(cx)).map(move |object| {
        pending.dec();
        Ok::<_, Infallible>(object)
    });
    let reconciler = move |object: Arc<K>, ctx: Arc<Context>| -> ReconcileFuture {
        Box::pin(async move {
            let started = Instant::now();
            let key = object_key(object.as_ref());
            let result = reconcile(object, Arc::clone(&ctx)).await;
            ctx.metrics.reconciled(
                controller_name,
                started.elapsed(),
                result.as_ref().err().map(Error::metric_label),
            );
            if result.is_ok()
                && let Ok(mut failures) = ctx.failures.lock()
            {
                failures.remove(&key);
            }
            result
        })
    };
    let error_policy = move |object: Arc<K>, error: &Error, ctx: Arc<Context>| -> Action {
        let key = object_key(object.as_ref());
        let attempt = ctx
            .failures
            .lock()
            .map(|mut failures| {
                let attempt = failures.entry(key.clone()).or_insert(0);
                *attempt += 1;
                *attempt - 1
            })
            .unwrap_or(0);
        if error.is_transient() {
            let delay = error::backoff(attempt);
            tracing::warn!(controller = controller_name, object = %key, %error, retry_in = ?delay, "reconcile failed; retrying");
            Action::requeue(delay)
        } else {
            tracing::error!(controller = controller_name, object = %key, %error, "reconcile failed; waiting for a change");
            Action::requeue(Duration::from_secs(300))
        }
    };
    let mut results = std::pin::pin!(controller::applier(
        reconciler,
        error_policy,
        ctx,
        store,
        queue,
        config
    ));
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            tracing::debug!(controller = controller_name, %error, "applier");
        }
    }
}

fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// A stable identity for this process: the pod name in a cluster, host and pid elsewhere.
pub fn default_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}-{}", std::process::id())
    })
}
