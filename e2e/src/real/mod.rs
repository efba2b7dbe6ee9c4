//! A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC and the default
//! admission plugins on), kube-controller-manager, kube-scheduler and the kwok controller with
//! fake nodes, each a plain child process compiled from Go modules by
//! `e2e/control-plane/build.sh`. Dropping a [`ControlPlane`] stops every process (also while a
//! test panics), newest first.
//!
//! Everything listens on 127.0.0.1 with free-picked ports; nothing is configured to dial any
//! other address (no service-based webhooks, no aggregated APIs, no kubelet connections).

pub mod audit;
mod pki;
mod process;
mod wait;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use pki::Pki;
pub use process::{Component, log_tail};

/// Binaries (and kwok's stage file) the control plane needs, in start order.
pub const BINARIES: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kwok-stages.yaml",
];

/// Names of the fake nodes kwok manages.
pub const NODE_NAMES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

/// The range of ClusterIPs (never dialled: there is no kube-proxy).
const SERVICE_CIDR: &str = "10.96.0.0/16";

/// Why the control plane could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// The binaries have not been built (or not into the directory looked in).
    #[error(
        "the real control plane is not built: {} is missing; build it with `bash e2e/control-plane/build.sh` (the first build takes 20-40 minutes on 2 cores)",
        .0.display()
    )]
    NotBuilt(PathBuf),
    /// `build.sh --print` could not be run to find the binary directory.
    #[error("finding the control-plane binaries with {script}: {reason}")]
    Locate {
        /// The build script.
        script: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A binary could not be started.
    #[error("starting {}: {source}", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A component exited while it should be running.
    #[error("{component} exited ({status}); its log {} ends with:\n{tail}", log.display())]
    Exited {
        /// The component.
        component: &'static str,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// A component did not become ready in time.
    #[error("{component} was not ready after {seconds} s: {last}; its log is {}", log.display())]
    NotReady {
        /// The component.
        component: &'static str,
        /// How long we waited.
        seconds: u64,
        /// The last answer or error seen.
        last: String,
        /// Its log file.
        log: PathBuf,
    },
    /// A line of the audit log is not an audit event.
    #[error("{}:{line}: not an audit event: {reason}", path.display())]
    Audit {
        /// The audit log.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Pki(String),
    /// The kube client could not be built or a request failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The error.
        source: kube::Error,
    },
}

impl RealError {
    fn io(path: &Path, source: std::io::Error) -> RealError {
        RealError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The directory holding the built binaries: `MMF_CONTROL_PLANE_BIN` when set, otherwise the
/// cache directory that `e2e/control-plane/build.sh --print` names (the script owns the
/// versions, so the key is computed in one place).
pub fn binary_dir() -> Result<PathBuf, RealError> {
    if let Some(dir) = std::env::var_os("MMF_CONTROL_PLANE_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/build.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg("--print")
        .output()
        .map_err(|e| RealError::Locate {
            script: script.clone(),
            reason: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(RealError::Locate {
            script,
            reason: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// Checks that every binary is there; the error names the first missing one and the fix.
pub fn check_built(bin: &Path) -> Result<(), RealError> {
    for name in BINARIES {
        let path = bin.join(name);
        if !path.is_file() {
            return Err(RealError::NotBuilt(path));
        }
    }
    Ok(())
}

/// A running control plane; every process stops when this is dropped.
pub struct ControlPlane {
    dir: PathBuf,
    url: String,
    /// Start order; stopped in reverse.
    components: Vec<Component>,
    /// How long each component took to become ready.
    pub startup: Vec<(&'static str, Duration)>,
}

impl ControlPlane {
    /// Starts the whole chain under `dir` (certificates, data, logs, `kubeconfig`) and returns
    /// once the fake nodes are Ready and schedulable.
    pub async fn start(dir: &Path) -> Result<ControlPlane, RealError> {
        crate::tls::install_crypto_provider();
        let bin = binary_dir()?;
        check_built(&bin)?;
        std::fs::create_dir_all(dir).map_err(|e| RealError::io(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| RealError::io(dir, e))?;
        let pki = pki::write(&dir)?;
        let mut plane = ControlPlane {
            url: String::new(),
            dir: dir.clone(),
            components: Vec::new(),
            startup: Vec::new(),
        };
        let p = |path: &Path| path.display().to_string();

        let started = Instant::now();
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        plane.spawn(
            "etcd",
            &bin,
            vec![
                "--name=node0".into(),
                format!("--data-dir={}", p(&dir.join("etcd"))),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=node0={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--auto-compaction-retention=1".into(),
                "--quota-backend-bytes=4294967296".into(),
                "--log-level=warn".into(),
            ],
        )?;
        wait::etcd(&mut plane.components[0], &etcd_url).await?;
        plane.startup.push(("etcd", started.elapsed()));

        let started = Instant::now();
        let api_port = free_port()?;
        plane.url = format!("https://127.0.0.1:{api_port}");
        let audit = audit::flags(&dir)?;
        plane.spawn(
            "kube-apiserver",
            &bin,
            [
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                "--advertise-address=127.0.0.1".into(),
                "--endpoint-reconciler-type=none".into(),
                format!("--cert-dir={}", p(&dir.join("apiserver-certs"))),
                format!("--tls-cert-file={}", p(&pki.serving_cert)),
                format!("--tls-private-key-file={}", p(&pki.serving_key)),
                format!("--client-ca-file={}", p(&pki.ca_cert)),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p(&pki.sa_pub)),
                format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--authorization-mode=RBAC".into(),
                // On top of the defaults: the strictest owner-reference check clusters run
                // (OpenShift does), so the chart's RBAC is proven against it too.
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement".into(),
                "--allow-privileged=true".into(),
                "--profiling=false".into(),
            ]
            .into_iter()
            .chain(audit)
            .collect(),
        )?;
        let kubeconfig = write_kubeconfig(&dir, &plane.url, &pki)?;
        let admin = plane.client().await?;
        wait::apiserver(&mut plane.components[1], &admin).await?;
        plane.startup.push(("kube-apiserver", started.elapsed()));

        let started = Instant::now();
        let kcm_port = free_port()?;
        let always_allow = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics";
        let serving = [
            format!("--tls-cert-file={}", p(&pki.serving_cert)),
            format!("--tls-private-key-file={}", p(&pki.serving_key)),
        ];
        let mut kcm_args = vec![
            format!("--kubeconfig={}", p(&kubeconfig)),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm_port}"),
            always_allow.into(),
            "--leader-elect=false".into(),
            format!("--root-ca-file={}", p(&pki.ca_cert)),
            format!("--service-account-private-key-file={}", p(&pki.sa_key)),
            format!("--cluster-signing-cert-file={}", p(&pki.ca_cert)),
            format!("--cluster-signing-key-file={}", p(&pki.ca_key)),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            // Fast garbage collection and namespace cleanup in tests.
            "--concurrent-gc-syncs=5".into(),
        ];
        kcm_args.extend(serving.iter().cloned());
        plane.spawn("kube-controller-manager", &bin, kcm_args)?;
        let sched_port = free_port()?;
        let mut sched_args = vec![
            format!("--kubeconfig={}", p(&kubeconfig)),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={sched_port}"),
            always_allow.into(),
            "--leader-elect=false".into(),
        ];
        sched_args.extend(serving.iter().cloned());
        plane.spawn("kube-scheduler", &bin, sched_args)?;
        let ca = std::fs::read(&pki.ca_cert).map_err(|e| RealError::io(&pki.ca_cert, e))?;
        wait::healthz(&mut plane.components[2], kcm_port, &ca).await?;
        wait::default_service_account(&mut plane.components[2], &admin).await?;
        wait::healthz(&mut plane.components[3], sched_port, &ca).await?;
        plane.startup.push((
            "kube-controller-manager and kube-scheduler",
            started.elapsed(),
        ));

        let started = Instant::now();
        plane.spawn(
            "kwok",
            &bin,
            vec![
                format!("--kubeconfig={}", p(&kubeconfig)),
                format!("--config={}", p(&bin.join("kwok-stages.yaml"))),
                "--manage-all-nodes=true".into(),
                "--node-lease-duration-seconds=40".into(),
            ],
        )?;
        wait::nodes(&mut plane.components[4], &admin, &NODE_NAMES).await?;
        plane
            .startup
            .push(("kwok and its nodes", started.elapsed()));
        Ok(plane)
    }

    fn spawn(
        &mut self,
        name: &'static str,
        bin: &Path,
        args: Vec<String>,
    ) -> Result<(), RealError> {
        let component = Component::spawn(name, &bin.join(name), &args, &self.dir)?;
        self.components.push(component);
        Ok(())
    }

    /// The admin kubeconfig (client certificate in `system:masters`, data inlined).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding certificates, data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// kube-apiserver's audit log of writes (see [`audit::read`]).
    pub fn audit_log(&self) -> PathBuf {
        audit::log_path(&self.dir)
    }

    /// The running components, in start order (their pids and logs).
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// A kube-rs client with the admin credentials.
    pub async fn client(&self) -> Result<kube::Client, RealError> {
        client_from_kubeconfig(&self.kubeconfig()).await
    }

    /// Fails when any component has exited.
    pub fn check_running(&mut self) -> Result<(), RealError> {
        self.components
            .iter_mut()
            .try_for_each(Component::check_running)
    }

    /// Stops every process, newest first (also done on drop).
    pub fn stop(&mut self) {
        while let Some(mut component) = self.components.pop() {
            component.stop();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, RealError> {
    let kube_err = |source| RealError::Kube {
        context: format!("loading {}", path.display()),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| RealError::Kube {
        context: format!("reading {}", path.display()),
        source: kube::Error::InferKubeconfig(e),
    })?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| kube_err(kube::Error::InferKubeconfig(e)))?;
    kube::Client::try_from(config).map_err(kube_err)
}

fn write_kubeconfig(dir: &Path, url: &str, pki: &Pki) -> Result<PathBuf, RealError> {
    use base64::Engine;
    let read = |path: &Path| -> Result<String, RealError> {
        let bytes = std::fs::read(path).map_err(|e| RealError::io(path, e))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mmf-real\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: mmf-real\n  context:\n    cluster: mmf-real\n    user: admin\n    namespace: default\ncurrent-context: mmf-real\n",
        ca = read(&pki.ca_cert)?,
        cert = read(&pki.admin_cert)?,
        key = read(&pki.admin_key)?,
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, yaml).map_err(|e| RealError::io(&path, e))?;
    Ok(path)
}

/// A free TCP port on 127.0.0.1 (released before the component binds it).
fn free_port() -> Result<u16, RealError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| RealError::io(Path::new("127.0.0.1:0"), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| RealError::io(Path::new("127.0.0.1:0"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named_with_the_build_command() {
        let dir = std::env::temp_dir().join(format!("mmf-no-control-plane-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        std::fs::write(dir.join("etcd"), b"").unwrap_or_default();
        let message = check_built(&dir).map_err(|e| e.to_string());
        assert_eq!(
            message,
            Err(format!(
                "the real control plane is not built: {}/kube-apiserver is missing; build it with `bash e2e/control-plane/build.sh` (the first build takes 20-40 minutes on 2 cores)",
                dir.display()
            ))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
