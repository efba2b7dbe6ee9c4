//! Test controls and object semantics seen through kube-rs: request counting, fault injection,
//! Deployment readiness simulation, optimistic concurrency, selectors and pagination.
//!
//! Memory-only: these test the in-memory server's own controls and always start a fresh
//! `TestApiServer`, even when `MMF_E2E_KUBECONFIG` is set.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use mmf_e2e::{Readiness, TestApiServer};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..Default::default()
    }
}

fn api_status(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn stats_count_writes_per_field_manager_and_unchanged_applies_do_not_bump_resource_version() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    server.reset_stats();
    let first = api
        .patch("c", &PatchParams::apply("reconciler"), &Patch::Apply(&body))
        .await
        .unwrap();
    let second = api
        .patch("c", &PatchParams::apply("reconciler"), &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version, second.metadata.resource_version,
        "a no-op apply is not a change"
    );
    api.get("c").await.unwrap();
    let stats = server.stats();
    assert_eq!(stats.writes_by("reconciler"), 2);
    assert_eq!(stats.count("patch", "configmaps"), 2);
    assert_eq!(stats.count("get", "configmaps"), 1);
    assert_eq!(stats.writes(), 2);
}

#[tokio::test]
async fn injected_errors_conflicts_and_latency_reach_the_client() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    let faults = server.faults();
    faults.error_rate(Some("create"), Some("configmaps"), 1.0, 500);
    assert_eq!(
        api_status(
            api.create(&PostParams::default(), &cm("a", &[]))
                .await
                .unwrap_err()
        ),
        500
    );
    faults.clear();
    let created = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();

    faults.conflicts(1);
    assert_eq!(
        api_status(
            api.replace("a", &PostParams::default(), &created)
                .await
                .unwrap_err()
        ),
        409
    );
    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "v2".into())]));
    api.replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    // Optimistic concurrency: the old resourceVersion is now stale.
    assert_eq!(
        api_status(
            api.replace("a", &PostParams::default(), &created)
                .await
                .unwrap_err()
        ),
        409
    );

    // (500, not 503: kube's client retries 429/503/504 by itself.)
    faults.error_rate(Some("get"), None, 0.5, 500);
    let mut failures = 0;
    for _ in 0..4 {
        if api.get("a").await.is_err() {
            failures += 1;
        }
    }
    assert_eq!(failures, 2, "a 0.5 rate fails every second request");
    faults.clear();

    faults.latency(Some("list"), None, Duration::from_millis(300));
    let start = std::time::Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn deployment_readiness_is_simulated_per_test() {
    let server = TestApiServer::builder()
        .deployment_readiness(Readiness::Never)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::default_namespaced(server.client().await.unwrap());
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    api.patch("d", &PatchParams::apply("t"), &Patch::Apply(&d))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut status = None;
    for _ in 0..200 {
        status = api.get("d").await.unwrap().status;
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let status = status.unwrap();
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.unavailable_replicas
        ),
        (Some(2), None, Some(2))
    );

    server.set_deployment_readiness(Readiness::After(Duration::from_millis(100)));
    let mut d2 = d.clone();
    d2["spec"]["replicas"] = json!(3);
    api.patch("d", &PatchParams::apply("t"), &Patch::Apply(&d2))
        .await
        .unwrap();
    let mut ready = None;
    for _ in 0..100 {
        let s = api.get("d").await.unwrap().status.unwrap();
        if s.available_replicas == Some(3) {
            ready = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = ready.expect("deployment became available");
    assert_eq!(
        (s.ready_replicas, s.updated_replicas, s.observed_generation),
        (Some(3), Some(3), Some(2))
    );
    let conds: Vec<(String, String)> = s
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    assert_eq!(
        conds,
        vec![
            ("Available".into(), "True".into()),
            ("Progressing".into(), "True".into())
        ]
    );
}

#[tokio::test]
async fn label_selectors_and_limit_continue_paginate() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    for i in 0..5 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        api.create(
            &PostParams::default(),
            &cm(&format!("c{i}"), &[("tier", tier)]),
        )
        .await
        .unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier=even"))
                .await
                .unwrap()
        ),
        ["c0", "c2", "c4"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier in (odd)"))
                .await
                .unwrap()
        ),
        ["c1", "c3"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c3"))
                .await
                .unwrap()
        ),
        ["c3"]
    );
    let page1 = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = page1.metadata.continue_.clone().unwrap();
    assert_eq!(page1.metadata.remaining_item_count, Some(3));
    assert_eq!(names(page1), ["c0", "c1"]);
    let page2 = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let token2 = page2.metadata.continue_.clone().unwrap();
    assert_eq!(names(page2), ["c2", "c3"]);
    let page3 = api
        .list(&ListParams::default().limit(2).continue_token(&token2))
        .await
        .unwrap();
    assert!(page3.metadata.continue_.is_none());
    assert_eq!(names(page3), ["c4"]);
    // Once history is compacted the continue token expires.
    api.create(&PostParams::default(), &cm("c5", &[]))
        .await
        .unwrap();
    server.faults().expire_watches();
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    assert_eq!(api_status(err), 410);
}

#[tokio::test]
async fn standalone_binary_writes_kubeconfig_when_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-apiserver"))
        .args(["--port", "0", "--kubeconfig"])
        .arg(&kc)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if kc.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let yaml = std::fs::read_to_string(&kc).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.git_version, "v1.33.0-mmf-e2e");
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn reset_forgets_objects_but_keeps_resource_versions_monotonic() {
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let before = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    server.reset();
    assert!(api.get_opt("a").await.unwrap().is_none());
    let after = api
        .create(&PostParams::default(), &cm("b", &[]))
        .await
        .unwrap();
    let rv = |c: &ConfigMap| {
        c.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&after) > rv(&before));
    assert_eq!(server.stats().count("create", "configmaps"), 1);
}
