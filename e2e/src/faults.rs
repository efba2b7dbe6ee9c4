//! [`Faults`], the public handle tests use to inject errors, latency, watch failures and
//! network cuts.

use std::sync::Arc;
use std::time::Duration;

use crate::controls::{Injected, WatchCtl, WriteFaults};
use crate::network::Cut;
use crate::shared::Shared;

/// Closes every open watch and counts it.
pub(crate) fn drop_all_watches(shared: &Shared) {
    shared.controls.count_watch_drop();
    let _ = shared.controls.watch_ctl.send(WatchCtl::Drop);
}

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
        drop_all_watches(&self.shared);
    }
    /// Closes every open watch every `every` from now on (None stops).
    pub fn drop_watches_every(&self, every: Option<Duration>) {
        self.shared.network.set_drop_every(every);
    }
    /// Fails a seeded share of writes, in rotation 500, 429 (`Retry-After: 1`) and 409
    /// (replacing an earlier rule; [`Self::clear`] removes it).
    pub fn write_faults(&self, rule: WriteFaults) {
        self.shared.controls.set_write_faults(rule);
    }
    /// The next `n` watches started (of `resource`, e.g. `deployments`, or of any with None)
    /// get `410 Gone` at once (their resourceVersion "expired"), so their clients must list
    /// again.
    pub fn expire_next_watches(&self, resource: Option<&str>, n: u64) {
        self.shared.controls.expire_next_watches(resource, n);
    }
    /// Cuts off the clients of listener `client` (see [`crate::TestApiServer::listen_as`]).
    pub fn cut(&self, client: &str, how: Cut) {
        self.shared.network.cut(client, how);
    }
    /// Ends a [`Self::cut`].
    pub fn heal(&self, client: &str) {
        self.shared.network.heal(client);
    }
    /// What the fault controls did: errors per code, watch drops, forced 410s.
    pub fn injected(&self) -> Injected {
        self.shared.controls.injected()
    }
    /// Compacts all history and ends open watches with `410 Gone`, forcing clients to relist.
    pub fn expire_watches(&self) {
        self.shared.state().compact_all();
        let _ = self.shared.controls.watch_ctl.send(WatchCtl::Expire);
    }
    /// Removes every injected fault (and zeroes [`Self::injected`]), heals every cut and stops
    /// periodic watch drops.
    pub fn clear(&self) {
        self.shared.controls.clear_faults();
        self.shared.network.heal_all();
    }
}
