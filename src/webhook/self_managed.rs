//! Upkeep of the self-managed certificates: every check interval, and at once when the
//! ValidatingWebhookConfiguration changes, read (or create, or renew) the Secret, publish its
//! CAs in `caBundle`, then serve its certificate.
//!
//! The order is what keeps admissions from failing during a rotation: a CA is published before
//! any certificate it signed is served, and a certificate of a new CA is served only once that
//! CA has been in the live `caBundle` for [`PUBLISH_SETTLE`], because each API server picks the
//! new bundle up from its own watch, a little later. Readiness says whether the live `caBundle`
//! holds the CA of the served certificate, so a replica whose certificate would be refused
//! leaves the Service's endpoints.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Notify;

use super::certs::{self, CertInfo, Renewal, TLS_CERT};
use super::configuration::{Published, trusts};
use super::tls::{self, CertCell, certified_key};
use super::{WebhookError, WebhookHealth, WebhookOptions, publish, url_host};

/// How long a newly published CA stays in `caBundle` before certificates it signed are served.
pub const PUBLISH_SETTLE: Duration = Duration::from_secs(5);

/// The first retry of a pass that left the webhook not ready.
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// What the passes know; guarded by one lock, never held across an await.
#[derive(Debug, Default)]
struct State {
    /// The current CA (PEM) as last confirmed in the live `caBundle`, and since when.
    published_ca: Option<(String, Instant)>,
    /// The `caBundle` last confirmed live.
    published_bundle: Option<String>,
    /// Issuer (DER subject) of the served certificate.
    served_issuer: Option<Vec<u8>>,
    /// The CA (PEM) that signed the served certificate.
    served_ca: Option<String>,
}

/// The upkeep of one process; `run` once before serving, then [`SelfManagedPass::spawn`].
pub(super) struct SelfManagedPass {
    options: WebhookOptions,
    client: Client,
    cell: Arc<CertCell>,
    health: WebhookHealth,
    names: Vec<String>,
    state: Mutex<State>,
    wake: Notify,
}

impl SelfManagedPass {
    pub(super) fn new(
        options: &WebhookOptions,
        client: Client,
        cell: Arc<CertCell>,
        health: WebhookHealth,
    ) -> Arc<SelfManagedPass> {
        let host = options.webhook_url.as_deref().and_then(url_host);
        let mut names =
            certs::serving_names(&options.service_name, &options.namespace, host.as_deref());
        for extra in &options.cert_hosts {
            if !names.contains(extra) {
                names.push(extra.clone());
            }
        }
        Arc::new(SelfManagedPass {
            options: options.clone(),
            client,
            cell,
            health,
            names,
            state: Mutex::default(),
            wake: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The current CA, when it has been published for [`PUBLISH_SETTLE`].
    fn settled_ca(&self) -> Option<String> {
        let state = self.state();
        let (ca, since) = state.published_ca.as_ref()?;
        (since.elapsed() >= PUBLISH_SETTLE).then(|| ca.clone())
    }

    /// One pass: renew, publish, serve, report readiness; true when ready.
    pub(super) async fn run(&self) -> Result<bool, WebhookError> {
        let settled = self.settled_ca();
        let (bundle, renewal) = tls::ensure_secret(
            &self.client,
            &self.options.namespace,
            &self.options.secret_name,
            &self.names,
            settled.as_deref(),
            self.options.lifetimes,
        )
        .await?;
        if let Some(renewal) = renewal {
            tracing::info!(?renewal, secret = %self.options.secret_name, "webhook certificates renewed");
        }
        let ca_bundle = bundle.ca_bundle();
        // Not fatal: what is served stays, readiness says whether the API server trusts it,
        // and the next pass retries.
        match publish(&self.client, &self.options, ca_bundle.as_bytes()).await {
            Ok(Published::Current) => {
                let mut state = self.state();
                state.published_bundle = Some(ca_bundle);
                if state.published_ca.as_ref().map(|(ca, _)| ca) != Some(&bundle.ca_cert) {
                    state.published_ca = Some((bundle.ca_cert.clone(), Instant::now()));
                }
            }
            Ok(Published::Absent) => self.forget_publication(),
            Err(error) => {
                tracing::warn!(%error, "publishing the webhook CA failed; retrying");
            }
        }
        let stored = CertInfo::from_pem(&bundle.tls_cert, TLS_CERT)?;
        let settled_subject = self
            .settled_ca()
            .filter(|ca| *ca == bundle.ca_cert)
            .and_then(|ca| CertInfo::from_pem(&ca, certs::CA_CERT).ok())
            .map(|ca| ca.subject);
        let served_issuer = self.state().served_issuer.clone();
        if certs::should_serve(
            served_issuer.as_deref(),
            &stored.issuer,
            settled_subject.as_deref(),
        ) {
            let key = certified_key(bundle.tls_cert.as_bytes(), bundle.tls_key.as_bytes())
                .map_err(WebhookError::Tls)?;
            self.cell.store(key);
            let mut state = self.state();
            if state.served_issuer.as_ref() != Some(&stored.issuer) && served_issuer.is_some() {
                tracing::info!(secret = %self.options.secret_name, "serving the certificate of the new webhook CA");
            }
            state.served_ca = bundle.ca_with_subject(&stored.issuer).map(str::to_owned);
            state.served_issuer = Some(stored.issuer);
        } else if renewal == Some(Renewal::LeafReissued) {
            tracing::info!(
                "the new serving certificate waits until its CA has been published for {PUBLISH_SETTLE:?}"
            );
        }
        Ok(self.report())
    }

    /// Readiness from what is known: the last confirmed `caBundle` holds the served CA.
    fn report(&self) -> bool {
        let state = self.state();
        let agree = match (&state.published_bundle, &state.served_ca) {
            (Some(bundle), Some(ca)) => bundle_holds(bundle.as_bytes(), ca.as_bytes()),
            _ => false,
        };
        self.health.set(state.served_ca.is_some(), true, agree);
        agree
    }

    fn forget_publication(&self) {
        let mut state = self.state();
        state.published_bundle = None;
        state.published_ca = None;
    }

    /// The live configuration changed (or is gone): when its `caBundle` no longer holds the CA
    /// of the served certificate, report not ready and run a pass at once to publish again.
    fn on_configuration(&self, live: Option<&ValidatingWebhookConfiguration>) {
        let served_ca = self.state().served_ca.clone();
        let trusted = match (live, served_ca) {
            (Some(live), Some(ca)) => trusts(live, ca.as_bytes()),
            _ => false,
        };
        if !trusted {
            tracing::warn!(
                configuration = %self.options.configuration_name,
                "the live caBundle does not hold the CA of the served certificate; not ready until it is published again"
            );
            self.forget_publication();
            self.report();
            self.wake.notify_one();
        }
    }

    /// Runs a pass every check interval and whenever the configuration changes, until aborted;
    /// while not ready, sooner (1 s, doubling up to the interval).
    pub(super) fn spawn(self: Arc<Self>, ready: bool) -> tokio::task::JoinHandle<()> {
        let watching = tokio::spawn(self.clone().watch_configuration());
        tokio::spawn(async move {
            let _watching = AbortOnDrop(watching);
            let interval = self.options.check_interval;
            let mut ready = ready;
            let mut retry = RETRY_FIRST.min(interval);
            loop {
                let wait = if ready { interval } else { retry };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.wake.notified() => {}
                }
                ready = match self.run().await {
                    Ok(ready) => ready,
                    Err(error) => {
                        tracing::warn!(%error, "webhook certificate upkeep failed; retrying");
                        false
                    }
                };
                retry = if ready {
                    RETRY_FIRST.min(interval)
                } else {
                    (retry * 2).min(interval)
                };
            }
        })
    }

    async fn watch_configuration(self: Arc<Self>) {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!(
            "metadata.name={}",
            self.options.configuration_name
        ));
        let mut events = watcher(api, config).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(live) | watcher::Event::InitApply(live)) => {
                    self.on_configuration(Some(&live));
                }
                Ok(watcher::Event::Delete(_)) => self.on_configuration(None),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(error) => {
                    tracing::debug!(%error, "watching the ValidatingWebhookConfiguration")
                }
            }
        }
    }
}

/// True when the PEM bundle `bundle` holds the certificate `ca_pem`.
fn bundle_holds(bundle: &[u8], ca_pem: &[u8]) -> bool {
    let Ok(ca) = CertificateDer::from_pem_slice(ca_pem) else {
        return false;
    };
    CertificateDer::pem_slice_iter(bundle)
        .filter_map(Result::ok)
        .any(|cert| cert == ca)
}

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
