//! Leader election on a `coordination.k8s.io` Lease: only the leader reconciles, and a leader
//! that loses the lease exits at once (restarting is the safe default against split brain).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lease timing: 15 s validity, renewed 5 s before expiry.
pub const LEASE_DURATION_SECONDS: u64 = 15;
const LEASE_GRACE_SECONDS: u64 = 5;

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

/// Returns why leadership is no longer certain.
async fn watchdog(lease: &Api<Lease>, name: &str, identity: &str) -> String {
    let unconfirmed_limit = Duration::from_secs(LEASE_DURATION_SECONDS - LEASE_GRACE_SECONDS);
    let mut last_confirmed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match lease.get(name).await {
            Ok(lease) => {
                let spec = lease.spec.unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(identity) {
                    return format!(
                        "the lease is now held by {:?}",
                        spec.holder_identity.unwrap_or_default()
                    );
                }
                if let Some(renewed) = spec.renew_time {
                    let age = Timestamp::now().duration_since(renewed.0);
                    if age.as_secs() > LEASE_DURATION_SECONDS as i64 {
                        return format!("the lease was last renewed {}s ago", age.as_secs());
                    }
                }
                last_confirmed = Instant::now();
            }
            Err(error) if last_confirmed.elapsed() > unconfirmed_limit => {
                return format!(
                    "the lease has been unreadable for {:?}: {error}",
                    last_confirmed.elapsed()
                );
            }
            Err(_) => {}
        }
    }
}
