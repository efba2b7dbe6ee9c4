//! What every reconcile shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use super::caches::Caches;
use super::metrics::Metrics;
use crate::config::SharedConfig;

/// Shared by both controllers. Cheap to clone behind an `Arc`.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Current environment config (reloaded from disk).
    pub config: Arc<SharedConfig>,
    /// Watch caches: plugins, namespaces, owned children.
    pub caches: Arc<Caches>,
    /// events.k8s.io publisher.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per object, for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// Publishes an event; failures are logged, never fatal (events are best effort).
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}
