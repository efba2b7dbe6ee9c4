//! Test controls: request counting (writes per reconcile) and fault injection (error rules,
//! seeded write faults, latency, conflicts, forced `410 Gone`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;

/// What a request was, for counting.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// Plural resource (with `/status` for the subresource); empty for discovery/openapi.
    pub resource: String,
    /// `User-Agent` header (kubectl, Helm, kube-rs clients set distinct ones).
    pub user_agent: String,
    /// `fieldManager` query parameter, if any.
    pub field_manager: String,
}

impl RequestKey {
    /// Whether the verb mutates state (what "writes per reconcile" counts).
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// A snapshot of request counts since start or the last reset.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Count per distinct request kind.
    pub counts: BTreeMap<RequestKey, u64>,
}

impl Stats {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
    /// Requests with this verb (any resource).
    pub fn verb(&self, verb: &str) -> u64 {
        self.sum(|k| k.verb == verb)
    }
    /// Requests with this verb on this resource (`deployments`, `widgets/status`).
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.sum(|k| k.verb == verb && k.resource == resource)
    }
    /// All mutating requests.
    pub fn writes(&self) -> u64 {
        self.sum(RequestKey::is_write)
    }
    /// Mutating requests whose user agent starts with `who` or whose fieldManager is `who`:
    /// the "writes per reconcile" figure for one controller.
    pub fn writes_by(&self, who: &str) -> u64 {
        self.sum(|k| k.is_write() && (k.user_agent.starts_with(who) || k.field_manager == who))
    }
    /// Mutating requests on `resource` (`deployments`, `configmaps`) by `who` (as in
    /// [`Stats::writes_by`]): how many times one controller wrote one kind.
    pub fn writes_to(&self, resource: &str, who: &str) -> u64 {
        self.sum(|k| {
            k.is_write()
                && k.resource == resource
                && (k.user_agent.starts_with(who) || k.field_manager == who)
        })
    }
    /// Every distinct `User-Agent` seen, sorted.
    pub fn user_agents(&self) -> Vec<String> {
        let agents: std::collections::BTreeSet<&str> =
            self.counts.keys().map(|k| k.user_agent.as_str()).collect();
        agents.into_iter().map(str::to_owned).collect()
    }
    fn sum(&self, f: impl Fn(&RequestKey) -> bool) -> u64 {
        self.counts
            .iter()
            .filter(|(k, _)| f(k))
            .map(|(_, v)| v)
            .sum()
    }
}

#[derive(Clone, Debug)]
struct ErrorRule {
    verb: Option<String>,
    resource: Option<String>,
    rate: f64,
    code: u16,
    seen: u64,
}

#[derive(Clone, Debug)]
struct LatencyRule {
    verb: Option<String>,
    resource: Option<String>,
    delay: Duration,
}

/// A seeded share of writes that fail, in rotation `500`, `429` (with `Retry-After: 1`) and
/// `409`, so a run with the same seed and the same requests fails the same ones.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteFaults {
    /// Share of matching writes that fail, in 0..=1.
    pub rate: f64,
    /// Seed of the generator that picks them.
    pub seed: u64,
    /// Only writes whose `User-Agent` starts with this fail (None: every write).
    pub user_agent: Option<String>,
}

/// The codes [`WriteFaults`] rotates through.
pub const WRITE_FAULT_CODES: [u16; 3] = [500, 429, 409];

struct WriteFaultState {
    rule: WriteFaults,
    rng: u64,
    next: usize,
}

impl WriteFaultState {
    /// splitmix64: small, seeded and the same on every platform.
    fn next_unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn decide(&mut self, key: &RequestKey) -> Option<u16> {
        if !key.is_write()
            || self
                .rule
                .user_agent
                .as_ref()
                .is_some_and(|agent| !key.user_agent.starts_with(agent.as_str()))
        {
            return None;
        }
        if self.next_unit() >= self.rule.rate {
            return None;
        }
        let code = WRITE_FAULT_CODES[self.next % WRITE_FAULT_CODES.len()];
        self.next += 1;
        Some(code)
    }
}

/// What the fault controls have done since start or the last [`Controls::clear_faults`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// Requests failed on purpose, per status code.
    pub errors: BTreeMap<u16, u64>,
    /// Times every open watch was dropped.
    pub watch_drops: u64,
    /// Watches answered with `410 Gone` on purpose.
    pub gone: u64,
}

#[derive(Default)]
struct Inner {
    stats: Stats,
    errors: Vec<ErrorRule>,
    latency: Vec<LatencyRule>,
    conflicts: u64,
    write_faults: Option<WriteFaultState>,
    /// One entry per upcoming watch to answer 410: of this resource, or of any (None).
    forced_gone: Vec<Option<String>>,
    injected: Injected,
}

/// When simulated Deployments become ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Never ready: status stays "progressing, unavailable" (tests of not-ready paths).
    Never,
    /// Ready this long after each spec change (`Duration::ZERO` = as soon as possible).
    After(Duration),
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::After(Duration::from_millis(200))
    }
}

/// Signals sent to open watches.
#[derive(Clone, Copy, Debug)]
pub enum WatchCtl {
    /// Close every open watch stream (the client sees the connection end).
    Drop,
    /// Send `ERROR 410 Expired` on every open watch and close it.
    Expire,
}

/// Shared state behind [`crate::Faults`] and the stats accessors.
pub struct Controls {
    inner: Mutex<Inner>,
    pub watch_ctl: broadcast::Sender<WatchCtl>,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            watch_ctl: broadcast::channel(64).0,
        }
    }
}

fn matches(rule_verb: &Option<String>, rule_res: &Option<String>, key: &RequestKey) -> bool {
    rule_verb.as_ref().is_none_or(|v| *v == key.verb)
        && rule_res.as_ref().is_none_or(|r| {
            *r == key.resource || key.resource.split('/').next() == Some(r.as_str())
        })
}

impl Controls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request and decides its injected delay and error code.
    pub fn on_request(&self, key: RequestKey) -> (Option<Duration>, Option<u16>) {
        let mut inner = self.lock();
        let delay = inner
            .latency
            .iter()
            .filter(|r| matches(&r.verb, &r.resource, &key))
            .map(|r| r.delay)
            .max();
        let mut code = None;
        for r in inner.errors.iter_mut() {
            if matches(&r.verb, &r.resource, &key) {
                let before = (r.seen as f64 * r.rate).floor();
                r.seen += 1;
                let after = (r.seen as f64 * r.rate).floor();
                if after > before {
                    code = Some(r.code);
                    break;
                }
            }
        }
        if code.is_none() && inner.conflicts > 0 && matches!(key.verb.as_str(), "update" | "patch")
        {
            inner.conflicts -= 1;
            code = Some(409);
        }
        if code.is_none()
            && let Some(state) = inner.write_faults.as_mut()
        {
            code = state.decide(&key);
        }
        if let Some(code) = code {
            *inner.injected.errors.entry(code).or_insert(0) += 1;
        }
        *inner.stats.counts.entry(key).or_insert(0) += 1;
        (delay, code)
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.lock().stats = Stats::default();
    }

    pub fn add_error(&self, verb: Option<&str>, resource: Option<&str>, rate: f64, code: u16) {
        self.lock().errors.push(ErrorRule {
            verb: verb.map(String::from),
            resource: resource.map(String::from),
            rate: rate.clamp(0.0, 1.0),
            code,
            seen: 0,
        });
    }

    pub fn add_latency(&self, verb: Option<&str>, resource: Option<&str>, delay: Duration) {
        self.lock().latency.push(LatencyRule {
            verb: verb.map(String::from),
            resource: resource.map(String::from),
            delay,
        });
    }

    pub fn add_conflicts(&self, n: u64) {
        self.lock().conflicts += n;
    }

    pub fn set_write_faults(&self, rule: WriteFaults) {
        let rng = rule.seed;
        self.lock().write_faults = Some(WriteFaultState {
            rule: WriteFaults {
                rate: rule.rate.clamp(0.0, 1.0),
                ..rule
            },
            rng,
            next: 0,
        });
    }

    pub fn expire_next_watches(&self, resource: Option<&str>, n: u64) {
        let mut inner = self.lock();
        for _ in 0..n {
            inner.forced_gone.push(resource.map(str::to_owned));
        }
    }

    /// Whether this new watch of `resource` must be answered with `410 Gone` (counts it).
    pub fn take_forced_gone(&self, resource: &str) -> bool {
        let mut inner = self.lock();
        let Some(at) = inner
            .forced_gone
            .iter()
            .position(|r| r.as_deref().is_none_or(|r| r == resource))
        else {
            return false;
        };
        inner.forced_gone.remove(at);
        inner.injected.gone += 1;
        true
    }

    pub fn count_watch_drop(&self) {
        self.lock().injected.watch_drops += 1;
    }

    pub fn injected(&self) -> Injected {
        self.lock().injected.clone()
    }

    pub fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.errors.clear();
        inner.latency.clear();
        inner.conflicts = 0;
        inner.write_faults = None;
        inner.forced_gone.clear();
        inner.injected = Injected::default();
    }
}
