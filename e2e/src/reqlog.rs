//! The request log: every resource request with when it arrived and through which listener,
//! so a test can tell which process wrote what, and when.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests kept (the oldest are dropped past this; a 500-service run makes about 20 000).
const CAPACITY: usize = 1_000_000;

/// One resource request as the router saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Time since the server started.
    pub at: Duration,
    /// The listener it came through: `default`, or the name given to
    /// [`crate::TestApiServer::listen_as`] (one per process under test).
    pub client: String,
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    pub verb: String,
    /// Plural resource, with `/status` or `/scale` for a subresource.
    pub resource: String,
    /// Object name ("" for collections).
    pub name: String,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// The status code injected by a fault control, if any (the request then did nothing).
    pub injected: Option<u16>,
}

impl LoggedRequest {
    /// A mutation that reached the store (injected failures did not).
    pub fn is_write(&self) -> bool {
        self.injected.is_none()
            && matches!(
                self.verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
    }
}

/// The log behind [`crate::TestApiServer::request_log`].
pub struct RequestLog {
    started: Instant,
    entries: Mutex<Vec<LoggedRequest>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl RequestLog {
    /// Time since the server started (the clock of [`LoggedRequest::at`]).
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn push(&self, mut entry: LoggedRequest) {
        entry.at = self.now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.drain(..CAPACITY / 10);
        }
        entries.push(entry);
    }

    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
