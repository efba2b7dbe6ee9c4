//! "Does this violation stop the object?", decided once for the webhook, the controller and
//! `mmf check`.
//!
//! Two scopes, because the two moments see different things. At admission the object arrives
//! alone: `kubectl apply -f dir/` applies files alphabetically and GitOps tools in any order,
//! so a violation about *other* objects (a plugin not applied yet, a dependency, a referenced
//! plugin that is itself rejected) only warns there. At rollout (and in `mmf check`, which
//! is given the whole set of manifests as the rollout sees them) every violation counts.

use crate::core::config::LoadingMode;
use crate::core::violation::Violation;

/// What happens to an object with a set of violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Nothing is wrong.
    Admit,
    /// Accepted, with each violation shown as a warning (lenient, or not the object's fault).
    Warn,
    /// Stopped: denied at admission, the rollout blocked, the CI gate failed.
    Deny,
}

impl Outcome {
    /// The label value of `mmf_admission_requests_total{outcome}` and of audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Admit => "admit",
            Outcome::Warn => "warn",
            Outcome::Deny => "deny",
        }
    }
}

/// When the decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The admission webhook: only violations about the object itself deny.
    Admission,
    /// Reconcile and `mmf check`: every violation counts.
    Rollout,
}

/// The one rule: in a strict environment a counting violation stops the object; anything else
/// that is wrong warns.
pub fn outcome(violations: &[Violation], mode: LoadingMode, scope: Scope) -> Outcome {
    if violations.is_empty() {
        return Outcome::Admit;
    }
    let counts = |violation: &&Violation| match scope {
        Scope::Admission => !violation.kind.is_referential(),
        Scope::Rollout => true,
    };
    if mode == LoadingMode::Strict && violations.iter().any(|v| counts(&v)) {
        Outcome::Deny
    } else {
        Outcome::Warn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::violation::{ObjectRef, ViolationKind};

    fn violation(kind: ViolationKind) -> Violation {
        Violation {
            kind,
            object: ObjectRef {
                kind: "MmfPlugin",
                namespace: Some("prod".to_owned()),
                name: "payment".to_owned(),
            },
            field: "spec".to_owned(),
            message: "wrong".to_owned(),
        }
    }

    #[test]
    fn no_violation_is_admitted_in_every_mode_and_scope() {
        for mode in [LoadingMode::Strict, LoadingMode::Lenient] {
            for scope in [Scope::Admission, Scope::Rollout] {
                assert_eq!(outcome(&[], mode, scope), Outcome::Admit);
            }
        }
    }

    #[test]
    fn an_own_violation_denies_in_strict_and_warns_in_lenient() {
        let own = [violation(ViolationKind::SignatureMissing)];
        for scope in [Scope::Admission, Scope::Rollout] {
            assert_eq!(outcome(&own, LoadingMode::Strict, scope), Outcome::Deny);
            assert_eq!(outcome(&own, LoadingMode::Lenient, scope), Outcome::Warn);
        }
    }

    #[test]
    fn a_referential_violation_only_warns_at_admission_but_blocks_a_strict_rollout() {
        let referential = [violation(ViolationKind::PluginNotFound)];
        assert_eq!(
            outcome(&referential, LoadingMode::Strict, Scope::Admission),
            Outcome::Warn
        );
        assert_eq!(
            outcome(&referential, LoadingMode::Strict, Scope::Rollout),
            Outcome::Deny
        );
        assert_eq!(
            outcome(&referential, LoadingMode::Lenient, Scope::Rollout),
            Outcome::Warn
        );
    }

    #[test]
    fn one_own_violation_among_referential_ones_denies_at_admission() {
        let mixed = [
            violation(ViolationKind::DependencyMissing),
            violation(ViolationKind::LimitsExceeded),
        ];
        assert_eq!(
            outcome(&mixed, LoadingMode::Strict, Scope::Admission),
            Outcome::Deny
        );
    }
}
