#![allow(clippy::unwrap_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::api::MmfPluginRevisionStatus;

fn revision(version: &str, verified: Option<bool>, minutes_old: i64) -> MmfPluginRevision {
    let mut revision: MmfPluginRevision = serde_json::from_value(json!({
        "apiVersion": "mmf.marty.dev/v1alpha1",
        "kind": "MmfPluginRevision",
        "metadata": {"name": format!("payment-{version}"), "namespace": "prod"},
        "spec": {
            "plugin": "payment",
            "version": version,
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "pluginSpec": {"version": version, "image": "r/p:1"},
        },
    }))
    .unwrap();
    revision.metadata.creation_timestamp = Some(Time(
        Timestamp::from_second(1_000_000 - minutes_old * 60).unwrap(),
    ));
    revision.status = verified.map(|verified| MmfPluginRevisionStatus {
        verified,
        ..MmfPluginRevisionStatus::default()
    });
    revision
}

fn service(name: &str, plugins: Value, status_plugins: Value) -> MmfService {
    serde_json::from_value(json!({
        "apiVersion": "mmf.marty.dev/v1alpha1",
        "kind": "MmfService",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"image": "r/s:1", "plugins": plugins},
        "status": {"plugins": status_plugins},
    }))
    .unwrap()
}

#[test]
fn history_lists_revisions_newest_first_with_verdicts_and_the_services_using_each() {
    let revisions = [
        revision("1.0.0", Some(true), 300),
        revision("1.2.0", Some(false), 5),
        revision("1.1.0", None, 60),
    ];
    let services = [
        service(
            "cart",
            json!([{"name": "payment"}]),
            json!([{"name": "payment", "state": "Loaded", "revision": "payment-1.1.0"}]),
        ),
        service(
            "shop",
            json!([{"name": "payment"}]),
            json!([{"name": "payment", "state": "Loaded", "revision": "payment-1.1.0"}]),
        ),
        service(
            "old",
            json!([{"name": "payment", "version": "=1.0.0"}]),
            json!([{"name": "payment", "state": "Loaded", "revision": "payment-1.0.0"}]),
        ),
    ];
    let now = Timestamp::from_second(1_000_000).unwrap();
    assert_eq!(
        history_table(&history_rows("payment", &revisions, &services, now)),
        "REVISION        VERSION   VERIFIED   DIGEST         AGE   SERVICES\n\
         payment-1.2.0   1.2.0     false      abababababab   5m    -\n\
         payment-1.1.0   1.1.0     unknown    abababababab   60m   cart,shop\n\
         payment-1.0.0   1.0.0     true       abababababab   5h    old\n"
    );
}

#[test]
fn rollback_pins_the_existing_entry_guarded_by_its_name() {
    let shop = service(
        "shop",
        json!([{"name": "audit"}, {"name": "payment"}]),
        json!([]),
    );
    assert_eq!(
        rollback_patch(&shop, "payment", "1.0.0").unwrap(),
        json!([
            {"op": "test", "path": "/spec/plugins/1/name", "value": "payment"},
            {"op": "add", "path": "/spec/plugins/1/version", "value": "=1.0.0"},
        ])
    );
}

#[test]
fn rollback_of_an_environment_default_plugin_adds_a_pinned_entry() {
    let shop = service("shop", json!([{"name": "audit"}]), json!([]));
    assert_eq!(
        rollback_patch(&shop, "payment", "=1.0.0").unwrap(),
        json!([{"op": "add", "path": "/spec/plugins/-", "value": {"name": "payment", "version": "=1.0.0"}}])
    );
}

#[test]
fn rollback_refuses_a_range() {
    let shop = service("shop", json!([{"name": "payment"}]), json!([]));
    assert_eq!(
        rollback_patch(&shop, "payment", "^1")
            .unwrap_err()
            .to_string(),
        "\"^1\" is not a semantic version such as 1.0.0: rollback pins one exact version"
    );
}
