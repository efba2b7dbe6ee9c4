//! The API server a scenario runs against: a fresh one per run, so runs never see each other.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use mmf_e2e::real::ControlPlane;
use mmf_e2e::{Stats, TestApiServer};

use crate::scenarios::BenchError;

/// Which API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServerKind {
    /// The in-memory test API server (counts every request by client).
    Memory,
    /// The real control plane (kube-apiserver, etcd, kwok) built by e2e/control-plane/build.sh.
    Real,
}

enum Backend {
    Memory(TestApiServer),
    /// Held so the processes run until the cluster is dropped.
    Real {
        _plane: ControlPlane,
    },
}

/// A running API server with the CRDs installed.
pub struct Cluster {
    /// Taken on drop, so the processes stop before their directory goes.
    backend: Option<Backend>,
    /// Admin client for the bench itself.
    pub client: kube::Client,
    /// Kubeconfig the operator and `mmf` use.
    pub kubeconfig: PathBuf,
    dir: PathBuf,
}

/// The repository root (the CRDs, the shipped config).
pub fn repo() -> PathBuf {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR"));
    e2e.parent().unwrap_or(e2e).to_path_buf()
}

impl Cluster {
    /// Starts a fresh server of `kind` with its scratch files under a new temp directory.
    pub async fn start(kind: ServerKind, label: &str) -> Result<Cluster, BenchError> {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("mmf-bench-{}-{run}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
        let kubeconfig = dir.join("kubeconfig");
        let (backend, client) = match kind {
            ServerKind::Memory => {
                let server = TestApiServer::start()
                    .await
                    .map_err(|e| BenchError::Server(e.to_string()))?;
                server
                    .write_kubeconfig(&kubeconfig)
                    .map_err(|e| BenchError::Server(e.to_string()))?;
                let client = server
                    .client()
                    .await
                    .map_err(|e| BenchError::Server(e.to_string()))?;
                (Backend::Memory(server), client)
            }
            ServerKind::Real => {
                let plane = ControlPlane::start(&dir.join("control-plane"))
                    .await
                    .map_err(|e| BenchError::Server(e.to_string()))?;
                std::fs::copy(plane.kubeconfig(), &kubeconfig)
                    .map_err(|e| BenchError::io(&kubeconfig, e))?;
                let client = plane
                    .client()
                    .await
                    .map_err(|e| BenchError::Server(e.to_string()))?;
                (Backend::Real { _plane: plane }, client)
            }
        };
        let cluster = Cluster {
            backend: Some(backend),
            client,
            kubeconfig,
            dir,
        };
        cluster.install_crds().await?;
        Ok(cluster)
    }

    /// Scratch directory of this run (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Request counts by client, on the in-memory server only (a real kube-apiserver does not
    /// count per client).
    pub fn stats(&self) -> Option<Stats> {
        match &self.backend {
            Some(Backend::Memory(server)) => Some(server.stats()),
            _ => None,
        }
    }

    /// Zeroes the counters (in-memory server only).
    pub fn reset_stats(&self) {
        if let Some(Backend::Memory(server)) = &self.backend {
            server.reset_stats();
        }
    }

    /// Creates `name` in environment `environment` (the namespace label).
    pub async fn namespace(&self, name: &str, environment: &str) -> Result<(), BenchError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    [(
                        "mmf.marty.dev/environment".to_owned(),
                        environment.to_owned(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &namespace)
            .await
            .map_err(|e| BenchError::api(format!("creating namespace {name}"), e))?;
        Ok(())
    }

    async fn install_crds(&self) -> Result<(), BenchError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let crds = repo().join("crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&crds)
            .map_err(|e| BenchError::io(&crds, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut names = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| BenchError::io(&file, e))?;
            let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
                .map_err(|e| BenchError::Input(format!("{}: {e}", file.display())))?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("mmf-bench").force(),
                &Patch::Apply(&crd),
            )
            .await
            .map_err(|e| BenchError::api(format!("applying CRD {name}"), e))?;
            names.push(name);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in names {
            loop {
                let crd = api
                    .get(&name)
                    .await
                    .map_err(|e| BenchError::api(format!("reading CRD {name}"), e))?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(BenchError::Timeout(format!("CRD {name} to be established")));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.backend.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
