//! The HTTP shell around [`review`](super::review::review): one `POST /validate` route that
//! reads an AdmissionReview, asks the decision core, and counts the answer.
//!
//! A policy "no" is an AdmissionReview with `allowed: false` (HTTP 200), never an HTTP error:
//! only a body that is not an AdmissionReview at all gets a 400, and an oversized one a 413.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::field::Empty;

use super::configuration::VALIDATE_PATH;
use super::review::{ReviewedKind, Verdict, decide_with, reviewed_kind};
use crate::audit::AuditLog;
use crate::cluster_view::ClusterView;
use crate::config::SharedConfig;
use crate::core::audit::admission_record;
use crate::verdicts::SignatureVerdicts;

/// Largest AdmissionReview accepted (see the limit's own documentation).
pub const MAX_BODY_BYTES: usize = crate::core::limits::MAX_ADMISSION_REVIEW_BYTES;

/// Labels of `mmf_admission_requests`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `MmfPlugin`, `MmfService`, or `other`.
    pub kind: String,
    /// Namespace of the object.
    pub namespace: String,
    /// `CREATE`, `UPDATE`, ...
    pub operation: String,
    /// `admit`, `warn` or `deny`.
    pub outcome: String,
    /// `true` for `kubectl --dry-run=server` and similar.
    pub dry_run: String,
}

/// Labels of `mmf_admission_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `MmfPlugin`, `MmfService`, or `other`.
    pub kind: String,
}

/// Labels of `mmf_admission_plugin_denials`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    /// Namespace of the plugin.
    pub namespace: String,
    /// Name of the plugin.
    pub plugin: String,
    /// CamelCase reason of a violation (`SignatureMissing`), one count per distinct reason.
    pub reason: String,
}

type HistogramFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

/// The webhook's metrics, its audit log and the signature verdict cache it shares with the
/// controllers; cheap to clone (shared counters).
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    denials: Family<DenialLabels, Counter>,
    certificate_expiry: Gauge,
    audit: AuditLog,
    signatures: Arc<SignatureVerdicts>,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s: past the chart's "p99 above 1 s" alert, which a quantile capped at the
    // highest bucket (0.8 s before) could never raise.
    Histogram::new(exponential_buckets(0.00005, 2.0, 17))
}

impl AdmissionMetrics {
    /// Unregistered metrics (tests and benchmarks).
    pub fn unregistered() -> AdmissionMetrics {
        AdmissionMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            denials: Family::default(),
            certificate_expiry: Gauge::default(),
            audit: AuditLog::default(),
            signatures: Arc::new(SignatureVerdicts::default()),
        }
    }

    /// Shares the controllers' audit log and signature verdict cache (`mmf run`).
    pub fn sharing(
        self,
        audit: &AuditLog,
        signatures: &Arc<SignatureVerdicts>,
    ) -> AdmissionMetrics {
        AdmissionMetrics {
            audit: audit.clone(),
            signatures: Arc::clone(signatures),
            ..self
        }
    }

    /// Requests answered, by outcome.
    pub fn requests(&self) -> &Family<RequestLabels, Counter> {
        &self.requests
    }

    /// Plugin denials, by namespace, plugin and reason.
    pub fn denials(&self) -> &Family<DenialLabels, Counter> {
        &self.denials
    }

    /// The gauge the served certificate's notAfter is written to.
    pub fn certificate_expiry(&self) -> Gauge {
        self.certificate_expiry.clone()
    }

    /// Counts a denied MmfPlugin once per distinct violation reason (dry runs are not
    /// counted: nothing was stored or refused for good).
    fn count_denial(&self, request: &AdmissionRequest<DynamicObject>, verdict: &Verdict) {
        if verdict.allowed || request.dry_run {
            return;
        }
        let mut reasons: Vec<&str> = verdict.violations.iter().map(|v| v.kind.reason()).collect();
        if reasons.is_empty() {
            reasons.push(verdict.reason);
        }
        reasons.sort_unstable();
        reasons.dedup();
        for reason in reasons {
            self.denials
                .get_or_create(&DenialLabels {
                    namespace: request.namespace.clone().unwrap_or_default(),
                    plugin: request.name.clone(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }
}

/// Registers `mmf_admission_requests`, `mmf_admission_duration_seconds`,
/// `mmf_admission_plugin_denials` and `mmf_webhook_certificate_expiry_timestamp_seconds` in
/// `registry`.
pub fn metrics(registry: &mut Registry) -> AdmissionMetrics {
    let metrics = AdmissionMetrics::unregistered();
    registry.register(
        "mmf_admission_requests",
        "Admission reviews answered, by kind, namespace, operation, outcome and dry run",
        metrics.requests.clone(),
    );
    registry.register(
        "mmf_admission_duration_seconds",
        "Time to decide one admission review",
        metrics.duration.clone(),
    );
    registry.register(
        "mmf_admission_plugin_denials",
        "MmfPlugins denied by a strict environment, per namespace, plugin and violation reason",
        metrics.denials.clone(),
    );
    registry.register(
        "mmf_webhook_certificate_expiry_timestamp_seconds",
        "notAfter of the served webhook certificate, Unix seconds",
        metrics.certificate_expiry.clone(),
    );
    metrics
}

/// What the handler reads: the policy, the caches, the counters.
#[derive(Clone)]
pub struct AdmissionState {
    /// Current environment config and default environment.
    pub config: Arc<SharedConfig>,
    /// Namespace labels and plugins, from the controller's caches.
    pub view: Arc<dyn ClusterView>,
    /// Counters.
    pub metrics: AdmissionMetrics,
}

/// The webhook's routes: `POST /validate`, with the body size limit.
pub fn router(state: AdmissionState) -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(validate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn json_review(response: AdmissionResponse) -> Response {
    match serde_json::to_vec(&response.into_review()) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(error) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the AdmissionReview response: {error}"),
        ),
    }
}

/// A body over [`MAX_BODY_BYTES`] (or unreadable), answered with the limit named.
fn refused_body(rejection: &BytesRejection) -> Response {
    let message = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the AdmissionReview body is larger than the {MAX_BODY_BYTES} bytes allowed\n")
    } else {
        format!(
            "reading the AdmissionReview body: {}\n",
            rejection.body_text()
        )
    };
    tracing::warn!(
        message = message.trim_end(),
        "refused an AdmissionReview body"
    );
    plain(rejection.status(), message)
}

fn operation_label(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

#[tracing::instrument(
    name = "admission",
    skip_all,
    fields(kind = Empty, namespace = Empty, name = Empty, operation = Empty, dry_run = Empty, allowed = Empty)
)]
async fn validate(
    State(state): State<AdmissionState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refused_body(&rejection),
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(error) => {
            tracing::warn!(%error, "refused a body that is not an AdmissionReview");
            return plain(
                StatusCode::BAD_REQUEST,
                format!("the body is not an admission.k8s.io/v1 AdmissionReview: {error}\n"),
            );
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, "AdmissionReview without a request");
            return json_review(AdmissionResponse::invalid(
                "the AdmissionReview has no request to answer",
            ));
        }
    };
    let kind = reviewed_kind(&request).map_or("other", |k| k.as_str());
    let namespace = request.namespace.clone().unwrap_or_default();
    let operation = operation_label(&request.operation);
    let span = tracing::Span::current();
    span.record("kind", kind);
    span.record("namespace", namespace.as_str());
    span.record("name", request.name.as_str());
    span.record("operation", operation);
    span.record("dry_run", request.dry_run);

    let config = state.config.current();
    let verdict = decide_with(
        &request,
        &config,
        state.config.default_environment(),
        state.view.as_ref(),
        state.metrics.signatures.as_ref(),
    );
    span.record("allowed", verdict.allowed);
    if verdict.allowed {
        tracing::debug!(warnings = verdict.warnings.len(), "admitted");
    } else {
        tracing::info!(message = %verdict.message, "denied");
    }
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            kind: kind.to_owned(),
            namespace,
            operation: operation.to_owned(),
            outcome: verdict.outcome.as_str().to_owned(),
            dry_run: request.dry_run.to_string(),
        })
        .inc();
    if let Some(reviewed) = reviewed_kind(&request) {
        if reviewed == ReviewedKind::Plugin {
            state.metrics.count_denial(&request, &verdict);
        }
        state.metrics.audit.write(&admission_record(
            k8s_openapi::jiff::Timestamp::now(),
            &request,
            reviewed.as_str(),
            verdict.environment.as_deref(),
            verdict.outcome,
            &verdict.violations,
        ));
    }
    state
        .metrics
        .duration
        .get_or_create(&KindLabels {
            kind: kind.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    json_review(verdict.into_response(&request))
}
