//! Reloading the environment config when its files change, without a restart.
//!
//! A mounted ConfigMap changes by kubelet swapping a `..data` symlink, which file watches can
//! miss, so the directory is watched (a fast path) and also re-read every `poll` (the safety
//! net). A file that fails to parse keeps the previous config and is logged with its location.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use crate::config::load_dir;
use crate::state::SharedConfig;

/// Digest of every file under `dir` (following symlinks), to notice any change cheaply.
fn fingerprint(dir: &Path) -> Vec<u8> {
    let mut files = BTreeMap::new();
    collect(dir, dir, &mut files);
    let mut hasher = Sha256::new();
    for (path, contents) in files {
        hasher.update(path.as_bytes());
        hasher.update(contents);
    }
    hasher.finalize().to_vec()
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(contents) = std::fs::read(&path) {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            files.insert(relative, contents);
        }
    }
}

/// [`fingerprint`] off the async runtime (it reads every file).
async fn read_fingerprint(dir: &Path) -> Vec<u8> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || fingerprint(&dir))
        .await
        .unwrap_or_default()
}

/// Watches `dir` until the process ends; on a change that parses, swaps the config in and
/// calls `on_reload`.
pub async fn watch(
    dir: PathBuf,
    config: Arc<SharedConfig>,
    poll: Duration,
    on_reload: impl Fn(bool) + Send + 'static,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    });
    let _watcher = match watcher {
        Ok(mut watcher) => match watcher.watch(&dir, RecursiveMode::Recursive) {
            Ok(()) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "cannot watch the config directory; polling only");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "no file watcher available; polling only");
            None
        }
    };
    let mut last = read_fingerprint(&dir).await;
    loop {
        tokio::select! {
            _ = rx.recv() => {
                // Let a burst of writes (or a symlink swap) settle.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(poll) => {}
        }
        let current = read_fingerprint(&dir).await;
        if current == last {
            continue;
        }
        last = current;
        let loading = dir.clone();
        let loaded = tokio::task::spawn_blocking(move || load_dir(&loading))
            .await
            .unwrap_or_else(|error| {
                Err(crate::config::ConfigError::Io {
                    path: dir.display().to_string(),
                    message: format!("reading the config stopped: {error}"),
                })
            });
        match loaded {
            Ok(loaded) => {
                if *config.current() != loaded {
                    config.replace(loaded);
                    tracing::info!(dir = %dir.display(), "environment config reloaded");
                    on_reload(true);
                }
            }
            Err(error) => {
                tracing::error!(%error, "environment config not reloaded; keeping the previous one");
                on_reload(false);
            }
        }
    }
}
