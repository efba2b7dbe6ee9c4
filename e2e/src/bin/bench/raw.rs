//! The baseline: a client doing only the minimum an operator must, with the same objects.
//!
//! Per service: create the MmfService (as the user does in the operator run), server-side
//! apply its ConfigMap, Deployment and Service exactly as `mmf render` prints them, write its
//! status once, and write it again once the Deployment is available: 3 applies and 2 status
//! writes, with the same concurrency as the operator run's creating client.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::scenarios::BenchError;
use crate::workload::{Workload, service_resource};

const MANAGER: &str = "mmf-bench-raw";

/// What `mmf render` printed, grouped by the service it belongs to.
pub type Children = BTreeMap<String, Vec<Value>>;

/// Parses a `mmf render` stream into the children of each service (by `app.kubernetes.io/name`).
pub fn children_of(stream: &str) -> Result<Children, BenchError> {
    let mut by_service = Children::new();
    for document in stream.split("\n---").map(str::trim) {
        let document = document.trim_start_matches("---").trim();
        if document.is_empty() {
            continue;
        }
        let value: Value = serde_saphyr::from_str(document)
            .map_err(|e| BenchError::Input(format!("reading mmf render output: {e}")))?;
        let Some(service) = value["metadata"]["labels"]["app.kubernetes.io/name"].as_str() else {
            continue;
        };
        by_service
            .entry(service.to_owned())
            .or_default()
            .push(value);
    }
    Ok(by_service)
}

fn resource_of(object: &Value) -> Result<ApiResource, BenchError> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, plural) = match kind {
        "ConfigMap" => ("", "configmaps"),
        "Service" => ("", "services"),
        "Deployment" => ("apps", "deployments"),
        other => {
            return Err(BenchError::Input(format!(
                "mmf render printed an unexpected kind {other:?}"
            )));
        }
    };
    Ok(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, "v1", kind),
        plural,
    ))
}

async fn apply(client: &Client, namespace: &str, object: &Value) -> Result<(), BenchError> {
    let resource = resource_of(object)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| BenchError::api(format!("applying {name}"), e))?;
    Ok(())
}

async fn write_status(api: &Api<DynamicObject>, name: &str, ready: bool) -> Result<(), BenchError> {
    let (status, reason) = if ready {
        ("True", "Ready")
    } else {
        ("False", "Progressing")
    };
    let patch = json!({"status": {
        "observedGeneration": 1,
        "conditions": [{
            "type": "Ready", "status": status, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
        }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| BenchError::api(format!("writing the status of {name}"), e))?;
    Ok(())
}

/// Runs the baseline for `workload` (its plugins already created); returns the time from the
/// first create to the last status write.
pub async fn run(
    cluster: &Cluster,
    workload: &Workload,
    children: &Children,
    concurrency: usize,
) -> Result<Duration, BenchError> {
    let namespace = workload.namespace.clone();
    let services: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &namespace, &service_resource());
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &namespace);
    let (available_tx, mut available_rx) = mpsc::unbounded_channel::<String>();
    let watch = tokio::spawn(async move {
        let stream = watcher::watcher(deployments, watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut sent = HashSet::new();
        while let Some(Ok(event)) = stream.next().await {
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event {
                let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let available = d
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
                let name = d.metadata.name.clone().unwrap_or_default();
                if available >= wanted
                    && sent.insert(name.clone())
                    && available_tx.send(name).is_err()
                {
                    break;
                }
            }
        }
    });

    let started = Instant::now();
    let client = cluster.client.clone();
    let children = Arc::new(children.clone());
    let first = futures::stream::iter(workload.service_objects())
        .map(|object| {
            let client = client.clone();
            let services = services.clone();
            let namespace = namespace.clone();
            let children = children.clone();
            async move {
                let object: DynamicObject = serde_json::from_value(object)
                    .map_err(|e| BenchError::Input(format!("a bench object: {e}")))?;
                let name = object.metadata.name.clone().unwrap_or_default();
                services
                    .create(&PostParams::default(), &object)
                    .await
                    .map_err(|e| BenchError::api(format!("creating {name}"), e))?;
                for child in children.get(&name).into_iter().flatten() {
                    apply(&client, &namespace, child).await?;
                }
                write_status(&services, &name, false).await
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>();

    let expected = workload.services;
    let second = async {
        let mut done = 0;
        let mut pending = futures::stream::FuturesUnordered::new();
        while done < expected {
            tokio::select! {
                Some(name) = available_rx.recv(), if pending.len() < concurrency => {
                    let services = services.clone();
                    pending.push(async move { write_status(&services, &name, true).await });
                }
                Some(result) = pending.next(), if !pending.is_empty() => {
                    result?;
                    done += 1;
                }
                else => break,
            }
        }
        Ok::<_, BenchError>(done)
    };
    let (first, second) = tokio::join!(first, second);
    watch.abort();
    first?;
    let done = second?;
    if done < expected {
        return Err(BenchError::Timeout(format!(
            "the raw client finished {done} of {expected} services"
        )));
    }
    Ok(started.elapsed())
}
