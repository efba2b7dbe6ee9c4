//! The file-system helpers every shell shares: the one capped file reader (every input file is
//! size-limited, `core::limits` holds the caps) and the one directory watcher (config reload,
//! serving certificates).

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

/// A file that could not be read, or is over its cap: `{path}: {reason}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ReadError {
    /// The file, as given.
    pub path: String,
    /// What went wrong: `cannot read: ...` or `file is N bytes, more than the L allowed`.
    pub reason: String,
}

/// Reads a UTF-8 text file of at most `limit` bytes. A larger file is refused without reading
/// more than `limit + 1` bytes of it, even if it grows while being read.
pub fn read_capped(path: &Path, limit: usize) -> Result<String, ReadError> {
    let error = |reason: String| ReadError {
        path: path.display().to_string(),
        reason,
    };
    let too_large = |size: u64| {
        error(format!(
            "file is {size} bytes, more than the {limit} allowed"
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| error(format!("cannot read: {e}")))?
        .len();
    if size > limit as u64 {
        return Err(too_large(size));
    }
    let mut text = String::new();
    file.take((limit as u64).saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|e| error(format!("cannot read: {e}")))?;
    if text.len() > limit {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// How long a burst of events (kubelet's `..data` symlink swap, several files written) may
/// take before the directory is read again.
const SETTLE: Duration = Duration::from_millis(300);

/// Wakes its owner when a directory may have changed: on a file event (after the burst
/// settles) and at least every `poll`, because events can be missed (a ConfigMap volume
/// changes by swapping a symlink; some volume types send nothing).
pub struct DirWatch {
    _watcher: Option<notify::RecommendedWatcher>,
    events: tokio::sync::mpsc::Receiver<()>,
    poll: Duration,
}

impl DirWatch {
    /// Watches `dir` (and its subdirectories when `recursive`). Without a working file watcher
    /// it logs why, naming `what` is watched, and only polls.
    pub fn new(dir: &Path, recursive: bool, poll: Duration, what: &str) -> DirWatch {
        let (tx, events) = tokio::sync::mpsc::channel(1);
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                // One pending wake-up is enough: the owner re-reads everything.
                let _ = tx.try_send(());
            }
        })
        .and_then(|mut watcher| {
            watcher.watch(dir, mode)?;
            Ok(watcher)
        });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "cannot watch the {what}; polling every {poll:?}");
                None
            }
        };
        DirWatch {
            _watcher: watcher,
            events,
            poll,
        }
    }

    /// Returns after the next file event has settled, or after `poll` without one.
    pub async fn changed(&mut self) {
        tokio::select! {
            event = self.events.recv() => {
                if event.is_some() {
                    tokio::time::sleep(SETTLE).await;
                    while self.events.try_recv().is_ok() {}
                } else {
                    // The watcher is gone: polling is all that is left.
                    tokio::time::sleep(self.poll).await;
                }
            }
            _ = tokio::time::sleep(self.poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_file_within_the_cap_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(read_capped(&path, 3), Ok("abc".to_owned()));
    }

    #[test]
    fn a_file_over_the_cap_is_refused_with_its_size_and_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "abcd").unwrap();
        assert_eq!(
            read_capped(&path, 3).unwrap_err().to_string(),
            format!(
                "{}: file is 4 bytes, more than the 3 allowed",
                path.display()
            )
        );
    }

    #[test]
    fn a_missing_file_names_the_path_and_the_cause() {
        let path = Path::new("/nonexistent/a.yaml");
        let cause = std::fs::File::open(path).unwrap_err();
        assert_eq!(
            read_capped(path, 3).unwrap_err().to_string(),
            format!("/nonexistent/a.yaml: cannot read: {cause}")
        );
    }

    #[tokio::test]
    async fn a_written_file_wakes_the_watch_before_the_poll_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = DirWatch::new(dir.path(), false, Duration::from_secs(3600), "test dir");
        std::fs::write(dir.path().join("a"), "x").unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch.changed())
            .await
            .unwrap();
    }
}
