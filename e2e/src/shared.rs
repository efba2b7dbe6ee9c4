//! The state every request handler shares: the object store, the test controls, the request
//! log, the network faults, the webhook Service map and the Deployment readiness setting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;

use crate::controls::{Controls, Readiness};
use crate::network::Network;
use crate::reqlog::RequestLog;
use crate::store::State;

/// Everything request handlers share.
pub struct Shared {
    state: Mutex<State>,
    pub controls: Controls,
    pub log: RequestLog,
    pub network: Network,
    services: Mutex<HashMap<(String, String, u16), SocketAddr>>,
    readiness: Mutex<Readiness>,
    pub gc_notify: tokio::sync::Notify,
    pub bookmark_interval: Duration,
}

impl Shared {
    pub fn new(log_capacity: usize, readiness: Readiness, bookmark_interval: Duration) -> Self {
        let shared = Self {
            state: Mutex::new(State::new(log_capacity)),
            controls: Controls::default(),
            log: RequestLog::default(),
            network: Network::default(),
            services: Mutex::new(HashMap::new()),
            readiness: Mutex::new(readiness),
            gc_notify: tokio::sync::Notify::new(),
            bookmark_interval,
        };
        seed(&mut shared.state());
        shared
    }

    /// Locks the object store (poisoning is ignored: state stays usable for tests).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn readiness(&self) -> Readiness {
        *self.readiness.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_readiness(&self, r: Readiness) {
        *self.readiness.lock().unwrap_or_else(|p| p.into_inner()) = r;
    }

    pub fn map_service(&self, ns: &str, name: &str, port: u16, addr: SocketAddr) {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((ns.into(), name.into(), port), addr);
    }

    pub fn service_addr(&self, ns: &str, name: &str, port: u16) -> Option<SocketAddr> {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(ns.to_string(), name.to_string(), port))
            .copied()
    }
}

/// Creates the namespaces every cluster has.
pub fn seed(st: &mut State) {
    let Some(info) = st.registry.find("", "v1", "namespaces") else {
        return;
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let body = json!({"metadata": {"name": ns}});
        if let Ok((obj, _)) = crate::lifecycle::prepare_create(
            st,
            &info,
            None,
            body,
            crate::lifecycle::FieldValidation::Ignore,
        ) {
            st.put(&info.key(), obj, crate::store::EventType::Added);
        }
    }
}
