//! Prometheus metrics of the controllers (the webhook registers its own on the same registry).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
        };
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
        metrics
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
