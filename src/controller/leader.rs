//! Leader election on a `coordination.k8s.io` Lease: only the leader reconciles, and a leader
//! that loses the lease exits at once (restarting is the safe default against split brain).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lease timing, client-go's defaults: a lease is valid for 15 s after its last renewal; the
/// leader renews it every 5 s (10 s before it would expire) and gives up leading when it has
/// not renewed for the 10 s renew deadline, checking every 2 s. So a leader cut off from the
/// API server stops at most 10 s after its last renewal, 5 s before a standby may take over.
pub const LEASE_DURATION_SECONDS: u64 = 15;
const LEASE_GRACE_SECONDS: u64 = 10;
/// How long the leader keeps leading without a renewal it can confirm.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the watchdog reads the Lease, and how long one read may take.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// A running election.
pub struct Election {
    state: watch::Receiver<bool>,
    lease: Api<Lease>,
    name: String,
    identity: String,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for Lease `name` in `namespace` as `identity`.
    pub async fn join(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<Election, LeaseManagerError> {
        let client_for_watchdog = client.clone();
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_DURATION_SECONDS)
            .with_grace(LEASE_GRACE_SECONDS)
            .with_field_manager("mmf-operator-lease")
            .build()
            .await?;
        let (state, task) = manager.watch().await;
        Ok(Election {
            state,
            lease: Api::namespaced(client_for_watchdog, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            task,
        })
    }

    /// Resolves once this replica leads.
    pub async fn acquired(&mut self) {
        let _ = self.state.wait_for(|leader| *leader).await;
    }

    /// Resolves when leadership is lost: the election says so, or the watchdog cannot confirm
    /// it. kube-lease-manager keeps reporting leadership while renewals fail, so the watchdog
    /// reads the Lease itself and gives up as soon as another replica holds it, our last renewal
    /// is older than the lease duration, or the Lease has been unreadable for longer than a
    /// renewal may take.
    pub async fn lost(&mut self) {
        let state = &mut self.state;
        tokio::select! {
            _ = state.wait_for(|leader| !*leader) => {}
            reason = watchdog(&self.lease, &self.name, &self.identity) => {
                tracing::error!(%reason, "leadership can no longer be confirmed");
            }
        }
    }

    /// Releases the lease (so a standby takes over at once) and waits for the task.
    pub async fn release(self) {
        let Election { state, task, .. } = self;
        drop(state);
        match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "releasing the lease failed"),
            Ok(Err(error)) => tracing::warn!(%error, "lease task panicked"),
            Err(_) => tracing::warn!("releasing the lease timed out"),
        }
    }
}

/// Returns why leadership is no longer certain: another replica holds the Lease, or no renewal
/// newer than [`RENEW_DEADLINE`] can be confirmed (renewals failing, or the API server
/// unreachable or silent: each read is bounded by [`RETRY_PERIOD`], so a connection that hangs
/// cannot keep a leader leading).
async fn watchdog(lease: &Api<Lease>, name: &str, identity: &str) -> String {
    // When the last renewal we confirmed happened, on this process's clock.
    let mut renewed = Instant::now();
    let mut last_error = String::from("none");
    loop {
        let deadline = tokio::time::Instant::from_std(renewed + RENEW_DEADLINE);
        let read = async {
            tokio::time::sleep(RETRY_PERIOD).await;
            tokio::time::timeout(RETRY_PERIOD, lease.get(name)).await
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                return format!(
                    "no renewal of the lease for {:?}, past the {RENEW_DEADLINE:?} renew deadline (last error: {last_error})",
                    renewed.elapsed()
                );
            }
            result = read => match result {
                Ok(Ok(lease)) => {
                    let spec = lease.spec.unwrap_or_default();
                    if spec.holder_identity.as_deref() != Some(identity) {
                        return format!(
                            "the lease is now held by {:?}",
                            spec.holder_identity.unwrap_or_default()
                        );
                    }
                    if let Some(time) = spec.renew_time {
                        let age = Duration::try_from(Timestamp::now().duration_since(time.0))
                            .unwrap_or(Duration::ZERO);
                        if let Some(at) = Instant::now().checked_sub(age) {
                            renewed = renewed.max(at);
                        }
                    }
                }
                Ok(Err(error)) => last_error = error.to_string(),
                Err(_) => last_error = format!("reading the lease took longer than {RETRY_PERIOD:?}"),
            },
        }
    }
}
