//! Size and depth caps on every input (issue 11, "Caps"): manifests, AdmissionReviews, config
//! files and plugin JSON schemas. Each refusal names the file or object, the field when there
//! is one, and the limit; one byte or level under the limit is accepted.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use assert_cmd::Command;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::SharedConfig;
use mmf_operator::config::load_dir;
use mmf_operator::core::limits::{
    MAX_ADMISSION_REVIEW_BYTES, MAX_CONFIG_FILE_BYTES, MAX_DEPTH, MAX_MANIFEST_BYTES,
    MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH,
};
use mmf_operator::core::manifest::parse_documents;
use mmf_operator::webhook::{AdmissionMetrics, AdmissionState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const PLUGIN_HEAD: &str = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: deep\nspec:\n  version: 1.0.0\n  image: registry.example/deep@sha256:0123\n";

/// A flow-style YAML/JSON value nested `levels` deep: `{a: {a: ... 1}}`.
fn nested_flow(levels: usize) -> String {
    format!("{}1{}", "{\"a\": ".repeat(levels), "}".repeat(levels))
}

fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = json!({ "a": value });
    }
    value
}

fn shipped_config(dir: &Path) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for file in ["base.yaml", "development.yaml", "production.yaml"] {
        std::fs::copy(config.join(file), dir.join(file)).unwrap();
    }
}

#[test]
fn a_manifest_file_over_the_cap_is_refused_naming_file_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    let filler = format!("# {}\n", "x".repeat(1000));
    let mut text = String::from(PLUGIN_HEAD);
    while text.len() <= MAX_MANIFEST_BYTES {
        text.push_str(&filler);
    }
    std::fs::write(&file, &text).unwrap();
    let started = Instant::now();
    let output = Command::cargo_bin("mmf")
        .unwrap()
        .args(["check", "--env", "development", "-f"])
        .arg(&file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: {}: file is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed\n",
            file.display(),
            text.len()
        )
    );
    println!(
        "figure: a {} byte manifest refused in {:.2?}",
        text.len(),
        started.elapsed()
    );
}

/// The CLI reads manifests on its main thread (8 MiB of stack); the reader needs about 40 KiB
/// per level in a debug build, more than a 2 MiB test thread holds at the limit.
fn on_cli_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(work)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn manifest_nesting_past_the_limit_is_refused_naming_the_file_and_limit() {
    on_cli_stack(manifest_nesting);
}

fn manifest_nesting() {
    // The document's own two levels (the root and spec) plus the value.
    let ok = format!("{PLUGIN_HEAD}  config: {}\n", nested_flow(MAX_DEPTH - 2));
    assert!(parse_documents("ok.yaml", &ok).is_ok());
    let deep = format!("{PLUGIN_HEAD}  config: {}\n", nested_flow(MAX_DEPTH - 1));
    let error = parse_documents("deep.yaml", &deep).unwrap_err();
    assert_eq!(
        error.to_string(),
        // Line 8, at the brace that opens level 65.
        format!("deep.yaml:8:383: YAML nested deeper than the {MAX_DEPTH} levels allowed")
    );
    let block: String = (0..200)
        .map(|level| format!("{}a:\n", "  ".repeat(level)))
        .collect();
    let error = parse_documents("block.yaml", &block).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("block.yaml:65:129: YAML nested deeper than the {MAX_DEPTH} levels allowed")
    );
}

#[test]
fn a_config_file_over_the_size_or_depth_cap_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    shipped_config(dir.path());
    assert!(load_dir(dir.path()).is_ok());

    let big = dir.path().join("staging.yaml");
    let text = format!(
        "plugins:\n  loading: strict\n# {}\n",
        "x".repeat(MAX_CONFIG_FILE_BYTES)
    );
    std::fs::write(&big, &text).unwrap();
    assert_eq!(
        load_dir(dir.path()).unwrap_err().to_string(),
        format!(
            "{}: file is {} bytes, more than the {MAX_CONFIG_FILE_BYTES} allowed",
            big.display(),
            text.len()
        )
    );

    std::fs::remove_file(&big).unwrap();
    // Plugin settings are free-form: only the depth cap stops them.
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let settings = dir.path().join("plugins/payments.yaml");
    std::fs::write(
        &settings,
        format!("default: {}\n", nested_flow(MAX_DEPTH - 1)),
    )
    .unwrap();
    assert!(load_dir(dir.path()).is_ok());
    std::fs::write(&settings, format!("default: {}\n", nested_flow(MAX_DEPTH))).unwrap();
    assert_eq!(
        load_dir(dir.path()).unwrap_err().to_string(),
        format!(
            "{}:1:388: YAML nested deeper than the {MAX_DEPTH} levels allowed",
            settings.display()
        )
    );
}

async fn post(body: Vec<u8>) -> (StatusCode, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let state = AdmissionState {
        config: Arc::new(SharedConfig::new(load_dir(&dir).unwrap(), "development")),
        view: Arc::new(StaticView::new()),
        metrics: AdmissionMetrics::unregistered(),
    };
    let request = Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router(state).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn review(spec: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "mmf.marty.dev", "version": "v1alpha1", "kind": "MmfPlugin"},
            "resource": {"group": "mmf.marty.dev", "version": "v1alpha1", "resource": "mmfplugins"},
            "name": "capped", "namespace": "dev", "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "mmf.marty.dev/v1alpha1", "kind": "MmfPlugin",
                       "metadata": {"name": "capped", "namespace": "dev"}, "spec": spec},
        }
    }))
    .unwrap()
}

fn spec() -> Value {
    json!({"version": "1.0.0", "image": "registry.example/capped@sha256:0123"})
}

#[tokio::test]
async fn an_admission_review_over_the_cap_is_a_413_naming_the_limit() {
    let mut padded = spec();
    padded["description"] = "d".into();
    let overhead = review(padded.clone()).len() - 1;
    padded["description"] = "d".repeat(MAX_ADMISSION_REVIEW_BYTES - overhead).into();
    let at_limit = review(padded.clone());
    assert_eq!(at_limit.len(), MAX_ADMISSION_REVIEW_BYTES);
    let (status, body) = post(at_limit).await;
    assert_eq!(status, StatusCode::OK, "{body:.300}");

    padded["description"] = "d".repeat(MAX_ADMISSION_REVIEW_BYTES - overhead + 1).into();
    let (status, body) = post(review(padded)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        format!(
            "the AdmissionReview body is larger than the {MAX_ADMISSION_REVIEW_BYTES} bytes allowed\n"
        )
    );
}

fn denial(body: &str) -> (Value, Value) {
    let review: Value = serde_json::from_str(body).unwrap();
    let response = &review["response"];
    (
        response["allowed"].clone(),
        response["status"]["message"].clone(),
    )
}

#[tokio::test]
async fn a_reviewed_object_nested_past_the_limit_is_denied_naming_the_field() {
    let mut object = spec();
    // object -> spec -> config -> value: the object's own two levels plus the value.
    object["config"] = nested(MAX_DEPTH - 2);
    let (status, body) = post(review(object.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(denial(&body).0, json!(true), "{body}");

    object["config"] = nested(MAX_DEPTH - 1);
    let (_, body) = post(review(object)).await;
    assert_eq!(
        denial(&body),
        (
            json!(false),
            json!(format!(
                "MmfPlugin \"capped\": spec.config.a.a.a.a…: nested deeper than the {MAX_DEPTH} levels allowed"
            ))
        )
    );
}

#[tokio::test]
async fn a_config_schema_over_the_size_or_depth_cap_is_reported_at_spec_config_schema() {
    let mut object = spec();
    object["configSchema"] = nested(MAX_SCHEMA_DEPTH + 1);
    let (_, body) = post(review(object.clone())).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let warnings = answer["response"]["warnings"].to_string();
    let expected = format!(
        "spec.configSchema: not a usable JSON Schema: spec.configSchema.a.a.a.a.a.a…: nested deeper than the {MAX_SCHEMA_DEPTH} levels allowed"
    );
    assert!(warnings.contains(&expected), "{warnings}");

    object["configSchema"] = json!({"description": "d".repeat(MAX_SCHEMA_BYTES)});
    let (_, body) = post(review(object)).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let warnings = answer["response"]["warnings"].to_string();
    let expected = format!(
        "spec.configSchema is {} bytes as JSON, more than the {MAX_SCHEMA_BYTES} allowed",
        MAX_SCHEMA_BYTES + 18
    );
    assert!(warnings.contains(&expected), "{warnings}");
}
