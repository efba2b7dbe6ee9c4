//! `decide()` for an already verified plugin is cheap with the operator's signature verdict
//! cache (issue 12 wants its p99 under 0.2 ms): the shipped signed plugin's admission is
//! decided with and without the cache, and the cached answer must be the same.
//!
//! The latency figures are printed by the ignored measurement (build in release mode):
//!
//!     cargo test --release --test decide_latency -- --ignored --nocapture
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use mmf_operator::api::MmfPlugin;
use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::{ConfigSet, load_dir};
use mmf_operator::controller::metrics::SignatureVerdicts;
use mmf_operator::core::policy::Direct;
use mmf_operator::webhook::review::decide_with;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn setup() -> (AdmissionRequest<DynamicObject>, ConfigSet, StaticView) {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_str(&repo("tests/data/admission/plugin-create-compliant.json")).unwrap();
    let mut plugin: MmfPlugin =
        serde_saphyr::from_str(&repo("plugins/production_payment_service/plugin.yaml")).unwrap();
    plugin.metadata.namespace = Some("prod".to_owned());
    let configs = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config")).unwrap();
    (
        review.try_into().unwrap(),
        configs,
        StaticView::new()
            .every_namespace_in("production")
            .plugin(Arc::new(plugin)),
    )
}

#[test]
fn a_cached_verdict_gives_the_same_admission_answer_as_a_fresh_verification() {
    let (request, configs, view) = setup();
    let cache = SignatureVerdicts::default();
    let direct = decide_with(&request, &configs, "development", &view, &Direct);
    let first = decide_with(&request, &configs, "development", &view, &cache);
    let again = decide_with(&request, &configs, "development", &view, &cache);
    assert!(direct.allowed, "{direct:?}");
    assert_eq!(first, direct);
    assert_eq!(again, direct);
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99))
}

#[test]
#[ignore = "a measurement: run in release mode with --ignored --nocapture"]
fn measure_decide_with_and_without_the_verdict_cache() {
    let (request, configs, view) = setup();
    let cache = SignatureVerdicts::default();
    let runs = 2000;
    let mut direct = Vec::with_capacity(runs);
    let mut cached = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let verdict = decide_with(&request, &configs, "development", &view, &Direct);
        direct.push(started.elapsed());
        assert!(verdict.allowed);
        let started = Instant::now();
        let verdict = decide_with(&request, &configs, "development", &view, &cache);
        cached.push(started.elapsed());
        assert!(verdict.allowed);
    }
    let (direct_p50, direct_p99) = percentiles(direct);
    let (cached_p50, cached_p99) = percentiles(cached);
    println!(
        "decide(compliant signed MmfPlugin, production), {runs} runs: direct p50 {direct_p50:?} p99 {direct_p99:?}; cached p50 {cached_p50:?} p99 {cached_p99:?}"
    );
}
