//! What changed between the old and the next status, as typed announcements: one
//! comparison with two outputs, Events for the service owner (`kubectl describe`) and audit
//! records for the security team.
//!
//! Pure: both statuses in, announcements out, in a stable order.

use crate::api::conditions::{reasons, types};
use crate::api::{MmfPluginStatus, MmfServiceStatus, PluginLoadState};
use crate::core::policy::PluginEvaluation;
use crate::core::violation::ViolationKind;

/// A plugin's standing in its environment, for `mmf_plugin_state{state}`: verified when it
/// passes every check of the policy (in a lenient environment too), otherwise the class of
/// its first problem, signature before digest before schema before the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginState {
    /// Passes every check.
    Verified,
    /// Unsigned, untrusted key, or a signature that does not verify.
    RejectedSignature,
    /// Image not pinned by digest.
    RejectedDigest,
    /// Invalid spec or configuration (schema).
    RejectedSchema,
    /// Anything else, including a namespace whose environment has no config file.
    RejectedPolicy,
}

impl PluginState {
    /// Every state, in the order the gauges are written.
    pub const ALL: [PluginState; 5] = [
        PluginState::Verified,
        PluginState::RejectedSignature,
        PluginState::RejectedDigest,
        PluginState::RejectedSchema,
        PluginState::RejectedPolicy,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Verified => "verified",
            PluginState::RejectedSignature => "rejected_signature",
            PluginState::RejectedDigest => "rejected_digest",
            PluginState::RejectedSchema => "rejected_schema",
            PluginState::RejectedPolicy => "rejected_policy",
        }
    }

    /// The state of a plugin judged as `evaluation`; None when its environment is unknown.
    pub fn of(evaluation: Option<&PluginEvaluation>) -> PluginState {
        let Some(evaluation) = evaluation else {
            return PluginState::RejectedPolicy;
        };
        let class = |kind: ViolationKind| match kind {
            ViolationKind::SignatureMissing
            | ViolationKind::SignatureInvalid
            | ViolationKind::UntrustedKey => PluginState::RejectedSignature,
            ViolationKind::ImageNotPinned => PluginState::RejectedDigest,
            ViolationKind::ConfigInvalid
            | ViolationKind::InvalidSpec
            | ViolationKind::SchemaInvalid => PluginState::RejectedSchema,
            _ => PluginState::RejectedPolicy,
        };
        evaluation
            .violations
            .iter()
            .map(|v| class(v.kind))
            .min()
            .unwrap_or(PluginState::Verified)
    }
}

/// The signature verdict a plugin's `SignatureVerified` condition states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureVerdict {
    /// Signed by a trusted key.
    Verified,
    /// Not checked: the environment does not require signatures and none verified.
    NotRequired,
    /// Required and failed; the condition's reason (`SignatureMissing`, `UntrustedKey`, ...).
    Rejected(String),
}

impl SignatureVerdict {
    /// `verified`, `not_required` or `rejected`, as audit records spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SignatureVerdict::Verified => "verified",
            SignatureVerdict::NotRequired => "not_required",
            SignatureVerdict::Rejected(_) => "rejected",
        }
    }

    /// The condition reason behind the verdict.
    pub fn reason(&self) -> &str {
        match self {
            SignatureVerdict::Verified => reasons::VERIFIED,
            SignatureVerdict::NotRequired => reasons::NOT_REQUIRED,
            SignatureVerdict::Rejected(reason) => reason,
        }
    }

    fn of(status: &MmfPluginStatus) -> Option<SignatureVerdict> {
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == types::SIGNATURE_VERIFIED)?;
        Some(
            match (condition.status.as_str(), condition.reason.as_str()) {
                ("True", reasons::VERIFIED) => SignatureVerdict::Verified,
                ("True", _) => SignatureVerdict::NotRequired,
                (_, reason) => SignatureVerdict::Rejected(reason.to_owned()),
            },
        )
    }
}

/// A change in a plugin's status worth telling someone about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAnnouncement {
    /// `Ready` became False: services may no longer load the plugin.
    Rejected {
        /// The `Ready` message.
        message: String,
    },
    /// `Ready` went from False to True.
    Accepted {
        /// The `Ready` message.
        message: String,
    },
    /// The signature verdict changed (verified to rejected and back). The first verdict of a
    /// new plugin is not a change: its admission is recorded instead.
    SignatureVerdictChanged {
        /// The verdict before.
        from: SignatureVerdict,
        /// The verdict now.
        to: SignatureVerdict,
    },
}

/// Announcements for a plugin whose status goes from `old` to `next`.
pub fn plugin_announcements(
    old: Option<&MmfPluginStatus>,
    next: &MmfPluginStatus,
) -> Vec<PluginAnnouncement> {
    let mut announcements = Vec::new();
    let ready = |status: Option<&MmfPluginStatus>| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::READY))
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let before = ready(old).map_or_else(|| "Unknown".to_owned(), |(status, _)| status);
    if let Some((after, message)) = ready(Some(next))
        && before != after
    {
        match after.as_str() {
            "False" => announcements.push(PluginAnnouncement::Rejected { message }),
            "True" if before == "False" => {
                announcements.push(PluginAnnouncement::Accepted { message })
            }
            _ => {}
        }
    }
    if let (Some(from), Some(to)) = (
        old.and_then(SignatureVerdict::of),
        SignatureVerdict::of(next),
    ) && from != to
    {
        announcements.push(PluginAnnouncement::SignatureVerdictChanged { from, to });
    }
    announcements
}

/// A change in a service's status worth telling someone about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAnnouncement {
    /// A requested plugin changed state (or appeared) in `status.plugins`.
    PluginState {
        /// The plugin's name.
        plugin: String,
        /// Its version, when the plugin exists.
        version: Option<String>,
        /// The digest of its signed payload.
        digest: Option<String>,
        /// The state before (None: not listed before).
        from: Option<PluginLoadState>,
        /// The state now.
        to: PluginLoadState,
        /// Why it is not loaded.
        reason: Option<String>,
        /// True when the whole rollout is blocked (every plugin is then held back).
        blocked: bool,
    },
    /// A strict environment started blocking the rollout.
    RolloutBlocked {
        /// The `Ready` message.
        message: String,
    },
    /// A followed plugin's newest matching revision was rejected and the service stays on an
    /// older good one: announced once, when the entry first says so (or says something new).
    StayingOnLastKnownGood {
        /// Plugin name.
        plugin: String,
        /// `production-payment 1.2.0 rejected: ...; staying on 1.1.0`.
        message: String,
    },
}

/// Announcements for a service whose status goes from `old` to `next`.
pub fn service_announcements(
    old: Option<&MmfServiceStatus>,
    next: &MmfServiceStatus,
) -> Vec<ServiceAnnouncement> {
    let stalled = |status: Option<&MmfServiceStatus>| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::STALLED))
            .is_some_and(|c| c.status == "True")
    };
    let blocked = stalled(Some(next));
    let mut announcements: Vec<ServiceAnnouncement> = next
        .plugins
        .iter()
        .filter_map(|plugin| {
            let from = old
                .and_then(|s| s.plugins.iter().find(|p| p.name == plugin.name))
                .map(|p| p.state);
            (from != Some(plugin.state)).then(|| ServiceAnnouncement::PluginState {
                plugin: plugin.name.clone(),
                version: plugin.version.clone(),
                digest: plugin.digest.clone(),
                from,
                to: plugin.state,
                reason: plugin.reason.clone(),
                blocked,
            })
        })
        .collect();
    for plugin in &next.plugins {
        // A loaded entry carries a reason only when it stays on a last-known-good revision.
        let Some(message) = plugin
            .reason
            .as_ref()
            .filter(|_| plugin.state == PluginLoadState::Loaded)
        else {
            continue;
        };
        let before = old
            .and_then(|s| s.plugins.iter().find(|p| p.name == plugin.name))
            .filter(|p| p.state == PluginLoadState::Loaded)
            .and_then(|p| p.reason.as_ref());
        if before != Some(message) {
            announcements.push(ServiceAnnouncement::StayingOnLastKnownGood {
                plugin: plugin.name.clone(),
                message: message.clone(),
            });
        }
    }
    if blocked && !stalled(old) {
        let message = next
            .conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        announcements.push(ServiceAnnouncement::RolloutBlocked { message });
    }
    announcements
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
