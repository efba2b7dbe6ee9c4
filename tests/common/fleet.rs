//! The reliability suite's fleet: the bench's workload (N MmfServices, P plugins each) created
//! through kube-rs, and what the operator made of it, normalized so two runs compare equal.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use mmf_e2e::workload::{self, Workload};
use serde_json::Value;

use super::Cluster;

/// Requests the creating client keeps in flight (as the bench's default).
pub const CONCURRENCY: usize = 16;

/// The operator's children carry this label.
pub const MANAGED: &str = "app.kubernetes.io/managed-by=mmf-operator";

/// The kinds of child the operator makes for each service: (group, kind, plural).
pub const CHILD_KINDS: [(&str, &str, &str); 3] = [
    ("apps", "Deployment", "deployments"),
    ("", "ConfigMap", "configmaps"),
    ("", "Service", "services"),
];

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

/// Creates the workload's plugins, then its services.
pub async fn create(client: &Client, workload: &Workload) {
    create_plugins(client, workload).await;
    create_services(client, workload, 0..workload.services).await;
}

/// Creates the workload's plugins.
pub async fn create_plugins(client: &Client, workload: &Workload) {
    workload::create_all(
        client,
        &workload::plugin_resource(),
        &workload.namespace,
        workload.plugin_objects(),
        CONCURRENCY,
    )
    .await
    .unwrap();
}

/// Creates the workload's services `range`.
pub async fn create_services(client: &Client, workload: &Workload, range: std::ops::Range<usize>) {
    workload::create_all(
        client,
        &workload::service_resource(),
        &workload.namespace,
        range.map(|i| workload.service_object(i)).collect(),
        CONCURRENCY,
    )
    .await
    .unwrap();
}

async fn list(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    labels: &str,
) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    api.list(&ListParams::default().labels(labels))
        .await
        .unwrap()
        .items
}

/// The MmfServices of `namespace`.
pub fn services(cluster: &Cluster, namespace: &str) -> Vec<DynamicObject> {
    let client = cluster.client();
    cluster.block_on(list(&client, namespace, &workload::service_resource(), ""))
}

/// The operator's children of `namespace`, per plural.
pub fn children(cluster: &Cluster, namespace: &str) -> BTreeMap<&'static str, Vec<DynamicObject>> {
    let client = cluster.client();
    cluster.block_on(async {
        let mut out = BTreeMap::new();
        for (group, kind, plural) in CHILD_KINDS {
            out.insert(
                plural,
                list(&client, namespace, &resource(group, kind, plural), MANAGED).await,
            );
        }
        out
    })
}

/// Ready for its current generation.
pub fn is_ready(service: &DynamicObject) -> bool {
    let status = &service.data["status"];
    status["observedGeneration"].as_i64().is_some()
        && status["observedGeneration"].as_i64() == service.metadata.generation
        && status["conditions"].as_array().is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// How many MmfServices of `namespace` are Ready.
pub fn ready_count(cluster: &Cluster, namespace: &str) -> usize {
    services(cluster, namespace)
        .iter()
        .filter(|s| is_ready(s))
        .count()
}

/// Removes what differs between two runs that reach the same state: identities, versions,
/// managed fields, every timestamp, and the render-hash annotation (a digest of the applied
/// object, whose ownerReference carries the run's uid) and a Service's allocated cluster IPs.
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "managedFields",
                "generation",
                "mmf.marty.dev/render-hash",
                "clusterIP",
                "clusterIPs",
            ] {
                map.remove(key);
            }
            map.retain(|key, _| !key.ends_with("Time") && !key.ends_with("Timestamp"));
            for child in map.values_mut() {
                normalize(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Every service's status and every child (metadata, spec, data, status), normalized, keyed
/// `plural/name`.
pub fn state(cluster: &Cluster, namespace: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for service in services(cluster, namespace) {
        let mut status = service.data["status"].clone();
        normalize(&mut status);
        out.insert(
            format!("mmfservices/{}", service.metadata.name.unwrap_or_default()),
            status,
        );
    }
    for (plural, objects) in children(cluster, namespace) {
        for object in objects {
            let name = object.metadata.name.clone().unwrap_or_default();
            let mut value = serde_json::to_value(&object).unwrap();
            normalize(&mut value);
            out.insert(format!("{plural}/{name}"), value);
        }
    }
    out
}

/// Every leaf that differs under `path`, as `path: left vs right`.
fn diff(path: &str, left: &Value, right: &Value, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            for key in l.keys().chain(r.keys().filter(|k| !l.contains_key(*k))) {
                let (a, b) = (
                    &l.get(key).cloned().unwrap_or(Value::Null),
                    &r.get(key).cloned().unwrap_or(Value::Null),
                );
                diff(&format!("{path}.{key}"), a, b, out);
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (i, (a, b)) in l.iter().zip(r).enumerate() {
                diff(&format!("{path}[{i}]"), a, b, out);
            }
        }
        (l, r) if l != r => out.push(format!("{path}: {l} vs {r}")),
        _ => {}
    }
}

/// The differences between two states (at most 20 lines), for an assertion message.
pub fn differences(left: &BTreeMap<String, Value>, right: &BTreeMap<String, Value>) -> String {
    let mut out = Vec::new();
    for (key, value) in left {
        match right.get(key) {
            None => out.push(format!("{key} only in the first")),
            Some(other) => diff(key, value, other, &mut out),
        }
    }
    out.extend(
        right
            .keys()
            .filter(|key| !left.contains_key(*key))
            .map(|key| format!("{key} only in the second")),
    );
    let total = out.len();
    out.truncate(20);
    format!("{total} differences:\n{}", out.join("\n"))
}

/// What breaks the ownership rule: every child has exactly one controller ownerReference, to
/// an MmfService that exists (same uid), and every service has exactly one child of each kind.
pub fn ownership_problems(cluster: &Cluster, namespace: &str) -> Vec<String> {
    let services: BTreeMap<String, String> = services(cluster, namespace)
        .into_iter()
        .map(|s| {
            (
                s.metadata.uid.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (plural, objects) in children(cluster, namespace) {
        let mut per_owner: BTreeMap<&str, usize> = BTreeMap::new();
        for object in &objects {
            let name = object.metadata.name.clone().unwrap_or_default();
            let controllers: Vec<_> = object
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.controller == Some(true))
                .collect();
            match controllers.as_slice() {
                [owner] if owner.kind == "MmfService" => match services.get(&owner.uid) {
                    Some(service) => *per_owner.entry(service.as_str()).or_insert(0) += 1,
                    None => problems.push(format!("{plural}/{name}: orphan of {}", owner.name)),
                },
                other => problems.push(format!(
                    "{plural}/{name}: {} controller ownerReferences",
                    other.len()
                )),
            }
        }
        for service in services.values() {
            match per_owner.get(service.as_str()) {
                Some(1) => {}
                n => problems.push(format!("{service}: {} {plural}", n.copied().unwrap_or(0))),
            }
        }
    }
    problems
}
