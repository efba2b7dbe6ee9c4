//! Hostile AdmissionReviews: several hundred generated MmfPlugins and MmfServices (signature
//! byte flips, key confusion between Ed25519 and ECDSA P-256, a signature moved to another
//! plugin, deep JSON, wrong types, unicode and huge strings, self-referencing schemas, long
//! dependency cycles, bodies over the cap) posted to the webhook's router. Each gets a precise
//! answer naming its reason, within a time bound, and nothing panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::BodyExt;
use mmf_operator::api::{ENVIRONMENT_LABEL, MmfPlugin};
use mmf_operator::cluster_view::ClusterView;
use mmf_operator::config::ConfigSet;
use mmf_operator::config::SharedConfig;
use mmf_operator::core::limits::{MAX_ADMISSION_REVIEW_BYTES, MAX_DEPTH, MAX_SCHEMA_DEPTH};
use mmf_operator::core::signature::{SigningKey, sign};
use mmf_operator::webhook::{AdmissionMetrics, AdmissionState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const ED_KEY: &str = include_str!("data/ed25519-test-key.pem");
const ED_PUB: &str = include_str!("data/ed25519-test-key.pub.pem");
const P256_KEY: &str = include_str!("data/p256-test-key.pem");
const P256_PUB: &str = include_str!("data/p256-test-key.pub.pem");
const DIGEST: &str = "sha256:5fdfe21e1a6ffb2dc7fb404c2c9893091825dc2072ec70e0eb06f01850ad1792";
/// No single review may take longer than this (the API server's webhook timeout is 10 s).
const PER_CALL: Duration = Duration::from_secs(5);

/// `prod` requires signatures by the two test keys; `strict` denies violations but needs no
/// signature, so schema and config problems are the only reasons there.
fn config() -> ConfigSet {
    let indent = |pem: &str| pem.trim().replace('\n', "\n          ");
    let prod = format!(
        "plugins:\n  loading: strict\n  security:\n    require_signature: true\n    require_digest: true\n    trusted_keys:\n      - id: ed-key\n        public_key: |\n          {}\n      - id: p256-key\n        public_key: |\n          {}\n",
        indent(ED_PUB),
        indent(P256_PUB)
    );
    let strict = "plugins:\n  loading: strict\n  security:\n    require_signature: false\n    require_digest: false\n    require_service_digest: false\n    sandboxing:\n      enabled: false\n";
    ConfigSet::from_files(&[
        (
            "base.yaml",
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/config/base.yaml")),
        ),
        ("prod.yaml", prod.as_str()),
        ("strict.yaml", strict),
    ])
    .unwrap()
}

/// Namespace `prod` is environment prod, `strict` is strict; its plugins are the case's.
struct View {
    plugins: Vec<Arc<MmfPlugin>>,
}

impl ClusterView for View {
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(
            ENVIRONMENT_LABEL.to_owned(),
            namespace.to_owned(),
        )]))
    }
    fn plugins_in(&self, _namespace: &str) -> Vec<Arc<MmfPlugin>> {
        self.plugins.clone()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

/// What a case must get back.
#[derive(Debug)]
enum Expect {
    /// An HTTP error (not a review) whose body contains the text.
    Http(StatusCode, String),
    /// `allowed: false` with this code and every text in the message.
    Denied(u16, Vec<String>),
    /// `allowed: true`, every text in some warning.
    Allowed(Vec<String>),
}

struct Case {
    family: &'static str,
    body: Vec<u8>,
    plugins: Vec<Arc<MmfPlugin>>,
    expect: Expect,
}

fn denied(code: u16, texts: &[&str]) -> Expect {
    Expect::Denied(code, texts.iter().map(|t| (*t).to_owned()).collect())
}

fn review(namespace: &str, object: &Value) -> Vec<u8> {
    let resource = match object["kind"].as_str() {
        Some("MmfService") => "mmfservices",
        _ => "mmfplugins",
    };
    let gvr = json!({"group": "mmf.marty.dev", "version": "v1alpha1", "resource": resource});
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "hostile", "kind": {"group": "mmf.marty.dev", "version": "v1alpha1", "kind": object["kind"]},
            "resource": gvr, "name": object["metadata"]["name"], "namespace": namespace,
            "operation": "CREATE", "userInfo": {"username": "mallory"}, "object": object,
        }
    }))
    .unwrap()
}

fn plugin(name: &str) -> Value {
    json!({
        "apiVersion": "mmf.marty.dev/v1alpha1", "kind": "MmfPlugin",
        "metadata": {"name": name},
        "spec": {"version": "1.0.0", "image": format!("registry.example/{name}@{DIGEST}"),
                 "services": [{"name": "api", "routes": [{"path": "/x", "methods": ["GET"]}]}]},
    })
}

fn service(name: &str, plugins: &[&str]) -> Value {
    let plugins: Vec<Value> = plugins.iter().map(|p| json!({"name": p})).collect();
    json!({
        "apiVersion": "mmf.marty.dev/v1alpha1", "kind": "MmfService",
        "metadata": {"name": name},
        "spec": {"image": format!("registry.example/{name}@{DIGEST}"), "plugins": plugins},
    })
}

fn signed(mut object: Value, key: &str, key_id: &str) -> Value {
    let typed: MmfPlugin = serde_json::from_value(object.clone()).unwrap();
    let signature = sign(&typed, &SigningKey::from_pem(key).unwrap(), key_id).unwrap();
    object["spec"]["signature"] = serde_json::to_value(signature).unwrap();
    object
}

fn with_signature_bytes(mut object: Value, edit: impl FnOnce(&mut Vec<u8>)) -> Value {
    let mut bytes = BASE64
        .decode(object["spec"]["signature"]["value"].as_str().unwrap())
        .unwrap();
    edit(&mut bytes);
    object["spec"]["signature"]["value"] = BASE64.encode(bytes).into();
    object
}

fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = json!({ "a": value });
    }
    value
}

fn does_not_verify(key_id: &str) -> String {
    format!("spec.signature.value does not verify with key \"{key_id}\"")
}

fn signature_cases(cases: &mut Vec<Case>) {
    let case = |family, object: &Value, expect| Case {
        family,
        body: review("prod", object),
        plugins: Vec::new(),
        expect,
    };
    let ed = signed(plugin("pay"), ED_KEY, "ed-key");
    let p256 = signed(plugin("pay"), P256_KEY, "p256-key");
    cases.push(case("signature intact", &ed, Expect::Allowed(vec![])));
    cases.push(case("signature intact", &p256, Expect::Allowed(vec![])));
    for index in 0..64 {
        let flipped = with_signature_bytes(ed.clone(), |b| b[index] ^= 0x01);
        let expect = denied(403, &[&does_not_verify("ed-key")]);
        cases.push(case("signature byte flip", &flipped, expect));
    }
    // The last 16 bytes lie inside the DER integer `s`: still DER, no longer the signature.
    let der_len = BASE64
        .decode(p256["spec"]["signature"]["value"].as_str().unwrap())
        .unwrap()
        .len();
    for index in der_len - 16..der_len {
        let flipped = with_signature_bytes(p256.clone(), |b| b[index] ^= 0x01);
        let expect = denied(403, &[&does_not_verify("p256-key")]);
        cases.push(case("signature byte flip", &flipped, expect));
    }
    let not_der = with_signature_bytes(p256.clone(), |b| b[0] ^= 0xff);
    cases.push(case(
        "signature byte flip",
        &not_der,
        denied(403, &["spec.signature.value is malformed: an ecdsa-p256-sha256 signature must be base64 of an ASN.1 DER"]),
    ));
    for length in [0, 1, 63, 65, 128] {
        let resized = with_signature_bytes(ed.clone(), |b| b.resize(length, 7));
        let expect = format!(
            "spec.signature.value is malformed: an ed25519 signature is 64 bytes, this one is {length}"
        );
        cases.push(case("signature length", &resized, denied(403, &[&expect])));
    }

    // Key confusion: each algorithm's signature presented as the other's, or under the other key.
    let mut ed_under_p256 = ed.clone();
    ed_under_p256["spec"]["signature"]["keyId"] = "p256-key".into();
    cases.push(case("key confusion", &ed_under_p256, denied(403, &["spec.signature.algorithm is ed25519 but trusted key \"p256-key\" is an ecdsa-p256-sha256 key"])));
    let mut p256_under_ed = p256.clone();
    p256_under_ed["spec"]["signature"]["keyId"] = "ed-key".into();
    cases.push(case("key confusion", &p256_under_ed, denied(403, &["spec.signature.algorithm is ecdsa-p256-sha256 but trusted key \"ed-key\" is an ed25519 key"])));
    let mut ed_claims_ecdsa = ed_under_p256.clone();
    ed_claims_ecdsa["spec"]["signature"]["algorithm"] = "ecdsa-p256-sha256".into();
    cases.push(case("key confusion", &ed_claims_ecdsa, denied(403, &["spec.signature.value is malformed: an ecdsa-p256-sha256 signature must be base64 of an ASN.1 DER"])));
    let mut p256_claims_ed = p256_under_ed.clone();
    p256_claims_ed["spec"]["signature"]["algorithm"] = "ed25519".into();
    let expect = format!("an ed25519 signature is 64 bytes, this one is {der_len}");
    cases.push(case(
        "key confusion",
        &p256_claims_ed,
        denied(403, &[&expect]),
    ));

    // A signature moved to another plugin, or kept after a change of name, image or version.
    for index in 0..12 {
        let mut other = plugin(&format!("other-{index}"));
        other["spec"]["signature"] = ed["spec"]["signature"].clone();
        cases.push(case(
            "signature moved",
            &other,
            denied(403, &[&does_not_verify("ed-key")]),
        ));
    }
    let edits: [(&str, Value); 4] = [
        ("/spec/version", json!("1.0.1")),
        (
            "/spec/image",
            json!(format!("registry.example/evil@{DIGEST}")),
        ),
        ("/spec/config", json!({"debug": true})),
        ("/metadata/name", json!("pay2")),
    ];
    for (pointer, value) in edits {
        for source in [&ed, &p256] {
            let mut changed = source.clone();
            if let Some(slot) = changed.pointer_mut(pointer) {
                *slot = value.clone();
            } else {
                changed["spec"]["config"] = value.clone();
            }
            let key = source["spec"]["signature"]["keyId"].as_str().unwrap();
            cases.push(case(
                "signature moved",
                &changed,
                denied(403, &[&does_not_verify(key)]),
            ));
        }
    }
    let mut unknown = ed.clone();
    unknown["spec"]["signature"]["keyId"] = "someone-else".into();
    cases.push(case("key confusion", &unknown, denied(403, &["spec.signature.keyId \"someone-else\" is not one of the environment's trusted keys (ed-key, p256-key)"])));
}

fn shape_cases(cases: &mut Vec<Case>) {
    let strict = |family, object: &Value, expect| Case {
        family,
        body: review("strict", object),
        plugins: Vec::new(),
        expect,
    };
    // Deep JSON: past our limit a precise denial, past serde's recursion limit a 400.
    for depth in [MAX_DEPTH - 2, MAX_DEPTH - 1] {
        let mut object = plugin("deep");
        object["spec"]["config"] = nested(depth - 2);
        cases.push(strict("deep JSON", &object, Expect::Allowed(vec![])));
    }
    for depth in [MAX_DEPTH + 1, MAX_DEPTH + 10, 120] {
        for kind in ["MmfPlugin", "MmfService"] {
            let mut object = if kind == "MmfPlugin" {
                plugin("deep")
            } else {
                service("deep", &[])
            };
            object["spec"]["deep"] = nested(depth);
            let expect = format!(
                "{kind} \"deep\": spec.deep.a.a.a.a…: nested deeper than the {MAX_DEPTH} levels allowed"
            );
            cases.push(strict("deep JSON", &object, denied(400, &[&expect])));
        }
    }
    for depth in [200, 10_000, 100_000] {
        let body = format!(
            "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{{\"uid\":\"u\",\"object\":{{\"spec\":{}1{}}}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        cases.push(Case {
            family: "deep JSON",
            body: body.into_bytes(),
            plugins: Vec::new(),
            expect: Expect::Http(
                StatusCode::BAD_REQUEST,
                "recursion limit exceeded".to_owned(),
            ),
        });
    }
    // Wrong types in every kind of field.
    let wrong: [(&str, Value); 6] = [
        ("integer", json!(7)),
        ("boolean", json!(true)),
        ("sequence", json!([1])),
        ("map", json!({"x": 1})),
        ("floating point", json!(1.5)),
        ("null", Value::Null),
    ];
    let plugin_fields = [
        "/spec/version",
        "/spec/image",
        "/spec/services",
        "/spec/tags",
    ];
    let service_fields = [
        "/spec/image",
        "/spec/replicas",
        "/spec/plugins",
        "/spec/port",
    ];
    for (kind, fields) in [("MmfPlugin", plugin_fields), ("MmfService", service_fields)] {
        for field in fields {
            for (type_name, value) in &wrong {
                let mut object = if kind == "MmfPlugin" {
                    plugin("typed")
                } else {
                    service("typed", &[])
                };
                let fits = matches!(
                    (field, *type_name),
                    ("/spec/replicas" | "/spec/port", "integer")
                );
                if fits {
                    continue;
                }
                let (parent, key) = field.rsplit_once('/').unwrap();
                object.pointer_mut(parent).unwrap()[key] = value.clone();
                let message = format!(
                    "{kind} \"typed\" does not match the v1alpha1 schema this operator understands (invalid type: "
                );
                let expect = denied(400, &[&message]);
                cases.push(strict("wrong type", &object, expect));
            }
        }
    }
    // Unicode and huge strings are data: they never break a message or the handler.
    let names = [
        "zahlung-ü",
        "支付",
        "💸",
        "\u{202e}lap",
        "a\u{200b}b",
        "\u{0}",
        &"é".repeat(300),
    ];
    for name in names {
        let mut object = plugin(name);
        object["spec"]["version"] = "not-semver".into();
        let expect = "\"not-semver\" is not a semantic version";
        cases.push(strict(
            "unicode name",
            &object,
            denied(403, &[name, expect]),
        ));
        let mut svc = service(name, &[]);
        svc["spec"]["replicas"] = json!(-1);
        cases.push(strict("unicode name", &svc, Expect::Allowed(vec![])));
    }
    for size in [64 * 1024, 1024 * 1024, 3 * 1024 * 1024] {
        let mut object = plugin("huge");
        object["spec"]["description"] = "d".repeat(size).into();
        cases.push(strict("huge string", &object, Expect::Allowed(vec![])));
        let mut object = plugin("huge");
        object["spec"]["dependencies"] = json!([{"name": "x", "version": "^".repeat(size)}]);
        cases.push(strict(
            "huge string",
            &object,
            denied(
                403,
                &[
                    "spec.dependencies[0].version",
                    "is not a semver requirement",
                ],
            ),
        ));
    }
    // Bodies over the cap, answered before they are parsed, with the limit named.
    for size in [
        MAX_ADMISSION_REVIEW_BYTES + 1,
        2 * MAX_ADMISSION_REVIEW_BYTES,
    ] {
        let mut object = plugin("big");
        object["spec"]["description"] = "d".repeat(size).into();
        let expect = format!(
            "the AdmissionReview body is larger than the {MAX_ADMISSION_REVIEW_BYTES} bytes allowed"
        );
        cases.push(Case {
            family: "body over the cap",
            body: review("strict", &object),
            plugins: Vec::new(),
            expect: Expect::Http(StatusCode::PAYLOAD_TOO_LARGE, expect),
        });
    }
}

fn schema_cases(cases: &mut Vec<Case>) {
    let strict = |family, object: &Value, expect| Case {
        family,
        body: review("strict", object),
        plugins: Vec::new(),
        expect,
    };
    let recursive = [
        json!({"$ref": "#"}),
        json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}),
        json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}),
        json!({"allOf": [{"$ref": "#"}]}),
        json!({"type": "object", "properties": {"child": {"$ref": "#"}}, "additionalProperties": false}),
    ];
    // A schema that only refers to itself constrains nothing (jsonschema resolves the loop
    // instead of recursing forever); a recursive one with properties checks every level.
    let configs = [
        json!({}),
        nested(20),
        json!({"child": {"child": {"other": 1}}}),
    ];
    for (index, schema) in recursive.iter().enumerate() {
        for (config_index, config) in configs.iter().enumerate() {
            let mut object = plugin("recursive");
            object["spec"]["configSchema"] = schema.clone();
            object["spec"]["config"] = config.clone();
            let expect = match (index, config_index) {
                (4, 1) => denied(
                    403,
                    &[
                        "spec.config: merged configuration for environment strict does not match spec.configSchema: /: Additional properties are not allowed ('a' was unexpected)",
                    ],
                ),
                (4, 2) => denied(
                    403,
                    &[
                        "/child/child: Additional properties are not allowed ('other' was unexpected)",
                    ],
                ),
                _ => Expect::Allowed(vec![]),
            };
            cases.push(strict("self-referencing schema", &object, expect));
        }
    }
    let mut deep = plugin("deep-schema");
    deep["spec"]["configSchema"] = nested(MAX_SCHEMA_DEPTH + 1);
    let expect = format!(
        "spec.configSchema.a.a.a.a.a.a…: nested deeper than the {MAX_SCHEMA_DEPTH} levels allowed"
    );
    cases.push(strict(
        "schema over the cap",
        &deep,
        denied(403, &[&expect]),
    ));
    let mut big = plugin("big-schema");
    big["spec"]["configSchema"] = json!({"description": "d".repeat(70_000)});
    cases.push(strict(
        "schema over the cap",
        &big,
        denied(
            403,
            &["spec.configSchema is 70018 bytes as JSON, more than the 65536 allowed"],
        ),
    ));
}

fn cycle_cases(cases: &mut Vec<Case>) {
    for length in [2, 3, 10, 100, 1000] {
        let names: Vec<String> = (0..length).map(|i| format!("p{i}")).collect();
        let plugins: Vec<Arc<MmfPlugin>> = (0..length)
            .map(|i| {
                let mut object = plugin(&names[i]);
                object["metadata"]["namespace"] = "strict".into();
                object["spec"]["dependencies"] =
                    json!([{"name": names[(i + 1) % length], "version": "^1"}]);
                Arc::new(serde_json::from_value(object).unwrap())
            })
            .collect();
        let requested: Vec<&str> = names.iter().map(String::as_str).collect();
        cases.push(Case {
            family: "dependency cycle",
            body: review("strict", &service("cyclic", &requested)),
            plugins,
            expect: Expect::Allowed(vec![
                format!("in a cycle: {}", names[0]),
                format!("{} -> ", names[length - 1]),
            ]),
        });
    }
}

async fn answer(case: &Case) -> (StatusCode, String) {
    let state = AdmissionState {
        config: Arc::new(SharedConfig::new(config(), "strict")),
        view: Arc::new(View {
            plugins: case.plugins.clone(),
        }),
        metrics: AdmissionMetrics::unregistered(),
    };
    let request = Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(case.body.clone()))
        .unwrap();
    let call = tokio::spawn(async move {
        let response = router(state).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    match tokio::time::timeout(PER_CALL, call).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(join)) => panic!("{}: the handler panicked: {join}", case.family),
        Err(_) => panic!("{}: no answer within {PER_CALL:?}", case.family),
    }
}

fn check(case: &Case, status: StatusCode, body: &str) {
    let context = || format!("{}: {status} {:.600}", case.family, body);
    if let Expect::Http(expected, text) = &case.expect {
        assert_eq!(status, *expected, "{}", context());
        assert!(body.contains(text.as_str()), "{}", context());
        return;
    }
    assert_eq!(status, StatusCode::OK, "{}", context());
    let review: Value = serde_json::from_str(body).unwrap();
    let response = &review["response"];
    assert_eq!(response["uid"], "hostile", "{}", context());
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match &case.expect {
        Expect::Denied(code, texts) => {
            assert_eq!(response["allowed"], false, "{}", context());
            assert_eq!(response["status"]["code"], *code, "{}", context());
            let message = response["status"]["message"].as_str().unwrap_or_default();
            let kinds = warnings.join("\n");
            for text in texts {
                let found = message.contains(text.as_str()) || kinds.contains(text.as_str());
                assert!(found, "{} lacks {text:?}", context());
            }
        }
        Expect::Allowed(texts) => {
            assert_eq!(response["allowed"], true, "{}", context());
            for text in texts {
                let found = warnings.iter().any(|w| w.contains(text.as_str()));
                assert!(found, "{} lacks warning {text:?}", context());
            }
        }
        Expect::Http(..) => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_review_gets_its_precise_answer_in_time_without_a_panic() {
    let mut cases = Vec::new();
    signature_cases(&mut cases);
    shape_cases(&mut cases);
    schema_cases(&mut cases);
    cycle_cases(&mut cases);
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, "");
    let mut families: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        let call = Instant::now();
        let (status, body) = answer(case).await;
        check(case, status, &body);
        if call.elapsed() > slowest.0 {
            slowest = (call.elapsed(), case.family);
        }
        *families.entry(case.family).or_default() += 1;
    }
    println!(
        "figure: {} hostile reviews answered in {:.2?}; slowest {:.2?} ({}); bound {PER_CALL:?} each",
        cases.len(),
        started.elapsed(),
        slowest.0,
        slowest.1
    );
    println!("figure: cases by family {families:?}");
    assert!(cases.len() >= 200, "{} cases", cases.len());
}
