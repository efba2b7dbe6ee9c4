//! kube-rs watchers and Controllers against the test server, including forced `410 Gone`
//! and dropped watch connections.
//!
//! Tests that force `410 Gone`, drop watches, shrink the event log or count requests need the
//! in-memory server and always start a fresh one (even when `MMF_E2E_KUBECONFIG` is set); the
//! others run against the real cluster when `MMF_E2E_KUBECONFIG` names one.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Env;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, ResourceExt, WatchEvent,
    WatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use mmf_e2e::TestApiServer;

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("role".into(), "parent".into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".into(), v.into())])),
        ..Default::default()
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Init,
    Apply(String, String),
    Delete(String),
}

/// Memory-only: forces `410 Gone` and dropped watches with the server's fault injection.
#[tokio::test]
async fn watcher_sees_every_change_in_order_across_gone_and_dropped_watches() {
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = seen.clone();
    let wapi = api.clone();
    let task = tokio::spawn(async move {
        let mut s = watcher(wapi, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = s.next().await {
            let Ok(ev) = ev else { continue };
            let rec = match ev {
                watcher::Event::Init => Seen::Init,
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    Seen::Apply(o.name_any(), o.data.unwrap_or_default()["v"].clone())
                }
                watcher::Event::Delete(o) => Seen::Delete(o.name_any()),
                watcher::Event::InitDone => continue,
            };
            log.lock().unwrap().push(rec);
        }
    });
    let has = |s: &Arc<Mutex<Vec<Seen>>>, x: Seen| {
        let s = s.clone();
        move || s.lock().unwrap().contains(&x)
    };
    api.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    eventually("v=1", has(&seen, Seen::Apply("a".into(), "1".into()))).await;

    server.faults().expire_watches();
    let inits = |s: &Arc<Mutex<Vec<Seen>>>| {
        s.lock()
            .unwrap()
            .iter()
            .filter(|x| **x == Seen::Init)
            .count()
    };
    eventually("relist after 410", || inits(&seen) >= 2).await;
    api.replace("a", &PostParams::default(), &{
        let mut c = api.get("a").await.unwrap();
        c.data = Some(BTreeMap::from([("v".into(), "2".into())]));
        c
    })
    .await
    .unwrap();
    eventually("v=2", has(&seen, Seen::Apply("a".into(), "2".into()))).await;

    server.faults().drop_watches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let patch = serde_json::json!({"data": {"v": "3"}});
    api.patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b", "1"))
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("delete of a", has(&seen, Seen::Delete("a".into()))).await;
    task.abort();

    let events: Vec<Seen> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| **s != Seen::Init)
        .cloned()
        .collect();
    let versions: Vec<String> = events
        .iter()
        .filter_map(|s| match s {
            Seen::Apply(n, v) if n == "a" => Some(v.clone()),
            _ => None,
        })
        .collect();
    let mut sorted = versions.clone();
    sorted.sort();
    assert_eq!(
        versions, sorted,
        "changes to `a` arrive in order: {events:?}"
    );
    sorted.dedup();
    assert_eq!(
        sorted,
        vec!["1", "2", "3"],
        "every version of `a` was seen: {events:?}"
    );
    let pos_b = events
        .iter()
        .position(|s| *s == Seen::Apply("b".into(), "1".into()))
        .unwrap();
    let pos_del = events
        .iter()
        .position(|s| *s == Seen::Delete("a".into()))
        .unwrap();
    assert!(pos_b < pos_del, "{events:?}");
    assert!(
        server.stats().count("list", "configmaps") >= 2,
        "the 410 forced a relist"
    );
}

/// Memory-only: needs an event log of 2 entries to compact on demand.
#[tokio::test]
async fn watch_from_a_compacted_resource_version_gets_410_gone() {
    let server = TestApiServer::builder()
        .event_log_capacity(2)
        .start()
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = api
        .create(&PostParams::default(), &cm("c0", "0"))
        .await
        .unwrap();
    for i in 1..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), "0"))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), &first.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    // A recent version still resumes.
    let latest = api.get("c4").await.unwrap().resource_version().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(2), &latest)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("c5", "0"))
        .await
        .unwrap();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "c5"),
        other => panic!("expected ADDED c5, got {other:?}"),
    }
}

#[derive(Clone)]
struct Ctx {
    client: kube::Client,
}

async fn reconcile(parent: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let ns = parent.namespace().unwrap();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let child = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}-child", parent.name_any()), "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": parent.name_any(), "uid": parent.uid().unwrap(), "controller": true
        }]},
        "stringData": {"v": parent.data.clone().unwrap_or_default().get("v").cloned().unwrap_or_default()},
    });
    secrets
        .patch(
            &format!("{}-child", parent.name_any()),
            &PatchParams::apply("e2e-controller").force(),
            &Patch::Apply(&child),
        )
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

/// Memory-only: forces `410 Gone` and dropped watches and counts the controller's writes.
#[tokio::test]
async fn controller_keeps_children_in_sync_across_gone_and_dropped_watches() {
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().await.unwrap();
    let parents: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let ctrl = Controller::new(
        parents.clone(),
        watcher::Config::default().labels("role=parent"),
    )
    .owns(secrets.clone(), watcher::Config::default())
    .run(
        reconcile,
        error_policy,
        Arc::new(Ctx {
            client: client.clone(),
        }),
    )
    .for_each(|_| async {});
    let task = tokio::spawn(ctrl);
    let child_value = |secrets: Api<Secret>| async move {
        secrets
            .get_opt("p-child")
            .await
            .unwrap()
            .and_then(|s| s.data)
            .map(|d| String::from_utf8(d["v"].0.clone()).unwrap())
    };
    parents
        .create(&PostParams::default(), &cm("p", "1"))
        .await
        .unwrap();
    wait_value(&secrets, "1", child_value).await;

    server.faults().expire_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    parents
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"v": "2"}})),
        )
        .await
        .unwrap();
    wait_value(&secrets, "2", child_value).await;

    server.faults().drop_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    parents
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"v": "3"}})),
        )
        .await
        .unwrap();
    wait_value(&secrets, "3", child_value).await;

    // Deleting the parent garbage-collects the child through its ownerReference.
    parents.delete("p", &DeleteParams::default()).await.unwrap();
    for _ in 0..100 {
        if secrets.get_opt("p-child").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(secrets.get_opt("p-child").await.unwrap().is_none());
    assert!(server.stats().writes_by("e2e-controller") >= 3);
    task.abort();
}

async fn wait_value<F, Fut>(secrets: &Api<Secret>, want: &str, f: F)
where
    F: Fn(Api<Secret>) -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    for _ in 0..400 {
        if f(secrets.clone()).await.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("child never reached v={want}");
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_objects_then_changes() {
    let env = Env::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client().await);
    api.create(&PostParams::default(), &cm("before", "1"))
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let wapi = api.clone();
    let task = tokio::spawn(async move {
        let mut s = watcher(wapi, watcher::Config::default().streaming_lists())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(Ok(o)) = s.next().await {
            log.lock().unwrap().push(o.name_any());
        }
    });
    eventually("initial object", || {
        seen.lock().unwrap().contains(&"before".to_string())
    })
    .await;
    api.create(&PostParams::default(), &cm("after", "1"))
        .await
        .unwrap();
    eventually("later object", || {
        seen.lock().unwrap().contains(&"after".to_string())
    })
    .await;
    task.abort();
    // Request counts exist only on the in-memory server.
    if let Some(server) = &env.server {
        assert_eq!(
            server.stats().count("list", "configmaps"),
            0,
            "streaming lists never call list"
        );
    }
}

#[tokio::test]
async fn one_field_manager_applying_spec_and_status_keeps_both_and_drops_removed_conditions() {
    use kube::api::DynamicObject;
    use kube::discovery::ApiResource;
    let env = Env::start().await;
    env.install_widget_crd().await;
    let client = env.client().await;
    let ar = ApiResource {
        group: "e2e.mmf.dev".into(),
        version: "v1".into(),
        api_version: "e2e.mmf.dev/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(client, &ar);
    let pp = PatchParams::apply("mmf-operator").force();
    let spec = serde_json::json!({"apiVersion": "e2e.mmf.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}});
    widgets.patch("w", &pp, &Patch::Apply(&spec)).await.unwrap();
    let status = |conds: serde_json::Value| serde_json::json!({"apiVersion": "e2e.mmf.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": {"conditions": conds}});
    let two = status(
        serde_json::json!([{"type": "Ready", "status": "True"}, {"type": "Degraded", "status": "False"}]),
    );
    widgets
        .patch_status("w", &pp, &Patch::Apply(&two))
        .await
        .unwrap();
    let one = status(serde_json::json!([{"type": "Ready", "status": "True"}]));
    let w = widgets
        .patch_status("w", &pp, &Patch::Apply(&one))
        .await
        .unwrap();
    assert_eq!(
        w.data["spec"],
        serde_json::json!({"size": 2, "color": "blue"})
    );
    assert_eq!(
        w.data["status"]["conditions"],
        serde_json::json!([{"type": "Ready", "status": "True"}])
    );
    assert_eq!(
        w.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
}
