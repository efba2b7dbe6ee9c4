//! Reloading the environment config when its files change, without a restart.
//!
//! A mounted ConfigMap changes by kubelet swapping a `..data` symlink, which file watches can
//! miss, so the directory is watched (a fast path) and also re-read every `poll` (the safety
//! net). A file that fails to parse keeps the previous config and is logged with its location.
//! Each reload (applied or refused) is reported with the sha256 of every file before and after,
//! for the audit trail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::SharedConfig;
use crate::config::load_dir;
use crate::core::hash::sha256_digest;
use crate::files::DirWatch;

/// `sha256:<hex>` of every file under `dir` (following symlinks) by relative path, to notice
/// any change cheaply and to say in the audit trail exactly what changed.
pub type FileDigests = BTreeMap<String, String>;

fn fingerprint(dir: &Path) -> FileDigests {
    let mut files = BTreeMap::new();
    collect(dir, dir, &mut files);
    files
        .into_iter()
        .map(|(path, contents)| (path, sha256_digest(&contents)))
        .collect()
}

/// One reload: applied (no error) or refused, with the files before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    /// Why the new files were refused (the previous config stays).
    pub error: Option<String>,
    /// Digests of the files the previous config was read from.
    pub before: FileDigests,
    /// Digests of the files now.
    pub after: FileDigests,
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
async fn read_fingerprint(dir: &Path) -> FileDigests {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || fingerprint(&dir))
        .await
        .unwrap_or_default()
}

/// Watches `dir` until the process ends; on a change that parses, swaps the config in and
/// calls `on_reload`; a change that does not parse is reported to `on_reload` too.
pub async fn watch(
    dir: PathBuf,
    config: Arc<SharedConfig>,
    poll: Duration,
    on_reload: impl Fn(Reload) + Send + 'static,
) {
    let mut watch = DirWatch::new(&dir, true, poll, "config directory");
    let mut last = read_fingerprint(&dir).await;
    loop {
        watch.changed().await;
        let current = read_fingerprint(&dir).await;
        if current == last {
            continue;
        }
        let before = std::mem::replace(&mut last, current.clone());
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
                    on_reload(Reload {
                        error: None,
                        before,
                        after: current,
                    });
                }
            }
            Err(error) => {
                tracing::error!(%error, "environment config not reloaded; keeping the previous one");
                on_reload(Reload {
                    error: Some(error.to_string()),
                    before,
                    after: current,
                });
            }
        }
    }
}
