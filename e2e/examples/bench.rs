//! Load figure for the test API server: 20,000 ConfigMaps written while watchers are open.
//! Prints numbers only (no assertions): `cargo run --release -p mmf-e2e --example bench`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use mmf_e2e::TestApiServer;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(String::from)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const N: usize = 20_000;
    const WATCHERS: usize = 4;
    let server = TestApiServer::start().await?;
    let client = server.client().await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    println!("baseline: rss {:.1} MiB", rss_mib());

    let seen: Vec<Arc<AtomicUsize>> = (0..WATCHERS)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    for counter in &seen {
        let counter = counter.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(Ok(_)) = s.next().await {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let start = Instant::now();
    futures::stream::iter(0..N)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("cm-{i:05}")),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([("key".into(), "x".repeat(100))])),
                    ..Default::default()
                };
                let _ = api.create(&PostParams::default(), &cm).await;
            }
        })
        .await;
    let write = start.elapsed();
    println!(
        "create {N} objects (16 concurrent): {:.2?} ({:.0}/s)",
        write,
        N as f64 / write.as_secs_f64()
    );
    let start = Instant::now();
    while seen.iter().any(|c| c.load(Ordering::Relaxed) < N)
        && start.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "all {WATCHERS} watchers caught up {:.2?} after the last write",
        start.elapsed()
    );
    let start = Instant::now();
    let list = api.list(&ListParams::default()).await?;
    println!("list {} objects: {:.2?}", list.items.len(), start.elapsed());
    let start = Instant::now();
    let mut pages = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await?;
        pages += 1;
        match page.metadata.continue_ {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    println!("paged list ({pages} pages of 500): {:.2?}", start.elapsed());
    println!(
        "rss with {N} objects and {WATCHERS} watches: {:.1} MiB (includes the client side)",
        rss_mib()
    );
    server.shutdown().await;
    Ok(())
}
