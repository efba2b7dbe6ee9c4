//! Operator replicas the failover suites can tell apart and cut off, on either cluster.
//!
//! On the in-memory test server each replica gets a listener of its own (its request log names
//! the listener; its faults cut it). On a real control plane each gets a ServiceAccount of its
//! own (kube-apiserver's audit log, `MMF_E2E_AUDIT_LOG`, names the user) and reaches the API
//! server through a loopback TCP proxy of its own that the test can cut.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mmf_e2e::proxy::TcpProxy;
use mmf_e2e::{Cut, LoggedRequest};

use super::{Cluster, Operator, operator_args_in};

/// How the replicas reach the API server.
enum Wiring {
    Memory,
    Real {
        audit_log: PathBuf,
        /// Each replica's proxy, by replica name.
        proxies: BTreeMap<String, TcpProxy>,
        /// ClusterRoleBindings to delete at the end (cluster-scoped, so they would outlive the
        /// test's namespace).
        bindings: Vec<String>,
        admin: PathBuf,
    },
}

/// Replicas of `mmf run` leading through one Lease.
pub struct Replicas {
    namespace: String,
    wiring: Wiring,
}

impl Replicas {
    /// Replicas whose Lease lives in `namespace`. On a real cluster this needs the audit log
    /// `real-cluster run` names in `MMF_E2E_AUDIT_LOG`: without it, None (printing why), or a
    /// failure under `CI`.
    pub fn new(cluster: &Cluster, namespace: &str) -> Option<Replicas> {
        let wiring = if cluster.server.is_some() {
            Wiring::Memory
        } else {
            let Some(audit_log) = std::env::var_os("MMF_E2E_AUDIT_LOG") else {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "telling replicas apart on a real cluster needs its audit log: run through `real-cluster run`, which sets MMF_E2E_AUDIT_LOG"
                );
                println!("SKIPPED: MMF_E2E_AUDIT_LOG is unset (run through `real-cluster run`)");
                return None;
            };
            Wiring::Real {
                audit_log: PathBuf::from(audit_log),
                proxies: BTreeMap::new(),
                bindings: Vec::new(),
                admin: cluster.kubeconfig.clone(),
            }
        };
        Some(Replicas {
            namespace: namespace.to_owned(),
            wiring,
        })
    }

    /// Starts replica `name` with `extra` flags (after the shipped config and `--namespace`).
    pub fn start(&mut self, cluster: &Cluster, name: &str, extra: &[&str]) -> Operator {
        let kubeconfig = match &mut self.wiring {
            Wiring::Memory => cluster.listener_kubeconfig(name),
            Wiring::Real {
                proxies, bindings, ..
            } => {
                let namespace = &self.namespace;
                cluster.kubectl_ok(&["create", "serviceaccount", name, "-n", namespace]);
                let binding = format!("{namespace}-{name}");
                cluster.kubectl_ok(&[
                    "create",
                    "clusterrolebinding",
                    &binding,
                    "--clusterrole=cluster-admin",
                    &format!("--serviceaccount={namespace}:{name}"),
                ]);
                bindings.push(binding);
                let token = cluster.kubectl_ok(&[
                    "create",
                    "token",
                    name,
                    "-n",
                    namespace,
                    "--duration=1h",
                ]);
                let proxy = TcpProxy::start(upstream(cluster)).unwrap();
                let server = format!("https://{}", proxy.addr());
                proxies.insert(name.to_owned(), proxy);
                cluster.token_kubeconfig_at(token.trim(), name, Some(&server))
            }
        };
        cluster.operator_at(&kubeconfig, &operator_args_in(&self.namespace, extra), &[])
    }

    /// Now, on the clock of [`Replicas::request_log`]'s `at`.
    pub fn clock(&self, cluster: &Cluster) -> Duration {
        match &self.wiring {
            Wiring::Memory => cluster.server.as_ref().unwrap().log_clock(),
            Wiring::Real { .. } => mmf_e2e::real::audit::now(),
        }
    }

    /// Every request so far; `client` is the replica's name for the replicas' requests.
    pub fn request_log(&self, cluster: &Cluster) -> Vec<LoggedRequest> {
        match &self.wiring {
            Wiring::Memory => cluster.server.as_ref().unwrap().request_log(),
            Wiring::Real { audit_log, .. } => {
                let prefix = format!("system:serviceaccount:{}:", self.namespace);
                let mut log = mmf_e2e::real::audit::read(audit_log).unwrap();
                for request in &mut log {
                    if let Some(name) = request.client.strip_prefix(&prefix) {
                        request.client = name.to_owned();
                    }
                }
                log
            }
        }
    }

    /// Cuts replica `name` off from the API server.
    pub fn cut(&self, cluster: &Cluster, name: &str, how: Cut) {
        match &self.wiring {
            Wiring::Memory => cluster.server.as_ref().unwrap().faults().cut(name, how),
            Wiring::Real { proxies, .. } => proxies[name].cut(how),
        }
    }

    /// Lets replica `name` reach the API server again.
    pub fn heal(&self, cluster: &Cluster, name: &str) {
        match &self.wiring {
            Wiring::Memory => cluster.server.as_ref().unwrap().faults().heal(name),
            Wiring::Real { proxies, .. } => proxies[name].heal(),
        }
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        if let Wiring::Real {
            bindings, admin, ..
        } = &self.wiring
        {
            for binding in bindings {
                let _ = delete_binding(admin, binding);
            }
        }
    }
}

fn delete_binding(admin: &Path, binding: &str) -> std::io::Result<std::process::Output> {
    std::process::Command::new("kubectl")
        .args([
            "delete",
            "clusterrolebinding",
            binding,
            "--ignore-not-found",
            "--wait=false",
        ])
        .env("KUBECONFIG", admin)
        .output()
}

/// The API server's address, from the admin kubeconfig (`https://127.0.0.1:PORT`).
fn upstream(cluster: &Cluster) -> std::net::SocketAddr {
    let server = cluster.kubectl_ok(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let address = server.trim().strip_prefix("https://").unwrap();
    let address: std::net::SocketAddr = address.trim_end_matches('/').parse().unwrap();
    assert!(
        address.ip().is_loopback(),
        "tests dial loopback only: {server}"
    );
    address
}
