//! [`Faults`], the public handle tests use to inject errors, latency and watch failures.

use std::sync::Arc;
use std::time::Duration;

use crate::controls::WatchCtl;
use crate::shared::Shared;

/// Test handle for injecting faults; cheap to clone.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Fails a fraction (`rate` in 0..=1, deterministic spacing) of matching requests with `code`.
    /// `None` matches any verb/resource.
    pub fn error_rate(&self, verb: Option<&str>, resource: Option<&str>, rate: f64, code: u16) {
        self.shared.controls.add_error(verb, resource, rate, code);
    }
    /// Delays matching requests.
    pub fn latency(&self, verb: Option<&str>, resource: Option<&str>, delay: Duration) {
        self.shared.controls.add_latency(verb, resource, delay);
    }
    /// The next `n` update/patch requests fail with 409 Conflict.
    pub fn conflicts(&self, n: u64) {
        self.shared.controls.add_conflicts(n);
    }
    /// Closes every open watch, as a load balancer dropping connections would.
    pub fn drop_watches(&self) {
        let _ = self.shared.controls.watch_ctl.send(WatchCtl::Drop);
    }
    /// Compacts all history and ends open watches with `410 Gone`, forcing clients to relist.
    pub fn expire_watches(&self) {
        self.shared.state().compact_all();
        let _ = self.shared.controls.watch_ctl.send(WatchCtl::Expire);
    }
    /// Removes every injected fault.
    pub fn clear(&self) {
        self.shared.controls.clear_faults();
    }
}
