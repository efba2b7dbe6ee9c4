//! Prometheus metrics of the controllers (the webhook registers its own on the same registry),
//! the per-plugin gauges, and the counted signature verdict cache both share.
//!
//! Cardinality is bounded by the objects, never by pods or requests: one series per plugin
//! (and state), per service and plugin (and state); the series of a deleted plugin or service
//! are removed ([`Metrics::forget_deleted`]), not left at their last value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use kube::runtime::reflector::ObjectRef;

use super::caches::Caches;
use crate::api::PluginLoadState;
use crate::audit::AuditLog;
use crate::core::audit::load_state;
use crate::core::status::PluginState;
pub use crate::verdicts::SignatureVerdicts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginInfoLabels {
    namespace: String,
    plugin: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginStateLabels {
    namespace: String,
    environment: String,
    plugin: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServicePluginLabels {
    namespace: String,
    service: String,
    plugin: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    namespace: String,
    plugin: String,
}

/// `(namespace, name)`.
type Key = (String, String);

/// The label values last written per object, to remove exactly those series later.
#[derive(Debug, Default)]
struct Book {
    /// Plugin -> (version, environment).
    plugins: HashMap<Key, (String, String)>,
    /// Service -> the state of each plugin it requests.
    services: HashMap<Key, BTreeMap<String, PluginLoadState>>,
}

/// How often the series of deleted plugins and services are removed.
pub const FORGET_INTERVAL: Duration = Duration::from_secs(5);

/// Removes the series of plugins and services no longer in the caches, every `every`, until
/// aborted (reconcile never runs for a deleted object, so nothing else would).
pub async fn forget_deleted_every(metrics: Arc<Metrics>, caches: Arc<Caches>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        metrics.forget_deleted(
            |namespace, name| {
                caches
                    .plugins
                    .get(&ObjectRef::new(name).within(namespace))
                    .is_some()
            },
            |namespace, name| {
                caches
                    .services
                    .get(&ObjectRef::new(name).within(namespace))
                    .is_some()
            },
        );
    }
}

const LOAD_STATES: [PluginLoadState; 3] = [
    PluginLoadState::Loaded,
    PluginLoadState::Skipped,
    PluginLoadState::Rejected,
];

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Counters and gauges, shared by both controllers.
pub struct Metrics {
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    applies: Family<KindLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    /// 1 while this replica holds the lease.
    pub leader: Gauge,
    plugin_info: Family<PluginInfoLabels, Gauge>,
    plugin_state: Family<PluginStateLabels, Gauge>,
    service_plugins: Family<ServicePluginLabels, Gauge>,
    plugin_services: Family<PluginLabels, Gauge>,
    book: Mutex<Book>,
    /// Audit records (counted as `mmf_audit_records_total`).
    pub audit: AuditLog,
    /// The signature verdict cache, shared by the controllers and the webhook.
    pub signatures: Arc<SignatureVerdicts>,
}

impl Metrics {
    /// Registers every metric under the `mmf` prefix; `queue_depth` is the caches' gauge of
    /// triggers not yet picked up.
    pub fn register(registry: &mut Registry, queue_depth: Gauge) -> Metrics {
        let metrics = Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            applies: Family::default(),
            reloads: Family::default(),
            leader: Gauge::default(),
            plugin_info: Family::default(),
            plugin_state: Family::default(),
            service_plugins: Family::default(),
            plugin_services: Family::default(),
            book: Mutex::new(Book::default()),
            audit: AuditLog::default(),
            signatures: Arc::new(SignatureVerdicts::default()),
        };
        metrics.audit.register(registry);
        metrics.signatures.register(registry);
        let registry = registry.sub_registry_with_prefix("mmf");
        registry.register(
            "reconciles",
            "Reconciliations run, per controller",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, per controller and error",
            metrics.errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            metrics.duration.clone(),
        );
        registry.register(
            "child_applies",
            "Server-side applies of owned objects, per kind",
            metrics.applies.clone(),
        );
        registry.register(
            "config_reloads",
            "Environment config reloads, per result",
            metrics.reloads.clone(),
        );
        registry.register(
            "queue_depth",
            "Reconcile triggers waiting for a controller",
            queue_depth,
        );
        registry.register(
            "leader",
            "1 while this replica is the leader",
            metrics.leader.clone(),
        );
        registry.register(
            "plugin_info",
            "1 per MmfPlugin, with its version",
            metrics.plugin_info.clone(),
        );
        registry.register(
            "plugin_state",
            "1 for the plugin's current state in its environment, 0 for the others",
            metrics.plugin_state.clone(),
        );
        registry.register(
            "service_plugins",
            "1 for the current state (loaded, skipped, rejected) of a plugin a service requests, 0 for the others",
            metrics.service_plugins.clone(),
        );
        registry.register(
            "plugin_services",
            "Number of services that load the plugin",
            metrics.plugin_services.clone(),
        );
        metrics
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A plugin was judged: its version and its state in `environment`.
    pub fn plugin_observed(
        &self,
        namespace: &str,
        plugin: &str,
        version: &str,
        environment: &str,
        state: PluginState,
    ) {
        let key = (namespace.to_owned(), plugin.to_owned());
        let mut book = self.book();
        let current = (version.to_owned(), environment.to_owned());
        if let Some(previous) = book.plugins.insert(key.clone(), current)
            && (previous.0 != version || previous.1 != environment)
        {
            self.remove_plugin_series(&key, &previous);
        }
        self.plugin_info
            .get_or_create(&PluginInfoLabels {
                namespace: key.0.clone(),
                plugin: key.1.clone(),
                version: version.to_owned(),
            })
            .set(1);
        for each in PluginState::ALL {
            self.plugin_state
                .get_or_create(&PluginStateLabels {
                    namespace: key.0.clone(),
                    environment: environment.to_owned(),
                    plugin: key.1.clone(),
                    state: each.as_str().to_owned(),
                })
                .set(i64::from(each == state));
        }
        self.count_services(&book, &key);
    }

    /// A service was judged: the state of each plugin it requests.
    pub fn service_observed(
        &self,
        namespace: &str,
        service: &str,
        plugins: impl IntoIterator<Item = (String, PluginLoadState)>,
    ) {
        let key = (namespace.to_owned(), service.to_owned());
        let next: BTreeMap<String, PluginLoadState> = plugins.into_iter().collect();
        let mut book = self.book();
        let previous = book
            .services
            .insert(key.clone(), next.clone())
            .unwrap_or_default();
        for plugin in previous.keys().filter(|p| !next.contains_key(*p)) {
            self.remove_service_plugin(&key, plugin);
        }
        for (plugin, state) in &next {
            for each in LOAD_STATES {
                self.service_plugins
                    .get_or_create(&ServicePluginLabels {
                        namespace: key.0.clone(),
                        service: key.1.clone(),
                        plugin: plugin.clone(),
                        state: load_state(each).to_owned(),
                    })
                    .set(i64::from(each == *state));
            }
        }
        let touched: BTreeSet<&String> = previous.keys().chain(next.keys()).collect();
        for plugin in touched {
            self.count_services(&book, &(key.0.clone(), plugin.clone()));
        }
    }

    /// Removes every series of plugins and services for which `exists` is false.
    pub fn forget_deleted(
        &self,
        plugin_exists: impl Fn(&str, &str) -> bool,
        service_exists: impl Fn(&str, &str) -> bool,
    ) {
        let mut book = self.book();
        let gone_plugins: Vec<Key> = book
            .plugins
            .keys()
            .filter(|(ns, name)| !plugin_exists(ns, name))
            .cloned()
            .collect();
        let gone_services: Vec<Key> = book
            .services
            .keys()
            .filter(|(ns, name)| !service_exists(ns, name))
            .cloned()
            .collect();
        let mut touched: BTreeSet<Key> = BTreeSet::new();
        for key in gone_plugins {
            if let Some(previous) = book.plugins.remove(&key) {
                self.remove_plugin_series(&key, &previous);
            }
            touched.insert(key);
        }
        for key in gone_services {
            for plugin in book.services.remove(&key).unwrap_or_default().into_keys() {
                self.remove_service_plugin(&key, &plugin);
                touched.insert((key.0.clone(), plugin));
            }
        }
        for key in touched {
            self.count_services(&book, &key);
        }
    }

    fn remove_plugin_series(&self, key: &Key, (version, environment): &(String, String)) {
        self.plugin_info.remove(&PluginInfoLabels {
            namespace: key.0.clone(),
            plugin: key.1.clone(),
            version: version.clone(),
        });
        for each in PluginState::ALL {
            self.plugin_state.remove(&PluginStateLabels {
                namespace: key.0.clone(),
                environment: environment.clone(),
                plugin: key.1.clone(),
                state: each.as_str().to_owned(),
            });
        }
    }

    fn remove_service_plugin(&self, service: &Key, plugin: &str) {
        for each in LOAD_STATES {
            self.service_plugins.remove(&ServicePluginLabels {
                namespace: service.0.clone(),
                service: service.1.clone(),
                plugin: plugin.to_owned(),
                state: load_state(each).to_owned(),
            });
        }
    }

    /// `mmf_plugin_services` of one plugin: present while the plugin exists or a service
    /// requests it.
    fn count_services(&self, book: &Book, plugin: &Key) {
        let labels = PluginLabels {
            namespace: plugin.0.clone(),
            plugin: plugin.1.clone(),
        };
        let requesting = book
            .services
            .iter()
            .filter(|((ns, _), _)| *ns == plugin.0)
            .filter_map(|(_, plugins)| plugins.get(&plugin.1));
        let mut requested = false;
        let mut loaded = 0;
        for state in requesting {
            requested = true;
            loaded += i64::from(*state == PluginLoadState::Loaded);
        }
        if requested || book.plugins.contains_key(plugin) {
            self.plugin_services.get_or_create(&labels).set(loaded);
        } else {
            self.plugin_services.remove(&labels);
        }
    }

    /// One finished reconciliation.
    pub fn reconciled(&self, controller: &str, elapsed: Duration, error: Option<&'static str>) {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller: controller.to_owned(),
                    error: error.to_owned(),
                })
                .inc();
        }
    }

    /// One server-side apply of a child.
    pub fn child_applied(&self, kind: &str) {
        self.applies
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// One config reload attempt.
    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
