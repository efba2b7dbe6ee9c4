//! One control-plane process: spawned with its output in a log file, in its own process group
//! (so a terminal's Ctrl-C reaches the harness, which stops the processes in order), and
//! stopped with SIGTERM, then SIGKILL, when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use super::RealError;

/// How long a component may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running component, stopped when dropped.
#[derive(Debug)]
pub struct Component {
    /// The binary's name, for messages.
    pub name: &'static str,
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Component {
    /// Starts `binary ARGS` with its output in `logs/<name>.log`.
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        dir: &Path,
    ) -> Result<Component, RealError> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| RealError::io(&logs, e))?;
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| RealError::io(&log, e))?;
        let err = out.try_clone().map_err(|e| RealError::io(&log, e))?;
        let child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| RealError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        Ok(Component {
            name,
            child: Some(child),
            log,
        })
    }

    /// The process id (for `down` and for messages).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails with the tail of the log when the process has already exited.
    pub fn check_running(&mut self) -> Result<(), RealError> {
        let Some(child) = self.child.as_mut() else {
            return Err(self.exited("stopped".into()));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status.to_string())),
            Err(e) => Err(RealError::io(&self.log, e)),
        }
    }

    fn exited(&self, status: String) -> RealError {
        RealError::Exited {
            component: self.name,
            status,
            log: self.log.clone(),
            tail: log_tail(&self.log, 15),
        }
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL; always reaps the process.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = kill_process(Pid::from_child(&child), Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of a log file (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
