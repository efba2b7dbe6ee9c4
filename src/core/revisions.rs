//! The rules of MmfPluginRevisions: the revision recorded for a plugin version, the verdict it
//! carries, the violation when a version's content changes, and which revisions to trim.

use std::collections::{BTreeMap, BTreeSet};

use kube::Resource;
use semver::Version;

use super::policy::PluginEvaluation;
use super::violation::{ObjectRef, Violation, ViolationKind};
use crate::api::{
    DEFAULT_REVISION_HISTORY_LIMIT, MmfPlugin, MmfPluginRevision, MmfPluginRevisionSpec,
    MmfPluginRevisionStatus, revision_name,
};

/// Label naming the MmfPlugin a revision belongs to.
pub const PLUGIN_LABEL: &str = "mmf.marty.dev/plugin";
/// Label every object the operator creates carries (what the caches select on).
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "mmf-operator");

/// The revision recording `plugin`'s current spec (whose signed payload has `digest`), owned
/// by the plugin (controller reference). None when the plugin has no uid or name yet.
pub fn revision_for(plugin: &MmfPlugin, digest: &str) -> Option<MmfPluginRevision> {
    let owner = plugin.controller_owner_ref(&())?;
    let name = plugin.metadata.name.clone()?;
    let mut revision = MmfPluginRevision::new(
        &revision_name(&name, &plugin.spec.version),
        MmfPluginRevisionSpec {
            plugin: name.clone(),
            version: plugin.spec.version.clone(),
            digest: digest.to_owned(),
            plugin_spec: plugin.spec.clone(),
        },
    );
    revision.metadata.namespace = plugin.metadata.namespace.clone();
    revision.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY_LABEL.0.to_owned(), MANAGED_BY_LABEL.1.to_owned()),
        (PLUGIN_LABEL.to_owned(), name),
    ]));
    revision.metadata.owner_references = Some(vec![owner]);
    Some(revision)
}

/// The status a revision reports after `evaluation` in `environment`.
pub fn revision_status(
    evaluation: &PluginEvaluation,
    environment: &str,
    generation: Option<i64>,
) -> MmfPluginRevisionStatus {
    MmfPluginRevisionStatus {
        observed_generation: generation,
        verified: evaluation.violations.is_empty(),
        reason: evaluation.violations.first().map(|v| v.message.clone()),
        environment: Some(environment.to_owned()),
    }
}

/// What to do about the revision of a plugin's current version.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// No revision of this version yet: record one.
    Create,
    /// Recorded with this content: nothing to do.
    Keep,
    /// Recorded with other content that never verified and that no service loads: nothing can
    /// depend on it, so it is replaced (signing a rejected version in place keeps working).
    Replace,
    /// Recorded with other content that verified or is in use: never overwritten; the plugin
    /// reports the violation.
    Conflict(Violation),
}

/// Decides about the revision of `plugin`'s version, given what is `recorded` under its name and
/// the revisions services load (`in_use`).
pub fn record_decision(
    plugin: &MmfPlugin,
    recorded: Option<&MmfPluginRevision>,
    current_digest: &str,
    in_use: &BTreeSet<String>,
) -> Record {
    let Some(recorded) = recorded else {
        return Record::Create;
    };
    let Some(conflict) = digest_conflict(plugin, recorded, current_digest) else {
        return Record::Keep;
    };
    let verified = recorded.status.as_ref().is_some_and(|s| s.verified);
    let used = recorded
        .metadata
        .name
        .as_ref()
        .is_some_and(|name| in_use.contains(name));
    if verified || used {
        Record::Conflict(conflict)
    } else {
        Record::Replace
    }
}

/// The violation on `plugin` when its version was first recorded with other content.
pub fn digest_conflict(
    plugin: &MmfPlugin,
    recorded: &MmfPluginRevision,
    current_digest: &str,
) -> Option<Violation> {
    (recorded.spec.digest != current_digest).then(|| Violation {
        kind: ViolationKind::InvalidSpec,
        object: ObjectRef {
            kind: "MmfPlugin",
            namespace: plugin.metadata.namespace.clone(),
            name: plugin.metadata.name.clone().unwrap_or_default(),
        },
        field: "spec.version".to_owned(),
        message: format!(
            "version {} was recorded as MmfPluginRevision {} with digest {}, but the spec now has digest {current_digest}: a revision is never overwritten; publish the change as a new version",
            plugin.spec.version,
            recorded.metadata.name.as_deref().unwrap_or_default(),
            recorded.spec.digest,
        ),
    })
}

/// Names of the revisions of one plugin to delete: beyond `limit` (default 5) older versions,
/// oldest by semver first; never the current version, never one in `in_use` (revisions some
/// MmfService's status says it loads).
pub fn revisions_to_trim(
    revisions: &[&MmfPluginRevision],
    current_version: &str,
    limit: Option<i32>,
    in_use: &BTreeSet<String>,
) -> Vec<String> {
    let limit =
        usize::try_from(limit.unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT).max(1)).unwrap_or(1);
    let mut older: Vec<(Version, String)> = revisions
        .iter()
        .filter(|r| r.spec.version != current_version)
        .filter_map(|r| {
            Some((
                Version::parse(&r.spec.version).ok()?,
                r.metadata.name.clone()?,
            ))
        })
        .collect();
    older.sort_by(|a, b| b.0.cmp(&a.0));
    older
        .into_iter()
        .skip(limit)
        .map(|(_, name)| name)
        .filter(|name| !in_use.contains(name))
        .rev()
        .collect()
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
