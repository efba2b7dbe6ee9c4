//! The fault controls of the reliability suite: seeded write faults in rotation, a forced
//! `410 Gone` on the next watch, watches dropped at an interval, and one listener's clients
//! cut off (refused or black-holed) while the request log names who sent what.
//!
//! Memory-only: these test the in-memory server's own controls.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams, WatchEvent, WatchParams};
use mmf_e2e::{Cut, Injected, TestApiServer, WRITE_FAULT_CODES, WriteFaults};
use serde_json::{Value, json};

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..Default::default()
    }
}

/// Creates `n` ConfigMaps through kube-rs (which retries a 429 itself).
async fn create_many(api: &Api<ConfigMap>, prefix: &str, n: usize) -> Vec<Option<u16>> {
    let mut outcomes = Vec::new();
    for i in 0..n {
        outcomes.push(
            match api
                .create(&PostParams::default(), &cm(&format!("{prefix}-{i}")))
                .await
            {
                Ok(_) => None,
                Err(kube::Error::Api(status)) => Some(status.code),
                Err(other) => panic!("expected an API error, got {other}"),
            },
        );
    }
    outcomes
}

/// 150 creates and 20 lists with 10% of writes failing: what the server injected, request by
/// request (None: served), for the creates and for the lists.
async fn injected_with_seed(seed: u64) -> (Vec<Option<u16>>, Vec<Option<u16>>, Injected) {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    server.faults().write_faults(WriteFaults {
        rate: 0.1,
        seed,
        user_agent: None,
    });
    create_many(&api, "c", 150).await;
    for _ in 0..20 {
        api.list(&Default::default()).await.unwrap();
    }
    let log = server.request_log();
    let of = |verb: &str| -> Vec<Option<u16>> {
        log.iter()
            .filter(|r| r.resource == "configmaps" && r.verb == verb)
            .map(|r| r.injected)
            .collect()
    };
    (of("create"), of("list"), server.faults().injected())
}

#[tokio::test]
async fn seeded_write_faults_fail_the_same_writes_every_run_in_rotation_500_429_409() {
    let ((first, lists, injected), (again, _, _), (other_seed, _, _)) = tokio::join!(
        injected_with_seed(11),
        injected_with_seed(11),
        injected_with_seed(12)
    );
    assert_eq!(first, again, "the same seed fails the same writes");
    assert_ne!(first, other_seed, "another seed fails other writes");
    assert_eq!(lists, vec![None; 20], "reads never fail");
    let failed: Vec<u16> = first.iter().flatten().copied().collect();
    println!(
        "figure: {} creates (kube-rs retries each 429) at rate 0.1, seed 11: {} failed",
        first.len(),
        failed.len()
    );
    assert!(
        (first.len() / 20..=first.len() / 5).contains(&failed.len()),
        "about 10% of {}: {}",
        first.len(),
        failed.len()
    );
    let rotation: Vec<u16> = (0..failed.len())
        .map(|i| WRITE_FAULT_CODES[i % 3])
        .collect();
    assert_eq!(failed, rotation);
    let mut per_code = BTreeMap::new();
    for code in &failed {
        *per_code.entry(*code).or_insert(0u64) += 1;
    }
    assert_eq!(
        injected,
        Injected {
            errors: per_code,
            watch_drops: 0,
            gone: 0,
        }
    );
}

/// POSTs a ConfigMap over plain HTTP with `user_agent` (no client-side retries): the status,
/// the `Retry-After` header and the body.
async fn raw_create(url: &str, user_agent: &str, name: &str) -> (u16, Option<String>, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let body = serde_json::to_vec(&cm(name)).unwrap();
    let request = hyper::Request::post(format!("{url}/api/v1/namespaces/default/configmaps"))
        .header("content-type", "application/json")
        .header("user-agent", user_agent)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, retry_after, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn write_faults_spare_other_user_agents_and_a_429_says_retry_after_one_second() {
    let server = TestApiServer::builder().tls(false).start().await.unwrap();
    server.faults().write_faults(WriteFaults {
        rate: 1.0,
        seed: 1,
        user_agent: Some("mmf-operator".into()),
    });
    let (code, _, _) = raw_create(server.url(), "kubectl/v1.33.1", "spared").await;
    assert_eq!(code, 201);
    let mut seen = Vec::new();
    for i in 0..4 {
        let (code, retry_after, body) =
            raw_create(server.url(), "mmf-operator/0.1.0", &format!("failed-{i}")).await;
        seen.push((
            code,
            retry_after,
            body["reason"].clone(),
            body["details"]["retryAfterSeconds"].clone(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (500, None, json!("InternalError"), Value::Null),
            (
                429,
                Some("1".to_owned()),
                json!("TooManyRequests"),
                json!(1)
            ),
            (409, None, json!("Conflict"), Value::Null),
            (500, None, json!("InternalError"), Value::Null),
        ]
    );
}

#[tokio::test]
async fn a_forced_gone_answers_only_the_next_watch_with_410() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    server.faults().expire_next_watches(Some("configmaps"), 1);
    let params = WatchParams::default().timeout(1);
    let first: Vec<_> = api.watch(&params, "0").await.unwrap().collect().await;
    let codes: Vec<Option<u16>> = first
        .iter()
        .map(|event| match event {
            Ok(WatchEvent::Error(status)) => Some(status.code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![Some(410)]);
    let second: Vec<_> = api.watch(&params, "0").await.unwrap().collect().await;
    let names: Vec<String> = second
        .iter()
        .filter_map(|event| match event {
            Ok(WatchEvent::Added(object)) => object.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["a".to_owned()], "from resourceVersion {rv}");
    assert_eq!(server.faults().injected().gone, 1);
}

#[tokio::test]
async fn watches_are_dropped_at_the_interval_until_stopped() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    server
        .faults()
        .drop_watches_every(Some(Duration::from_millis(300)));
    // A watch asking for 60 s ends when the next drop comes.
    let stream = api
        .watch(&WatchParams::default().timeout(60), "0")
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.collect::<Vec<_>>()).await;
    assert!(ended.is_ok(), "the watch was not dropped");
    assert!(server.faults().injected().watch_drops >= 1);
    server.faults().drop_watches_every(None);
    let drops = server.faults().injected().watch_drops;
    let stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let _ = stream.collect::<Vec<_>>().await;
    assert_eq!(server.faults().injected().watch_drops, drops, "stopped");
}

#[tokio::test]
async fn a_cut_listener_is_refused_or_black_holed_while_the_others_are_served() {
    let server = TestApiServer::start().await.unwrap();
    let url = server.listen_as("replica-a").unwrap();
    let cut_api: Api<ConfigMap> = Api::default_namespaced(server.client_for(&url).await.unwrap());
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await.unwrap());
    cut_api
        .create(&PostParams::default(), &cm("via-a"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("via-default"))
        .await
        .unwrap();

    server.faults().cut("replica-a", Cut::Refuse);
    let refused = cut_api.get("via-a").await.unwrap_err();
    assert!(
        !matches!(refused, kube::Error::Api(_)),
        "no answer, not an API error: {refused}"
    );
    api.get("via-a").await.unwrap();

    server.faults().cut("replica-a", Cut::BlackHole);
    let hung = tokio::time::timeout(Duration::from_secs(1), cut_api.get("via-a")).await;
    assert!(
        hung.is_err(),
        "a black-holed request got an answer: {hung:?}"
    );
    api.get("via-a").await.unwrap();

    server.faults().heal("replica-a");
    cut_api.get("via-a").await.unwrap();

    let log: Vec<(String, String, String)> = server
        .request_log()
        .into_iter()
        .filter(|r| r.resource == "configmaps")
        .map(|r| (r.client, r.verb, r.name))
        .collect();
    let entry = |client: &str, verb: &str, name: &str| {
        (client.to_owned(), verb.to_owned(), name.to_owned())
    };
    assert_eq!(
        log,
        vec![
            entry("replica-a", "create", ""),
            entry("default", "create", ""),
            entry("default", "get", "via-a"),
            entry("default", "get", "via-a"),
            entry("replica-a", "get", "via-a"),
        ]
    );
}
