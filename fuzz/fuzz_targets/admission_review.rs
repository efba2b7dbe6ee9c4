//! Any body the webhook may receive: parsed as the handler parses it, then judged. Must never
//! panic (a panic is a denial of service of admission for the whole cluster).
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use libfuzzer_sys::fuzz_target;
use mmf_operator::api::{ENVIRONMENT_LABEL, MmfPlugin};
use mmf_operator::config::{ConfigSet, load_dir};
use mmf_operator::cluster_view::ClusterView;
use mmf_operator::webhook::decide;

struct View;

impl ClusterView for View {
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let environment = if namespace.len() % 2 == 0 { "production" } else { "development" };
        Some(BTreeMap::from([(ENVIRONMENT_LABEL.to_owned(), environment.to_owned())]))
    }
    fn plugins_in(&self, _namespace: &str) -> Vec<Arc<MmfPlugin>> {
        Vec::new()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

fn config() -> &'static ConfigSet {
    static CONFIG: OnceLock<ConfigSet> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        load_dir(&dir).unwrap_or_default()
    })
}

fuzz_target!(|body: &[u8]| {
    if body.len() > mmf_operator::core::limits::MAX_ADMISSION_REVIEW_BYTES {
        return;
    }
    let Ok(review) = serde_json::from_slice::<AdmissionReview<DynamicObject>>(body) else {
        return;
    };
    let Ok(request): Result<AdmissionRequest<DynamicObject>, _> = review.try_into() else {
        return;
    };
    let _ = decide(&request, config(), "development", &View);
});
