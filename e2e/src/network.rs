//! Network faults: cutting one listener's clients off (refused or black-holed) and dropping
//! every open watch at a fixed interval.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

/// How a cut client's connections behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Open connections are closed and new ones closed at once (the client sees errors).
    Refuse,
    /// Connections stay open but nothing is read or answered (requests hang until they time
    /// out, as behind a dead route); when healed, those connections are closed.
    BlackHole,
}

/// Which listeners are cut, and the watch-dropping interval.
pub struct Network {
    cuts: watch::Sender<BTreeMap<String, Cut>>,
    drop_every: watch::Sender<Option<Duration>>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            cuts: watch::channel(BTreeMap::new()).0,
            drop_every: watch::channel(None).0,
        }
    }
}

impl Network {
    pub fn cut(&self, client: &str, how: Cut) {
        self.cuts.send_modify(|cuts| {
            cuts.insert(client.to_owned(), how);
        });
    }

    pub fn heal(&self, client: &str) {
        self.cuts.send_modify(|cuts| {
            cuts.remove(client);
        });
    }

    pub fn heal_all(&self) {
        self.cuts.send_modify(BTreeMap::clear);
        self.drop_every.send_replace(None);
    }

    /// How `client` is cut now, if it is.
    pub fn cut_of(&self, client: &str) -> Option<Cut> {
        self.cuts.borrow().get(client).copied()
    }

    /// Resolves with how `client` is cut, once it is.
    pub async fn until_cut(&self, client: &str) -> Cut {
        let mut rx = self.cuts.subscribe();
        loop {
            if let Some(how) = rx.borrow_and_update().get(client).copied() {
                return how;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Resolves once `client` is no longer cut.
    pub async fn until_healed(&self, client: &str) {
        let mut rx = self.cuts.subscribe();
        let _ = rx.wait_for(|cuts| !cuts.contains_key(client)).await;
    }

    pub fn set_drop_every(&self, every: Option<Duration>) {
        self.drop_every.send_replace(every);
    }

    /// Calls `drop_all` every interval set with [`Network::set_drop_every`], forever.
    pub async fn drop_watches_periodically(&self, drop_all: impl Fn()) {
        let mut rx = self.drop_every.subscribe();
        loop {
            let every = *rx.borrow_and_update();
            match every {
                None => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
                Some(every) => {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => drop_all(),
                        changed = rx.changed() => if changed.is_err() { return },
                    }
                }
            }
        }
    }
}
