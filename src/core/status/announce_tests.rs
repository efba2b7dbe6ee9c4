#![allow(clippy::unwrap_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::PluginStatus;
use crate::core::policy::{PluginEvaluation, SignatureCheck};
use crate::core::violation::{ObjectRef, Violation};

fn condition(type_: &str, status: &str, reason: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: format!("{type_} is {status}"),
        observed_generation: Some(1),
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

fn plugin_status(ready: &str, signature: (&str, &str)) -> MmfPluginStatus {
    MmfPluginStatus {
        observed_generation: Some(1),
        conditions: vec![
            condition(types::READY, ready, "Whatever"),
            condition(types::SIGNATURE_VERIFIED, signature.0, signature.1),
        ],
        digest: Some("sha256:00".to_owned()),
        environment: Some("production".to_owned()),
    }
}

const VERIFIED: (&str, &str) = ("True", reasons::VERIFIED);
const MISSING: (&str, &str) = ("False", reasons::SIGNATURE_MISSING);

#[test]
fn losing_the_signature_rejects_the_plugin_and_changes_its_verdict() {
    let old = plugin_status("True", VERIFIED);
    let next = plugin_status("False", MISSING);
    assert_eq!(
        plugin_announcements(Some(&old), &next),
        vec![
            PluginAnnouncement::Rejected {
                message: "Ready is False".to_owned()
            },
            PluginAnnouncement::SignatureVerdictChanged {
                from: SignatureVerdict::Verified,
                to: SignatureVerdict::Rejected(reasons::SIGNATURE_MISSING.to_owned()),
            },
        ]
    );
}

#[test]
fn regaining_the_signature_accepts_the_plugin_and_changes_its_verdict_back() {
    let old = plugin_status("False", MISSING);
    let next = plugin_status("True", VERIFIED);
    assert_eq!(
        plugin_announcements(Some(&old), &next),
        vec![
            PluginAnnouncement::Accepted {
                message: "Ready is True".to_owned()
            },
            PluginAnnouncement::SignatureVerdictChanged {
                from: SignatureVerdict::Rejected(reasons::SIGNATURE_MISSING.to_owned()),
                to: SignatureVerdict::Verified,
            },
        ]
    );
}

#[test]
fn a_first_verdict_is_no_change_but_a_first_rejection_is_announced() {
    let first_sight = MmfPluginStatus {
        conditions: vec![condition(types::READY, "Unknown", reasons::RECONCILING)],
        ..MmfPluginStatus::default()
    };
    assert_eq!(
        plugin_announcements(Some(&first_sight), &plugin_status("True", VERIFIED)),
        vec![]
    );
    assert_eq!(
        plugin_announcements(None, &plugin_status("False", MISSING)),
        vec![PluginAnnouncement::Rejected {
            message: "Ready is False".to_owned()
        }]
    );
}

#[test]
fn an_unchanged_status_announces_nothing() {
    let status = plugin_status("False", MISSING);
    assert_eq!(plugin_announcements(Some(&status), &status), vec![]);
}

fn plugin_entry(name: &str, state: PluginLoadState) -> PluginStatus {
    PluginStatus {
        name: name.to_owned(),
        requested: Some("*".to_owned()),
        revision: None,
        version: Some("1.0.0".to_owned()),
        digest: Some("sha256:00".to_owned()),
        state,
        reason: (state != PluginLoadState::Loaded).then(|| "not loaded".to_owned()),
    }
}

fn service_status(stalled: bool, plugins: Vec<PluginStatus>) -> MmfServiceStatus {
    let mut conditions = vec![condition(types::READY, "False", "Whatever")];
    if stalled {
        conditions.push(condition(types::STALLED, "True", reasons::ROLLOUT_BLOCKED));
    }
    MmfServiceStatus {
        conditions,
        plugins,
        ..MmfServiceStatus::default()
    }
}

#[test]
fn each_plugin_whose_state_changes_is_announced_once_with_the_blocked_rollout() {
    let old = service_status(
        false,
        vec![
            plugin_entry("a", PluginLoadState::Loaded),
            plugin_entry("b", PluginLoadState::Loaded),
        ],
    );
    let next = service_status(
        true,
        vec![
            plugin_entry("a", PluginLoadState::Skipped),
            plugin_entry("b", PluginLoadState::Loaded),
            plugin_entry("c", PluginLoadState::Rejected),
        ],
    );
    assert_eq!(
        service_announcements(Some(&old), &next),
        vec![
            ServiceAnnouncement::PluginState {
                plugin: "a".to_owned(),
                version: Some("1.0.0".to_owned()),
                digest: Some("sha256:00".to_owned()),
                from: Some(PluginLoadState::Loaded),
                to: PluginLoadState::Skipped,
                reason: Some("not loaded".to_owned()),
                blocked: true,
            },
            ServiceAnnouncement::PluginState {
                plugin: "c".to_owned(),
                version: Some("1.0.0".to_owned()),
                digest: Some("sha256:00".to_owned()),
                from: None,
                to: PluginLoadState::Rejected,
                reason: Some("not loaded".to_owned()),
                blocked: true,
            },
            ServiceAnnouncement::RolloutBlocked {
                message: "Ready is False".to_owned()
            },
        ]
    );
    assert_eq!(service_announcements(Some(&next), &next), vec![]);
}

fn evaluation(kinds: &[ViolationKind]) -> PluginEvaluation {
    PluginEvaluation {
        violations: kinds
            .iter()
            .map(|&kind| Violation {
                kind,
                object: ObjectRef {
                    kind: "MmfPlugin",
                    namespace: None,
                    name: "p".to_owned(),
                },
                field: "spec".to_owned(),
                message: "wrong".to_owned(),
            })
            .collect(),
        signature: SignatureCheck::NotRequired,
        digest: None,
        config: serde_json::Value::Null,
    }
}

#[test]
fn a_plugin_state_is_its_most_serious_problem_class() {
    assert_eq!(
        PluginState::of(Some(&evaluation(&[]))),
        PluginState::Verified
    );
    assert_eq!(
        PluginState::of(Some(&evaluation(&[
            ViolationKind::ConfigInvalid,
            ViolationKind::ImageNotPinned,
            ViolationKind::UntrustedKey,
        ]))),
        PluginState::RejectedSignature
    );
    assert_eq!(
        PluginState::of(Some(&evaluation(&[
            ViolationKind::InvalidSpec,
            ViolationKind::ImageNotPinned
        ]))),
        PluginState::RejectedDigest
    );
    assert_eq!(
        PluginState::of(Some(&evaluation(&[ViolationKind::SchemaInvalid]))),
        PluginState::RejectedSchema
    );
    assert_eq!(
        PluginState::of(Some(&evaluation(&[ViolationKind::LimitsExceeded]))),
        PluginState::RejectedPolicy
    );
    assert_eq!(PluginState::of(None), PluginState::RejectedPolicy);
}

#[test]
fn staying_on_a_last_known_good_revision_is_announced_once_per_new_message() {
    let staying = |message: &str| {
        let mut entry = plugin_entry("payment", PluginLoadState::Loaded);
        entry.reason = Some(message.to_owned());
        service_status(false, vec![entry])
    };
    let before = service_status(
        false,
        vec![plugin_entry("payment", PluginLoadState::Loaded)],
    );
    let first = staying("payment 1.2.0 rejected: unsigned; staying on 1.1.0");
    assert_eq!(
        service_announcements(Some(&before), &first),
        vec![ServiceAnnouncement::StayingOnLastKnownGood {
            plugin: "payment".to_owned(),
            message: "payment 1.2.0 rejected: unsigned; staying on 1.1.0".to_owned(),
        }]
    );
    assert_eq!(service_announcements(Some(&first), &first), vec![]);
    let newer = staying("payment 1.3.0 rejected: unsigned; staying on 1.1.0");
    assert_eq!(
        service_announcements(Some(&first), &newer),
        vec![ServiceAnnouncement::StayingOnLastKnownGood {
            plugin: "payment".to_owned(),
            message: "payment 1.3.0 rejected: unsigned; staying on 1.1.0".to_owned(),
        }]
    );
}
