#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::api::plugin::SignatureAlgorithm;
use crate::api::{MmfPluginSpec, MmfServiceSpec, PluginSignature};
use crate::core::violation::ObjectRef;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn request(dry_run: bool) -> AdmissionRequest<DynamicObject> {
    let review: kube::core::admission::AdmissionReview<DynamicObject> =
        serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "review-1",
                "kind": {"group": "mmf.marty.dev", "version": "v1alpha1", "kind": "MmfPlugin"},
                "resource": {"group": "mmf.marty.dev", "version": "v1alpha1", "resource": "mmfplugins"},
                "name": "payment",
                "namespace": "prod",
                "operation": "CREATE",
                "userInfo": {"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"]},
                "object": {
                    "apiVersion": "mmf.marty.dev/v1alpha1",
                    "kind": "MmfPlugin",
                    "metadata": {"name": "payment", "namespace": "prod", "uid": "obj-1", "generation": 1},
                    "spec": {"version": "1.0.0", "image": "r/p:1", "config": {"password": "hunter2"}}
                },
                "dryRun": dry_run
            }
        }))
        .unwrap();
    review.try_into().unwrap()
}

fn violation(kind: ViolationKind, message: &str) -> Violation {
    Violation {
        kind,
        object: ObjectRef {
            kind: "MmfPlugin",
            namespace: Some("prod".to_owned()),
            name: "payment".to_owned(),
        },
        field: "spec.signature".to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn a_denied_admission_names_the_user_the_object_and_every_violation_but_no_spec() {
    let violations = [
        violation(ViolationKind::SignatureMissing, "spec.signature is missing"),
        violation(
            ViolationKind::ConfigInvalid,
            "\"hunter2\" is not of type \"integer\"",
        ),
    ];
    let record = admission_record(
        now(),
        &request(false),
        "MmfPlugin",
        Some("production"),
        Outcome::Deny,
        &violations,
    );
    assert_eq!(record.operation(), "admission");
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(
        value,
        json!({
            "schema": "mmf.marty.dev/audit/v1",
            "time": "2027-01-15T08:00:00Z",
            "operation": "admission",
            "object": {"kind": "MmfPlugin", "namespace": "prod", "name": "payment", "uid": "obj-1", "generation": 1},
            "user": {"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"]},
            "request": "CREATE",
            "request_uid": "review-1",
            "dry_run": false,
            "environment": "production",
            "outcome": "deny",
            "violations": [
                {"reason": "SignatureMissing", "object": "MmfPlugin/payment", "field": "spec.signature", "message": "spec.signature is missing"},
                {"reason": "ConfigInvalid", "object": "MmfPlugin/payment", "field": "spec.signature", "message": null}
            ]
        })
    );
    assert!(!value.to_string().contains("hunter2"), "{value}");
}

fn signed_plugin() -> MmfPlugin {
    let mut plugin = MmfPlugin::new(
        "payment",
        MmfPluginSpec {
            version: "1.0.0".into(),
            description: None,
            author: None,
            tags: vec![],
            image: "r/p:1".into(),
            dependencies: vec![],
            optional_dependencies: vec![],
            mmf_version: None,
            services: vec![],
            config_schema: None,
            config: None,
            environments: Default::default(),
            signature: Some(PluginSignature {
                key_id: "k1".into(),
                algorithm: SignatureAlgorithm::Ed25519,
                value: "c2lnbmF0dXJl".into(),
            }),
            revision_history_limit: None,
        },
    );
    plugin.metadata.namespace = Some("prod".into());
    plugin.metadata.uid = Some("obj-1".into());
    plugin.metadata.generation = Some(4);
    plugin
}

#[test]
fn a_signature_verdict_change_carries_the_key_id_and_payload_digest_but_not_the_signature() {
    let record = signature_record(
        now(),
        &signed_plugin(),
        "production",
        &SignatureVerdict::Verified,
        &SignatureVerdict::Rejected("SignatureInvalid".to_owned()),
        Some("sha256:ab"),
    );
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(
        value,
        json!({
            "schema": "mmf.marty.dev/audit/v1",
            "time": "2027-01-15T08:00:00Z",
            "operation": "signature_verdict",
            "object": {"kind": "MmfPlugin", "namespace": "prod", "name": "payment", "uid": "obj-1", "generation": 4},
            "environment": "production",
            "from": {"verdict": "verified", "reason": "Verified"},
            "to": {"verdict": "rejected", "reason": "SignatureInvalid"},
            "key_id": "k1",
            "algorithm": "ed25519",
            "payload_digest": "sha256:ab"
        })
    );
    assert!(!value.to_string().contains("c2lnbmF0dXJl"));
}

#[test]
fn a_service_plugin_change_names_the_service_and_the_plugin_version() {
    let mut service = MmfService::new(
        "checkout",
        MmfServiceSpec {
            image: "r/checkout:1".into(),
            replicas: 1,
            service_type: Default::default(),
            port: 8080,
            plugins: vec![],
            resources: None,
            env: vec![],
            probes: Default::default(),
            metrics: Default::default(),
        },
    );
    service.metadata.namespace = Some("prod".into());
    service.metadata.generation = Some(2);
    let record = service_plugin_record(
        now(),
        &service,
        "production",
        PluginChange {
            plugin: AuditPlugin {
                name: "payment".into(),
                version: Some("1.0.0".into()),
                digest: None,
            },
            from: Some(PluginLoadState::Loaded),
            to: PluginLoadState::Rejected,
            reason: Some("violates the production policy"),
            blocked: true,
        },
    );
    assert_eq!(record.operation(), "service_plugin");
    let value: Value = serde_json::to_value(&record).unwrap();
    assert_eq!(
        value,
        json!({
            "schema": "mmf.marty.dev/audit/v1",
            "time": "2027-01-15T08:00:00Z",
            "operation": "service_plugin",
            "object": {"kind": "MmfService", "namespace": "prod", "name": "checkout", "uid": null, "generation": 2},
            "environment": "production",
            "plugin": {"name": "payment", "version": "1.0.0", "digest": null},
            "from": "loaded",
            "to": "rejected",
            "reason": "violates the production policy",
            "rollout_blocked": true
        })
    );
}

#[test]
fn a_reload_record_has_the_digest_of_each_file_before_and_after() {
    let before = BTreeMap::from([("production.yaml".to_owned(), "sha256:aa".to_owned())]);
    let after = BTreeMap::from([("production.yaml".to_owned(), "sha256:bb".to_owned())]);
    let applied = reload_record(now(), "/etc/mmf", None, before.clone(), after.clone());
    assert_eq!(
        serde_json::to_value(&applied).unwrap(),
        json!({
            "schema": "mmf.marty.dev/audit/v1",
            "time": "2027-01-15T08:00:00Z",
            "operation": "policy_reload",
            "object": {"kind": "EnvironmentConfig", "namespace": null, "name": "/etc/mmf", "uid": null, "generation": null},
            "result": "applied",
            "error": null,
            "files_before": {"production.yaml": "sha256:aa"},
            "files_after": {"production.yaml": "sha256:bb"}
        })
    );
    let refused = reload_record(now(), "/etc/mmf", Some("bad yaml"), before, after);
    assert_eq!(
        serde_json::to_value(&refused).unwrap()["result"],
        json!("refused")
    );
}
