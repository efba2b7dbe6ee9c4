#![warn(missing_docs)]
//! # mmf-e2e: in-memory Kubernetes API server for tests (not a product)
//!
//! No real kube-apiserver can run on the development and CI machines, so this crate provides
//! one that speaks enough of the Kubernetes HTTP API for unmodified kubectl, Helm and kube-rs.
//! It is a **test and development tool only**; see the crate README for every known difference
//! from kube-apiserver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mmf_e2e::Error> {
//! let server = mmf_e2e::TestApiServer::start().await?;
//! let client = server.client().await?;
//! # let _ = client; server.shutdown().await; Ok(()) }
//! ```

// Listed bottom-up: each module uses only those above it (`.ci/module-cycles e2e/src` checks).
pub mod load; // open-loop HTTPS load and a TLS echo, for latency benchmarks
pub mod real;
pub mod tls;
pub mod tools;
use crd_validate as schema;
mod admission; // calls to admission webhooks
mod controls; // test knobs: request counts, fault rules, watch signals, readiness
mod deployment_sim; // Deployment status without kubelets
mod discovery; // /api, /apis documents
mod faults; // the public fault-injection handle
mod gc; // owner-reference garbage collection and finalizer completion
mod lifecycle; // create/update/delete rules shared by the verbs and gc
mod network; // cut listeners, periodic watch drops
mod openapi; // /openapi/v2 and v3 documents
mod patch; // JSON, merge and strategic-merge patch algorithms
mod protobuf; // the protobuf envelope kubectl may send
pub mod proxy; // a loopback TCP proxy whose connections can be cut (real API server faults)
mod reply; // HTTP replies
mod reqlog; // every request, when and through which listener
mod request; // a parsed resource request
mod resources; // the type registry: built-in kinds and CRDs
mod selectors; // label and field selectors
mod server; // accept loop and routing
mod shared; // the state every handler shares
mod ssa; // server-side apply and managedFields
mod status; // API `Status` errors
mod store; // objects, resourceVersions and the watch event log
mod table; // kubectl's Table rendering
mod verbs; // one module per verb
pub mod workload; // the MmfServices and MmfPlugins the bench and the reliability suite create

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::task::JoinHandle;

pub use controls::{Injected, Readiness, RequestKey, Stats, WRITE_FAULT_CODES, WriteFaults};
pub use faults::Faults;
pub use network::Cut;
pub use reqlog::LoggedRequest;

/// Errors starting or talking to the test server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The loopback port could not be bound (taken, or no permission).
    #[error("binding the listener: {0}")]
    Bind(#[source] std::io::Error),
    /// Certificate generation or rustls configuration failed.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A load generator could not connect to the server it measures.
    #[error("connecting to the measured server: {0}")]
    Connect(#[source] std::io::Error),
    /// The kubeconfig file could not be written.
    #[error("writing the kubeconfig: {0}")]
    Kubeconfig(#[source] std::io::Error),
    /// kube-rs rejected the generated kubeconfig.
    #[error("building the kube client: {0}")]
    Client(String),
}

/// The name [`LoggedRequest::client`] gives requests to the main listener.
pub const DEFAULT_CLIENT: &str = "default";

/// The bearer token written into kubeconfigs (the server accepts any credentials).
pub const TOKEN: &str = "mmf-e2e-test-token";

/// Options for [`TestApiServer`]; obtained from [`TestApiServer::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    port: u16,
    tls: bool,
    readiness: Readiness,
    event_log: usize,
    bookmark_interval: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            port: 0,
            tls: true,
            readiness: Readiness::default(),
            event_log: 50_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

impl Builder {
    /// Loopback port; 0 (the default) picks a free one so tests can run in parallel.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// HTTPS with a generated CA (default) or plain HTTP.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
    /// Initial Deployment readiness simulation (default: ready after 200 ms).
    pub fn deployment_readiness(mut self, r: Readiness) -> Self {
        self.readiness = r;
        self
    }
    /// Events kept per resource type for watch resumption; older resumes get 410 Gone.
    pub fn event_log_capacity(mut self, n: usize) -> Self {
        self.event_log = n.max(1);
        self
    }
    /// How often watches that asked for bookmarks receive one.
    pub fn bookmark_interval(mut self, d: Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    /// Binds 127.0.0.1 and starts serving; returns once requests are accepted.
    pub async fn start(self) -> Result<TestApiServer, Error> {
        tls::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let (ca_pem, tls_cfg) = if self.tls {
            let ca = tls::TestCa::new()?;
            let leaf = ca.issue(&["kubernetes", "kubernetes.default", "kubernetes.default.svc"])?;
            (
                Some(ca.cert_pem().to_string()),
                Some(tls::server_config(&leaf)?),
            )
        } else {
            (None, None)
        };
        let shared = Arc::new(shared::Shared::new(
            self.event_log,
            self.readiness,
            self.bookmark_interval,
        ));
        let serve_task = tokio::spawn(server::serve(
            shared.clone(),
            listener,
            tls_cfg.clone(),
            Arc::from(DEFAULT_CLIENT),
        ));
        let gc_task = tokio::spawn(gc::run(shared.clone()));
        let dropper = shared.clone();
        let drop_task = tokio::spawn(async move {
            dropper
                .network
                .drop_watches_periodically(|| faults::drop_all_watches(&dropper))
                .await
        });
        let scheme = if self.tls { "https" } else { "http" };
        Ok(TestApiServer {
            url: format!("{scheme}://{addr}"),
            addr,
            ca_pem,
            tls: tls_cfg,
            shared,
            runtime: tokio::runtime::Handle::current(),
            tasks: std::sync::Mutex::new(vec![serve_task, gc_task, drop_task]),
        })
    }
}

/// A running in-memory API server. Dropping it stops serving (as does [`Self::shutdown`]).
pub struct TestApiServer {
    url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<shared::Shared>,
    runtime: tokio::runtime::Handle,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl TestApiServer {
    /// HTTPS on 127.0.0.1 with a random port and default options.
    pub async fn start() -> Result<TestApiServer, Error> {
        Builder::default().start().await
    }

    /// Options: port, TLS, Deployment readiness, watch history size.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Base URL, e.g. `https://127.0.0.1:38123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the serving certificate (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Serves the same API on another loopback port whose requests are logged as coming from
    /// `client` (see [`Self::request_log`]) and which [`Faults::cut`] can cut off alone: give
    /// each process under test its own. Returns its base URL (use [`Self::kubeconfig_yaml_for`]).
    pub fn listen_as(&self, client: &str) -> Result<String, Error> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(Error::Bind)?;
        listener.set_nonblocking(true).map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let listener = {
            let _entered = self.runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(Error::Bind)?
        };
        let task = self.runtime.spawn(server::serve(
            self.shared.clone(),
            listener,
            self.tls.clone(),
            Arc::from(client),
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{addr}"))
    }

    /// Every resource request since start, in arrival order (discovery is not logged).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.log.snapshot()
    }

    /// The clock of [`LoggedRequest::at`]: time since the server started.
    pub fn log_clock(&self) -> Duration {
        self.shared.log.now()
    }

    /// A kubeconfig (CA embedded, token user, namespace `default`) that kubectl and Helm accept.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(&self.url)
    }

    /// [`Self::kubeconfig_yaml`] for another URL of this server (see [`Self::listen_as`]).
    pub fn kubeconfig_yaml_for(&self, url: &str) -> String {
        let ca = match &self.ca_pem {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mmf-e2e\n  cluster:\n    server: {url}\n{ca}users:\n- name: mmf-e2e-admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: mmf-e2e\n  context:\n    cluster: mmf-e2e\n    user: mmf-e2e-admin\n    namespace: default\ncurrent-context: mmf-e2e\npreferences: {{}}\n"
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (atomically: temp file then rename).
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let tmp = path.with_extension("tmp-mmf-e2e");
        std::fs::write(&tmp, self.kubeconfig_yaml()).map_err(Error::Kubeconfig)?;
        std::fs::rename(&tmp, path).map_err(Error::Kubeconfig)
    }

    /// A kube-rs client trusting this server's CA, default namespace `default`.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        self.client_for(&self.url).await
    }

    /// [`Self::client`] for another URL of this server (see [`Self::listen_as`]).
    pub async fn client_for(&self, url: &str) -> Result<kube::Client, Error> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml_for(url))
            .map_err(|e| Error::Client(e.to_string()))?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Client(e.to_string()))?;
        kube::Client::try_from(cfg).map_err(|e| Error::Client(e.to_string()))
    }

    /// Request counts since start or the last [`Self::reset_stats`].
    pub fn stats(&self) -> Stats {
        self.shared.controls.stats()
    }

    /// Zeroes the request counters (e.g. before measuring one reconcile).
    pub fn reset_stats(&self) {
        self.shared.controls.reset_stats()
    }

    /// Fault injection: error rates, latency, conflicts, dropped or expired watches.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// Changes how simulated Deployments become ready (applies to later spec changes).
    pub fn set_deployment_readiness(&self, r: Readiness) {
        self.shared.set_readiness(r)
    }

    /// Routes webhook calls for `clientConfig.service` `{namespace}/{name}:{port}` to `addr`.
    /// The webhook's certificate must be valid for `{name}.{namespace}.svc`.
    pub fn map_service(&self, namespace: &str, name: &str, port: u16, addr: SocketAddr) {
        self.shared.map_service(namespace, name, port, addr)
    }

    /// Forgets all objects and counters but keeps serving (and keeps built-in namespaces).
    pub fn reset(&self) {
        {
            let mut st = self.shared.state();
            let rv = st.rv;
            *st = store::State::new(st.log_capacity);
            // resourceVersions stay monotonic across a reset; old ones are expired.
            st.rv = rv;
            shared::seed(&mut st);
            st.compact_all();
        }
        self.shared.controls.reset_stats();
        self.shared.controls.clear_faults();
        self.shared.network.heal_all();
        let _ = self
            .shared
            .controls
            .watch_ctl
            .send(controls::WatchCtl::Expire);
    }

    /// Stops serving and closes every connection.
    pub async fn shutdown(self) {
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            t.abort();
        }
    }
}
