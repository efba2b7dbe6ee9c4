//! `kubectl mmf history` and `kubectl mmf rollback`: the table of a plugin's revisions and the
//! patch that pins a service to one of them. Plain functions; the CLI reads and writes.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use semver::Version;
use serde_json::{Value, json};

use crate::api::{MmfPluginRevision, MmfService};

/// One line of `kubectl mmf history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// Revision name.
    pub revision: String,
    /// Plugin version.
    pub version: String,
    /// `true`, `false` or `unknown` (not judged yet).
    pub verified: String,
    /// The first 12 hex digits of the payload digest.
    pub digest: String,
    /// Age, kubectl style (`5m`, `3h`, `2d`).
    pub age: String,
    /// Services whose status says they load this revision, comma-separated (`-` when none).
    pub services: String,
}

/// The revisions of `plugin`, newest version first, with the services using each.
pub fn history_rows(
    plugin: &str,
    revisions: &[MmfPluginRevision],
    services: &[MmfService],
    now: Timestamp,
) -> Vec<HistoryRow> {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for service in services {
        let Some(status) = &service.status else {
            continue;
        };
        for entry in status.plugins.iter().filter(|p| p.name == plugin) {
            if let (Some(revision), Some(name)) = (&entry.revision, &service.metadata.name) {
                users.entry(revision.as_str()).or_default().push(name);
            }
        }
    }
    let mut mine: Vec<&MmfPluginRevision> = revisions
        .iter()
        .filter(|r| r.spec.plugin == plugin)
        .collect();
    mine.sort_by(|a, b| {
        let parse = |r: &MmfPluginRevision| Version::parse(&r.spec.version).ok();
        parse(b).cmp(&parse(a))
    });
    mine.into_iter()
        .map(|revision| {
            let name = revision.metadata.name.clone().unwrap_or_default();
            let mut using = users.get(name.as_str()).cloned().unwrap_or_default();
            using.sort_unstable();
            HistoryRow {
                version: revision.spec.version.clone(),
                verified: match &revision.status {
                    Some(status) => status.verified.to_string(),
                    None => "unknown".to_owned(),
                },
                digest: revision
                    .spec
                    .digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect(),
                age: revision
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or_else(|| "<unknown>".to_owned(), |t| age(t.0, now)),
                services: if using.is_empty() {
                    "-".to_owned()
                } else {
                    using.join(",")
                },
                revision: name,
            }
        })
        .collect()
}

/// The table, columns aligned like `kubectl get`.
pub fn history_table(rows: &[HistoryRow]) -> String {
    let header = [
        "REVISION", "VERSION", "VERIFIED", "DIGEST", "AGE", "SERVICES",
    ];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.revision.as_str(),
                r.version.as_str(),
                r.verified.as_str(),
                r.digest.as_str(),
                r.age.as_str(),
                r.services.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn age(created: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(created.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Why a rollback cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    /// The version is not a semantic version.
    #[error("{version:?} is not a semantic version such as 1.0.0: rollback pins one exact version")]
    BadVersion {
        /// What was given.
        version: String,
    },
}

/// The JSON patch (RFC 6902) that pins `plugin` of `service` to exactly `version`
/// (`spec.plugins[i].version: "=VERSION"`), adding the entry when the plugin comes from the
/// environment's defaults. A `test` op guards the index against a concurrent edit.
pub fn rollback_patch(
    service: &MmfService,
    plugin: &str,
    version: &str,
) -> Result<Value, RollbackError> {
    let version = version.trim_start_matches('=');
    Version::parse(version).map_err(|_| RollbackError::BadVersion {
        version: version.to_owned(),
    })?;
    let pin = format!("={version}");
    let plugins = &service.spec.plugins;
    Ok(match plugins.iter().position(|p| p.name == plugin) {
        Some(index) => json!([
            {"op": "test", "path": format!("/spec/plugins/{index}/name"), "value": plugin},
            {"op": "add", "path": format!("/spec/plugins/{index}/version"), "value": pin},
        ]),
        None if plugins.is_empty() => json!([
            {"op": "add", "path": "/spec/plugins", "value": [{"name": plugin, "version": pin}]},
        ]),
        None => json!([
            {"op": "add", "path": "/spec/plugins/-", "value": {"name": plugin, "version": pin}},
        ]),
    })
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
