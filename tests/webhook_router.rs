//! The HTTP shell without a socket: what a body that is not a proper AdmissionReview gets, and
//! that nothing a client sends produces a 500.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::SharedConfig;
use mmf_operator::config::load_dir;
use mmf_operator::webhook::{AdmissionMetrics, AdmissionState, MAX_BODY_BYTES, metrics, router};
use serde_json::{Value, json};
use tower::ServiceExt;

fn state(metrics: AdmissionMetrics) -> AdmissionState {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    AdmissionState {
        config: Arc::new(SharedConfig::new(load_dir(&dir).unwrap(), "development")),
        view: Arc::new(StaticView::new().every_namespace_in("production")),
        metrics,
    }
}

async fn post(body: impl Into<Body>) -> (StatusCode, String) {
    post_with(AdmissionMetrics::unregistered(), body).await
}

async fn post_with(metrics: AdmissionMetrics, body: impl Into<Body>) -> (StatusCode, String) {
    let request = Request::post("/validate")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router(state(metrics)).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn fixture(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/admission/{file}")),
    )
    .unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_plain_message() {
    let (status, body) = post("{\"apiVersion\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "the body is not an admission.k8s.io/v1 AdmissionReview: EOF while parsing a value at line 1 column 15\n"
    );
}

#[tokio::test]
async fn json_that_is_not_a_review_is_a_400() {
    let (status, body) = post("[1, 2, 3]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("the body is not an admission.k8s.io/v1 AdmissionReview: invalid type"),
        "{body}"
    );
}

#[tokio::test]
async fn a_review_without_a_request_is_answered_invalid() {
    let (status, body) =
        post(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "",
                "allowed": false,
                "status": {
                    "status": "Failure",
                    "message": "the AdmissionReview has no request to answer",
                    "reason": "InvalidRequest",
                },
            },
        })
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let body = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES + 1));
    let (status, _) = post(body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_policy_denial_is_a_200_review_and_is_counted() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = metrics(&mut registry);
    let (status, body) = post_with(metrics.clone(), fixture("plugin-create-unsigned.json")).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["response"]["allowed"], json!(false));
    assert_eq!(body["response"]["status"]["code"], json!(403));
    let (_, _) = post_with(metrics, fixture("plugin-create-unsigned-dry-run.json")).await;

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            "mmf_admission_requests_total{kind=\"MmfPlugin\",namespace=\"prod\",operation=\"CREATE\",outcome=\"deny\",dry_run=\"false\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "mmf_admission_requests_total{kind=\"MmfPlugin\",namespace=\"prod\",operation=\"CREATE\",outcome=\"deny\",dry_run=\"true\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("mmf_admission_duration_seconds_count{kind=\"MmfPlugin\"} 2\n"),
        "{text}"
    );
}

#[tokio::test]
async fn nothing_in_the_fixtures_or_garbage_gives_a_500() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/admission");
    let mut bodies: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    bodies.extend(
        [
            "",
            "null",
            "{}",
            r#"{"request": null}"#,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}"#,
            "\u{0}\u{1}",
        ]
        .map(str::to_owned),
    );
    for body in bodies {
        let (status, text) = post(body.clone()).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{status} for {body:.80}: {text}"
        );
    }
}

#[tokio::test]
async fn only_post_validate_is_served() {
    let request = Request::get("/validate").body(Body::empty()).unwrap();
    let response = router(state(AdmissionMetrics::unregistered()))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
