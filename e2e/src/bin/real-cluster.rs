//! `real-cluster`: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kwok) on loopback, for the end-to-end suites and for trying things by hand.
//!
//! ```text
//! real-cluster up --dir DIR        # returns once ready; DIR/kubeconfig is the admin kubeconfig
//! real-cluster down --dir DIR      # stops it
//! real-cluster run --dir DIR -- CMD ARGS...   # up, run CMD with KUBECONFIG set, down
//! ```

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use mmf_e2e::real::{ControlPlane, RealError, binary_dir, check_built, log_tail};
use rustix::process::{Pid, Signal, kill_process, test_kill_process};

#[derive(Parser, Debug)]
#[command(
    name = "real-cluster",
    about = "A real Kubernetes control plane on 127.0.0.1, built from Go modules (tests only)"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start the control plane in the background; returns once it is ready.
    Up {
        /// Directory for certificates, data, logs and the kubeconfig.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Stop the control plane started with `up --dir DIR`.
    Down {
        /// The directory given to `up`.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Start the control plane, run a command against it, stop it; exits with the command's code.
    Run {
        /// Directory for certificates, data, logs and the kubeconfig.
        #[arg(long)]
        dir: PathBuf,
        /// The command and its arguments (KUBECONFIG and MMF_E2E_KUBECONFIG are set for it).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print where the binaries are looked for, and whether they are built.
    Where,
    /// Run the control plane in the foreground until SIGTERM (what `up` starts).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Real(#[from] RealError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a control plane is already running from {} (pid {pid}); stop it with `real-cluster down --dir {}`", dir.display(), dir.display())]
    AlreadyRunning { dir: PathBuf, pid: i32 },
    #[error("no control plane is running from {} (no pid file)", .0.display())]
    NotRunning(PathBuf),
    #[error("the control plane did not start; {} ends with:\n{tail}", log.display())]
    StartFailed { log: PathBuf, tail: String },
    #[error("pid {pid} did not stop within 60 s; it was killed")]
    Killed { pid: i32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let result = match args.command {
        Cmd::Up { dir } => up(&dir),
        Cmd::Down { dir } => down(&dir),
        Cmd::Run { dir, command } => return run(&dir, &command),
        Cmd::Where => where_(),
        Cmd::Serve { dir } => serve(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("real-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io(Path::new("tokio runtime")))
}

fn where_() -> Result<(), CliError> {
    let bin = binary_dir()?;
    println!("{}", bin.display());
    check_built(&bin)?;
    println!("built: all binaries are present");
    Ok(())
}

fn pid_file(dir: &Path) -> PathBuf {
    dir.join("real-cluster.pid")
}

fn running_pid(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file(dir)).ok()?;
    let pid = text.trim().parse::<i32>().ok()?;
    let alive = Pid::from_raw(pid).is_some_and(|p| test_kill_process(p).is_ok());
    alive.then_some(pid)
}

fn print_ready(plane_dir: &Path, startup: &str) {
    let kubeconfig = plane_dir.join("kubeconfig");
    println!("control plane ready ({startup})");
    println!("kubeconfig: {}", kubeconfig.display());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!(
        "  export MMF_E2E_KUBECONFIG={}   # runs the e2e suites against it",
        kubeconfig.display()
    );
    println!(
        "  export MMF_E2E_AUDIT_LOG={}   # the failover suites' request log",
        mmf_e2e::real::audit::log_path(plane_dir).display()
    );
    println!("logs: {}", plane_dir.join("logs").display());
}

fn format_startup(plane: &ControlPlane) -> String {
    plane
        .startup
        .iter()
        .map(|(name, took)| format!("{name} {:.1} s", took.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn up(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    if let Some(pid) = running_pid(&dir) {
        return Err(CliError::AlreadyRunning { dir, pid });
    }
    // Fail before forking when the binaries are missing: the message names the build command.
    check_built(&binary_dir()?)?;
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log = dir.join("real-cluster.log");
    let out = std::fs::File::create(&log).map_err(io(&log))?;
    let err = out.try_clone().map_err(io(&log))?;
    let exe = std::env::current_exe().map_err(io(Path::new("current executable")))?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(io(&log))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(startup) = std::fs::read_to_string(&ready) {
            print_ready(&dir, startup.trim());
            return Ok(());
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            if !exited {
                let _ = kill_process(Pid::from_child(&child), Signal::TERM);
                let _ = child.wait();
            }
            return Err(CliError::StartFailed {
                tail: log_tail(&log, 20),
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn serve(dir: &Path) -> Result<(), CliError> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut plane = ControlPlane::start(dir).await?;
        let dir = plane.dir().to_path_buf();
        let pid = pid_file(&dir);
        std::fs::write(&pid, std::process::id().to_string()).map_err(io(&pid))?;
        let ready = dir.join("ready");
        std::fs::write(&ready, format_startup(&plane)).map_err(io(&ready))?;
        eprintln!("control plane ready at {}", plane.url());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io(Path::new("SIGTERM handler")))?;
        let mut watch = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = watch.tick() => {
                    if let Err(e) = plane.check_running() {
                        eprintln!("real-cluster: {e}");
                    }
                }
            }
        }
        eprintln!("stopping the control plane");
        plane.stop();
        let _ = std::fs::remove_file(&ready);
        let _ = std::fs::remove_file(&pid);
        Ok(())
    })
}

fn down(dir: &Path) -> Result<(), CliError> {
    let Some(pid) = running_pid(dir) else {
        return Err(CliError::NotRunning(dir.to_path_buf()));
    };
    let Some(target) = Pid::from_raw(pid) else {
        return Err(CliError::NotRunning(dir.to_path_buf()));
    };
    let _ = kill_process(target, Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if test_kill_process(target).is_err() {
            println!("control plane stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = kill_process(target, Signal::KILL);
    Err(CliError::Killed { pid })
}

fn run(dir: &Path, command: &[String]) -> ExitCode {
    let started = (|| -> Result<(tokio::runtime::Runtime, ControlPlane), CliError> {
        let rt = runtime()?;
        let plane = rt.block_on(ControlPlane::start(dir))?;
        Ok((rt, plane))
    })();
    let (_rt, mut plane) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("real-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_ready(plane.dir(), &format_startup(&plane));
    let kubeconfig = plane.kubeconfig();
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env("KUBECONFIG", &kubeconfig)
        .env("MMF_E2E_KUBECONFIG", &kubeconfig)
        .env("MMF_E2E_AUDIT_LOG", plane.audit_log())
        .status();
    let health = plane.check_running();
    plane.stop();
    if let Err(e) = health {
        eprintln!("real-cluster: a component died during the run: {e}");
    }
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("real-cluster: {} exited with {status}", command[0]);
            ExitCode::from(status.code().map_or(1, |c| c.clamp(1, 255) as u8))
        }
        Err(e) => {
            eprintln!("real-cluster: running {}: {e}", command[0]);
            ExitCode::FAILURE
        }
    }
}
