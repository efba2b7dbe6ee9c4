//! What the API server refuses before any webhook runs: the CRD's structural schema and its
//! CEL rules, checked offline against the same CRDs `mmf crds` writes to `crds/`, with
//! kube-apiserver's wording (one implementation, shared with the test API server, in
//! `crd-validate`).

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::Value;

use super::violation::{ObjectRef, Violation, ViolationKind};
use crate::api::{MmfPlugin, MmfService};

/// The `openAPIV3Schema` of a kind's only version, as generated from the types.
fn schema_of(kind: &str) -> Option<&'static Value> {
    static PLUGIN: OnceLock<Value> = OnceLock::new();
    static SERVICE: OnceLock<Value> = OnceLock::new();
    let generate = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        crd.spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| serde_json::to_value(&s.open_api_v3_schema).ok())
            .unwrap_or_default()
    };
    match kind {
        "MmfPlugin" => Some(PLUGIN.get_or_init(|| generate(MmfPlugin::crd()))),
        "MmfService" => Some(SERVICE.get_or_init(|| generate(MmfService::crd()))),
        _ => None,
    }
}

/// Every reason the API server would refuse `object` (a whole MmfPlugin or MmfService as
/// JSON, before defaulting), as violations of kind [`ViolationKind::SchemaInvalid`]. The
/// message is the server's own (`Invalid value: -1: spec.replicas in body should be greater
/// than or equal to 0`). Other kinds have no schema here and pass.
pub fn schema_violations(kind: &'static str, object: &Value) -> Vec<Violation> {
    let Some(schema) = schema_of(kind) else {
        return Vec::new();
    };
    let metadata = &object["metadata"];
    let reference = ObjectRef {
        kind,
        namespace: metadata["namespace"].as_str().map(str::to_owned),
        name: metadata["name"].as_str().unwrap_or_default().to_owned(),
    };
    crd_validate::validate_object(schema, object)
        .into_iter()
        .map(|cause| Violation {
            kind: ViolationKind::SchemaInvalid,
            object: reference.clone(),
            field: cause.field,
            message: cause.message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(spec: Value) -> Value {
        json!({"apiVersion": "mmf.marty.dev/v1alpha1", "kind": "MmfService",
               "metadata": {"name": "orders"}, "spec": spec})
    }

    fn found(kind: &'static str, object: &Value) -> Vec<(String, String)> {
        schema_violations(kind, object)
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect()
    }

    #[test]
    fn a_negative_replica_count_is_refused_in_the_servers_words() {
        assert_eq!(
            found(
                "MmfService",
                &service(json!({"image": "a", "replicas": -1}))
            ),
            [(
                "spec.replicas".to_owned(),
                "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn an_unknown_field_is_refused_like_strict_field_validation() {
        assert_eq!(
            found("MmfService", &service(json!({"image": "a", "foo": 1}))),
            [(
                "spec.foo".to_owned(),
                "unknown field \"spec.foo\"".to_owned()
            )]
        );
    }

    #[test]
    fn a_cel_rule_is_enforced() {
        assert_eq!(
            found("MmfService", &service(json!({"image": "a", "port": 70000}))),
            [(
                "spec.port".to_owned(),
                "Invalid value: 70000: port must be between 1 and 65535".to_owned()
            )]
        );
    }

    #[test]
    fn a_valid_service_and_other_kinds_pass() {
        assert!(found("MmfService", &service(json!({"image": "a"}))).is_empty());
        assert!(found("Namespace", &json!({"spec": {"x": 1}})).is_empty());
    }
}
