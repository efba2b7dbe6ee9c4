#![allow(clippy::unwrap_used)]

use serde_json::json;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::{controller_of, is_controlled_by, needs_apply};

fn deployment(replicas: i64) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "payment-service",
            "labels": {"app.kubernetes.io/managed-by": "mmf-operator"},
            "annotations": {"mmf.marty.dev/render-hash": "abc"}
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {
                "containers": [{
                    "name": "service",
                    "image": "registry.example/payment:1",
                    "args": ["--port", "8080"],
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false}
                }],
                "volumes": [{"name": "config", "emptyDir": {}}]
            }}
        }
    })
}

#[test]
fn an_identical_object_needs_no_apply() {
    assert!(!needs_apply(&deployment(2), &deployment(2)));
}

#[test]
fn fields_the_server_defaults_or_others_set_are_not_drift() {
    let mut live = deployment(2);
    live["metadata"]["uid"] = json!("1234");
    live["metadata"]["resourceVersion"] = json!("77");
    live["metadata"]["labels"]["team"] = json!("payments");
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("3");
    live["spec"]["progressDeadlineSeconds"] = json!(600);
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
        json!("/dev/termination-log");
    live["spec"]["template"]["spec"]["volumes"][0]["emptyDir"] = json!({"medium": ""});
    live["status"] = json!({"replicas": 2, "readyReplicas": 2});
    assert!(!needs_apply(&deployment(2), &live));
}

#[test]
fn a_changed_field_we_set_is_drift() {
    assert!(needs_apply(&deployment(2), &deployment(5)));
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:latest");
    assert!(needs_apply(&deployment(2), &live));
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
        json!(true);
    assert!(needs_apply(&deployment(2), &live));
}

#[test]
fn a_removed_field_we_set_is_drift_even_when_false() {
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["securityContext"] = json!({});
    assert!(needs_apply(&deployment(2), &live));
    let mut live = deployment(2);
    live["metadata"]["labels"] = json!({});
    assert!(needs_apply(&deployment(2), &live));
}

#[test]
fn a_changed_or_removed_annotation_is_drift_and_extra_annotations_are_not() {
    let mut live = deployment(2);
    live["metadata"]["annotations"]["mmf.marty.dev/render-hash"] = json!("old");
    assert!(needs_apply(&deployment(2), &live));
    let mut live = deployment(2);
    live["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert!(needs_apply(&deployment(2), &live));
    let mut live = deployment(2);
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!("{}");
    assert!(!needs_apply(&deployment(2), &live));
}

#[test]
fn named_lists_match_by_name_and_may_hold_items_of_others() {
    let mut live = deployment(2);
    let containers = live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap();
    containers.insert(0, json!({"name": "istio-proxy", "image": "proxy"}));
    assert!(!needs_apply(&deployment(2), &live));
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["name"] = json!("renamed");
    assert!(needs_apply(&deployment(2), &live));
}

#[test]
fn atomic_lists_must_match_in_order_and_length() {
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--port", "8080", "--x"]);
    assert!(needs_apply(&deployment(2), &live));
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["8080", "--port"]);
    assert!(needs_apply(&deployment(2), &live));
}

#[test]
fn quantities_compare_by_value_after_server_normalization() {
    let mut live = deployment(2);
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] =
        json!({"cpu": "0.5", "memory": "268435456"});
    assert!(!needs_apply(&deployment(2), &live));
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
        json!("512Mi");
    assert!(needs_apply(&deployment(2), &live));
}

#[test]
fn quantity_rules_apply_only_to_quantity_fields() {
    let desired = json!({"data": {"timeout": "0.5"}});
    let live = json!({"data": {"timeout": "500m"}});
    assert!(needs_apply(&desired, &live));
}

#[test]
fn empty_values_we_send_match_fields_the_server_omits() {
    let desired = json!({"spec": {"volumes": [], "selector": {}, "note": "", "x": null}});
    assert!(!needs_apply(&desired, &json!({"spec": {}})));
}

#[test]
fn numbers_compare_by_value() {
    assert!(!needs_apply(
        &json!({"port": 8080}),
        &json!({"port": 8080.0})
    ));
    assert!(needs_apply(
        &json!({"port": 8080}),
        &json!({"port": "8080"})
    ));
}

#[test]
fn tampered_config_map_data_is_drift() {
    let desired = json!({"data": {"mmf.yaml": "plugins: [a]\n"}});
    assert!(needs_apply(
        &desired,
        &json!({"data": {"mmf.yaml": "tampered"}})
    ));
    assert!(needs_apply(&desired, &json!({"data": {}})));
    assert!(!needs_apply(
        &desired,
        &json!({"data": {"mmf.yaml": "plugins: [a]\n", "extra": "x"}})
    ));
}

fn owner(uid: &str, controller: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: "mmf.marty.dev/v1alpha1".into(),
        kind: "MmfService".into(),
        name: "payment-service".into(),
        uid: uid.into(),
        controller,
        block_owner_deletion: Some(true),
    }
}

#[test]
fn only_the_controller_reference_with_our_uid_makes_an_object_ours() {
    assert!(is_controlled_by(Some(&[owner("u1", Some(true))]), "u1"));
    assert!(!is_controlled_by(Some(&[owner("u2", Some(true))]), "u1"));
    assert!(!is_controlled_by(Some(&[owner("u1", None)]), "u1"));
    assert!(!is_controlled_by(None, "u1"));
}

#[test]
fn the_message_names_who_controls_a_foreign_object() {
    assert_eq!(controller_of(None), "no controller ownerReference");
    assert_eq!(
        controller_of(Some(&[owner("u2", Some(true))])),
        "controlled by MmfService payment-service"
    );
}
