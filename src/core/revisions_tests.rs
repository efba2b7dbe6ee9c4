#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use super::*;
use crate::api::{MmfPluginRevisionStatus, MmfPluginSpec};

fn plugin(version: &str) -> MmfPlugin {
    let spec: MmfPluginSpec =
        serde_json::from_value(serde_json::json!({"version": version, "image": "r/p:1"})).unwrap();
    let mut plugin = MmfPlugin::new("payment", spec);
    plugin.metadata.namespace = Some("prod".into());
    plugin.metadata.uid = Some("uid-1".into());
    plugin
}

fn revision(version: &str) -> MmfPluginRevision {
    revision_for(&plugin(version), &format!("sha256:{version}")).unwrap()
}

#[test]
fn a_revision_is_named_after_plugin_and_version_owned_by_the_plugin_and_labelled() {
    let revision = revision("1.1.0");
    assert_eq!(revision.metadata.name.as_deref(), Some("payment-1.1.0"));
    assert_eq!(revision.metadata.namespace.as_deref(), Some("prod"));
    let owner = &revision.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("MmfPlugin", "payment", "uid-1", Some(true))
    );
    assert_eq!(
        revision.metadata.labels.unwrap(),
        BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "mmf-operator".to_owned()
            ),
            ("mmf.marty.dev/plugin".to_owned(), "payment".to_owned()),
        ])
    );
    assert_eq!(revision.spec.digest, "sha256:1.1.0");
    assert_eq!(revision.spec.plugin_spec, plugin("1.1.0").spec);
}

#[test]
fn versions_with_build_metadata_get_a_valid_object_name() {
    assert_eq!(
        revision_name("payment", "1.0.0-RC.1+build.7"),
        "payment-1.0.0-rc.1-build.7"
    );
}

#[test]
fn changed_content_under_a_recorded_version_names_both_digests() {
    let recorded = revision("1.1.0");
    assert_eq!(
        digest_conflict(&plugin("1.1.0"), &recorded, "sha256:1.1.0"),
        None
    );
    assert_eq!(
        digest_conflict(&plugin("1.1.0"), &recorded, "sha256:other")
            .unwrap()
            .message,
        "version 1.1.0 was recorded as MmfPluginRevision payment-1.1.0 with digest sha256:1.1.0, but the spec now has digest sha256:other: a revision is never overwritten; publish the change as a new version"
    );
}

#[test]
fn history_beyond_the_limit_is_trimmed_oldest_first_sparing_current_and_used_ones() {
    let all: Vec<MmfPluginRevision> = ["1.0.0", "1.1.0", "1.2.0", "1.10.0", "2.0.0"]
        .into_iter()
        .map(revision)
        .collect();
    let refs: Vec<&MmfPluginRevision> = all.iter().collect();
    // Older than the current 2.0.0: 1.10.0, 1.2.0, 1.1.0, 1.0.0; keep two.
    assert_eq!(
        revisions_to_trim(&refs, "2.0.0", Some(2), &BTreeSet::new()),
        ["payment-1.0.0", "payment-1.1.0"]
    );
    assert_eq!(
        revisions_to_trim(
            &refs,
            "2.0.0",
            Some(2),
            &BTreeSet::from(["payment-1.0.0".to_owned()])
        ),
        ["payment-1.1.0"]
    );
    assert_eq!(
        revisions_to_trim(&refs, "2.0.0", None, &BTreeSet::new()),
        Vec::<String>::new()
    );
    assert_eq!(
        revisions_to_trim(&refs, "1.0.0", Some(1), &BTreeSet::new()),
        ["payment-1.1.0", "payment-1.2.0", "payment-1.10.0"]
    );
}

#[test]
fn a_verified_or_used_revision_is_never_replaced_an_unverified_unused_one_is() {
    let current = plugin("1.1.0");
    let mut recorded = revision("1.1.0");
    let none = BTreeSet::new();
    assert_eq!(
        record_decision(&current, None, "sha256:new", &none),
        Record::Create
    );
    assert_eq!(
        record_decision(&current, Some(&recorded), "sha256:1.1.0", &none),
        Record::Keep
    );
    assert_eq!(
        record_decision(&current, Some(&recorded), "sha256:new", &none),
        Record::Replace
    );
    let used = BTreeSet::from(["payment-1.1.0".to_owned()]);
    let conflict = digest_conflict(&current, &recorded, "sha256:new").unwrap();
    assert_eq!(
        record_decision(&current, Some(&recorded), "sha256:new", &used),
        Record::Conflict(conflict.clone())
    );
    recorded.status = Some(MmfPluginRevisionStatus {
        verified: true,
        ..MmfPluginRevisionStatus::default()
    });
    assert_eq!(
        record_decision(&current, Some(&recorded), "sha256:new", &none),
        Record::Conflict(conflict)
    );
}
