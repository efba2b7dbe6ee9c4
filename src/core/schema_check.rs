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
    static REVISION: OnceLock<Value> = OnceLock::new();
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
        "MmfPluginRevision" => {
            Some(REVISION.get_or_init(|| generate(crate::api::MmfPluginRevision::crd())))
        }
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
    let name = metadata["name"]
        .as_str()
        .and_then(name_refusal)
        .map(|message| Violation {
            kind: ViolationKind::SchemaInvalid,
            object: reference.clone(),
            field: "metadata.name".to_owned(),
            message,
        });
    name.into_iter()
        .chain(
            crd_validate::validate_object(schema, object)
                .into_iter()
                .map(|cause| Violation {
                    kind: ViolationKind::SchemaInvalid,
                    object: reference.clone(),
                    field: cause.field,
                    message: cause.message,
                }),
        )
        .collect()
}

/// kube-apiserver's refusal of a custom resource's name that is not a DNS subdomain (RFC 1123):
/// lowercase letters, digits, `-` and `.`, each dot-separated label starting and ending with
/// a letter or digit, 253 characters at most.
fn name_refusal(name: &str) -> Option<String> {
    let label_ok = |label: &str| {
        let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        label.starts_with(alphanumeric)
            && label.ends_with(alphanumeric)
            && label.chars().all(|c| alphanumeric(c) || c == '-')
    };
    let shown: String = name.chars().take(64).collect();
    if name.len() > 253 {
        return Some(format!(
            "Invalid value: {shown:?}: must be no more than 253 characters"
        ));
    }
    if name.is_empty() || name.split('.').all(label_ok) {
        return None;
    }
    Some(format!(
        "Invalid value: {shown:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ))
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
    fn a_name_the_api_server_refuses_is_refused_at_metadata_name() {
        let named = |name: &str| {
            let mut object = service(json!({"image": "i"}));
            object["metadata"]["name"] = name.into();
            found("MmfService", &object)
        };
        assert_eq!(named("orders-v2.eu"), vec![]);
        for bad in ["Orders", "支付", "a_b", "-a", "a.", "a..b"] {
            let refused = named(bad);
            assert_eq!(refused.len(), 1, "{bad}: {refused:?}");
            assert_eq!(refused[0].0, "metadata.name");
            assert!(
                refused[0].1.starts_with(&format!(
                    "Invalid value: {bad:?}: a lowercase RFC 1123 subdomain must consist of"
                )),
                "{refused:?}"
            );
        }
        assert_eq!(
            named(&"a".repeat(254)),
            vec![(
                "metadata.name".to_owned(),
                format!(
                    "Invalid value: {:?}: must be no more than 253 characters",
                    "a".repeat(64)
                )
            )]
        );
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
