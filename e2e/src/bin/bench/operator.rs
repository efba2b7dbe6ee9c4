//! The real `mmf` binary as a separate process: start, readiness, memory, stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, repo};
use crate::scenarios::BenchError;

/// Finds `mmf`: the given path, or the binary beside this one, building it with the same cargo
/// and profile when it is missing (so `cargo run --release -p mmf-e2e --bin bench` just works).
pub fn mmf_binary(given: Option<PathBuf>) -> Result<PathBuf, BenchError> {
    if let Some(path) = given {
        return Ok(path);
    }
    let me = std::env::current_exe().map_err(|e| BenchError::io(Path::new("bench"), e))?;
    let dir = me.parent().unwrap_or(Path::new("."));
    let mmf = dir.join("mmf");
    let release = dir.file_name().is_some_and(|d| d == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Always ask cargo: a stale `mmf` beside a fresh bench would measure old code.
    let mut build = Command::new(&cargo);
    build
        .current_dir(repo())
        .args(["build", "--quiet", "-p", "mmf-operator", "--bin", "mmf"]);
    if release {
        build.arg("--release");
    }
    eprintln!(
        "bench: building mmf ({})",
        if release { "release" } else { "debug" }
    );
    let status = build
        .status()
        .map_err(|e| BenchError::io(Path::new(&cargo), e))?;
    if !status.success() || !mmf.exists() {
        return Err(BenchError::Input(format!(
            "no mmf binary at {} (cargo build failed); pass --mmf PATH",
            mmf.display()
        )));
    }
    Ok(mmf)
}

/// A running `mmf run`; killed when dropped.
pub struct Operator {
    child: Child,
    probe_port: u16,
    /// When the process was spawned.
    pub started: Instant,
    /// When `/readyz` first answered 200.
    pub ready: Duration,
    log: PathBuf,
}

/// Resident and peak memory of a process, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
    /// The part of `rss` that is the process's own memory (heap, stacks); the rest is pages of
    /// the binary and its libraries, shared and backed by their files.
    pub anonymous: u64,
}

impl Operator {
    /// Starts `mmf run` against `cluster` (development default environment, no webhook: the
    /// webhook's cost is the webhook scenario's) with `concurrency` reconciles in flight per
    /// controller (the raw baseline's requests in flight), and returns once it is ready and
    /// leads.
    pub fn start(
        mmf: &Path,
        concurrency: usize,
        cluster: &Cluster,
        tag: &str,
    ) -> Result<Operator, BenchError> {
        Operator::start_with(mmf, concurrency, cluster, tag, &["--webhook-addr", "none"])
    }

    /// Like [`Operator::start`], with the webhook flags given in `webhook`.
    pub fn start_with(
        mmf: &Path,
        concurrency: usize,
        cluster: &Cluster,
        tag: &str,
        webhook: &[&str],
    ) -> Result<Operator, BenchError> {
        let probe_port = free_port()?;
        let log = cluster.dir().join(format!("operator-{tag}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| BenchError::io(&log, e))?;
        let started = Instant::now();
        let child = Command::new(mmf)
            .arg("run")
            .arg("--config-dir")
            .arg(repo().join("config"))
            .args(["--namespace", "default"])
            .args(["--concurrency", &concurrency.to_string()])
            .args(webhook)
            .args(["--probe-addr", &format!("127.0.0.1:{probe_port}")])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| BenchError::io(mmf, e))?;
        let mut operator = Operator {
            child,
            probe_port,
            started,
            ready: Duration::ZERO,
            log,
        };
        operator.wait_ready(Duration::from_secs(120))?;
        operator.wait_leader(Duration::from_secs(60))?;
        Ok(operator)
    }

    /// Waits until `/readyz` answers 200: caches synced (and, on the leader, controllers on).
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Operator(format!(
                    "exited with {status} before becoming ready; log {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                )));
            }
            if self.get("/readyz").is_some_and(|(code, _)| code == 200) {
                self.ready = self.started.elapsed();
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Timeout(format!(
                    "the operator to become ready; log {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until this process holds the lease (`mmf_leader` 1): only the leader reconciles.
    pub fn wait_leader(&mut self, timeout: Duration) -> Result<Duration, BenchError> {
        let deadline = Instant::now() + timeout;
        while self.metric_sum("mmf_leader") < 1.0 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Operator(format!(
                    "exited with {status} before leading"
                )));
            }
            if Instant::now() > deadline {
                return Err(BenchError::Timeout(
                    "the operator to take the lease".to_owned(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self.started.elapsed())
    }

    /// SIGTERM and wait: a rolling update's clean stop (the lease is released).
    pub fn stop(mut self) -> Result<(), BenchError> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(BenchError::Timeout(
            "the operator to stop on SIGTERM".to_owned(),
        ))
    }

    /// VmRSS and VmHWM from /proc.
    pub fn memory(&self) -> Memory {
        process_memory(self.child.id())
    }

    /// A plain HTTP/1.0 GET on the probe port: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.probe_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((code, body))
    }

    /// The sum of every sample of `metric` on /metrics (all label sets).
    pub fn metric_sum(&self, metric: &str) -> f64 {
        let Some((_, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|line| {
                line.strip_prefix(metric)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS, VmHWM and RssAnon of `pid` (zeros once it has exited).
pub fn process_memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
        anonymous: field("RssAnon:"),
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::io(Path::new("127.0.0.1:0"), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| BenchError::io(Path::new("127.0.0.1:0"), e))
}
