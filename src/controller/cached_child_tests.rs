#![allow(clippy::unwrap_used)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Resource;
use serde_json::json;

use super::CachedChild;

fn listed_deployment() -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "payment-service",
            "namespace": "shop",
            "generation": 3,
            "labels": {"app.kubernetes.io/managed-by": "mmf-operator"},
            "managedFields": [{
                "manager": "mmf-operator",
                "operation": "Apply",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}
            }]
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "payment-service"}},
            "template": {"spec": {"containers": [{"name": "service", "image": "payment:1.2.0"}]}}
        },
        "status": {"readyReplicas": 2, "observedGeneration": 3}
    })
}

#[test]
fn a_cached_child_gives_back_the_object_without_its_managed_fields() {
    let cached: CachedChild<Deployment> = serde_json::from_value(listed_deployment()).unwrap();
    let mut expected = listed_deployment();
    expected["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    assert_eq!(cached.to_value().unwrap(), expected);
    assert_eq!(cached.meta().managed_fields, None);
    assert_eq!(cached.meta().generation, Some(3));
}

#[test]
fn a_cached_child_decodes_to_its_typed_object() {
    let cached: CachedChild<Deployment> = serde_json::from_value(listed_deployment()).unwrap();
    let deployment = cached.decode().unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(2));
    assert_eq!(deployment.status.unwrap().ready_replicas, Some(2));
    assert_eq!(deployment.metadata.name.as_deref(), Some("payment-service"));
}

#[test]
fn a_cached_child_is_read_from_json_text_whatever_the_key_order() {
    // Watch events may put "object" before "type", which makes serde buffer the object.
    let text = r#"{"object":{"metadata":{"name":"a-mmf","namespace":"shop"},"kind":"ConfigMap","data":{"mmf.yaml":"x: 1"},"apiVersion":"v1"},"type":"ADDED"}"#;
    let event: kube::api::WatchEvent<CachedChild<ConfigMap>> = serde_json::from_str(text).unwrap();
    let kube::api::WatchEvent::Added(cached) = event else {
        panic!("not an ADDED event");
    };
    let config_map = cached.decode().unwrap();
    assert_eq!(config_map.data.unwrap()["mmf.yaml"], "x: 1");
}

#[test]
fn a_body_the_typed_object_refuses_fails_only_its_decode() {
    let mut listed = listed_deployment();
    listed["spec"]["replicas"] = json!("two");
    let cached: CachedChild<Deployment> = serde_json::from_value(listed).unwrap();
    let error = cached.decode().unwrap_err().to_string();
    assert!(error.contains("invalid type: string \"two\""), "{error}");
}

#[test]
fn a_cached_child_keeps_the_api_identity_of_its_kind() {
    assert_eq!(CachedChild::<Deployment>::api_version(&()), "apps/v1");
    assert_eq!(CachedChild::<Deployment>::plural(&()), "deployments");
    assert_eq!(CachedChild::<ConfigMap>::kind(&()), "ConfigMap");
}
