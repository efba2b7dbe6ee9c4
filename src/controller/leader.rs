//! Leader election on a `coordination.k8s.io` Lease: only the leader reconciles, and a leader
//! that loses the lease exits at once (restarting is the safe default against split brain).

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lease timing: 15 s validity, renewed 5 s before expiry.
pub const LEASE_DURATION_SECONDS: u64 = 15;
const LEASE_GRACE_SECONDS: u64 = 5;

/// A running election.
pub struct Election {
    state: watch::Receiver<bool>,
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
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_DURATION_SECONDS)
            .with_grace(LEASE_GRACE_SECONDS)
            .with_field_manager("mmf-operator-lease")
            .build()
            .await?;
        let (state, task) = manager.watch().await;
        Ok(Election { state, task })
    }

    /// Resolves once this replica leads.
    pub async fn acquired(&mut self) {
        let _ = self.state.wait_for(|leader| *leader).await;
    }

    /// Resolves when leadership is lost (or the election task stopped).
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leader| !*leader).await;
    }

    /// Releases the lease (so a standby takes over at once) and waits for the task.
    pub async fn release(self) {
        let Election { state, task } = self;
        drop(state);
        match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "releasing the lease failed"),
            Ok(Err(error)) => tracing::warn!(%error, "lease task panicked"),
            Err(_) => tracing::warn!("releasing the lease timed out"),
        }
    }
}
