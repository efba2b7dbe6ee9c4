//! Reconcile errors, named after the step that failed.

use std::time::Duration;

use crate::core::render::RenderError;

/// What went wrong while reconciling one object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing `status` failed.
    #[error("patching the status of {object}: {source}")]
    PatchStatus {
        object: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// A child's name is taken by an object this service does not control; it is left alone.
    #[error(
        "{kind} {namespace}/{name} already exists and is not this MmfService's ({owner}): it is left untouched; delete or rename it, or rename the MmfService"
    )]
    ChildNotOwned {
        kind: &'static str,
        namespace: String,
        name: String,
        owner: String,
    },
    /// Server-side apply of an owned object failed.
    #[error("applying {kind} {namespace}/{name}: {source}")]
    ApplyChild {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The service could not be rendered (input the policy should have refused).
    #[error("rendering {object}: {source}")]
    Render {
        object: String,
        #[source]
        source: RenderError,
    },
    /// The object has no namespace (the CRDs are namespaced, so the API server sent garbage).
    #[error("{kind} {name} has no namespace")]
    MissingNamespace { kind: &'static str, name: String },
    /// A cached child does not fit its Kubernetes type (the API server sent a field of another
    /// shape); only the owner's reconcile fails, the watch goes on.
    #[error("reading the cached {kind} {namespace}/{name}: {source}")]
    DecodeChild {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be serialized for a patch.
    #[error("serializing {what}: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::PatchStatus { .. } => "patch_status",
            Error::ApplyChild { .. } => "apply_child",
            Error::ChildNotOwned { .. } => "child_not_owned",
            Error::Render { .. } => "render",
            Error::MissingNamespace { .. } => "missing_namespace",
            Error::Serialize { .. } => "serialize",
            Error::DecodeChild { .. } => "decode_child",
        }
    }

    /// Transient failures (the API server busy, unreachable, or a conflict) are retried with
    /// backoff; permanent ones wait for the object to change, with a slow safety retry.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::PatchStatus { source, .. } | Error::ApplyChild { source, .. } => {
                match source.as_ref() {
                    kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500..=599),
                    _ => true,
                }
            }
            Error::Render { .. }
            | Error::MissingNamespace { .. }
            | Error::Serialize { .. }
            | Error::DecodeChild { .. }
            | Error::ChildNotOwned { .. } => false,
        }
    }
}

/// Exponential backoff for transient failures: 1 s, 2 s, 4 s ... up to 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1_u64 << attempt.min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(8), Duration::from_secs(256));
        assert_eq!(backoff(9), Duration::from_secs(300));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
