//! Readiness checks for each component, in start order. Every wait also watches the process:
//! a component that exits fails the start at once with the tail of its log.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::pem::PemObject;

use super::{Component, RealError};

const POLL: Duration = Duration::from_millis(250);

/// Polls `check` (Ok(()) = ready, Err(text) = not yet, with what was seen) until `timeout`.
async fn until<F, Fut>(
    component: &mut Component,
    timeout: Duration,
    mut check: F,
) -> Result<(), RealError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        component.check_running()?;
        let last = match check().await {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if Instant::now() > deadline {
            return Err(RealError::NotReady {
                component: component.name,
                seconds: timeout.as_secs(),
                last,
                log: component.log.clone(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn get_text(client: &kube::Client, path: &str) -> Result<String, String> {
    let request = hyper::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request_text(request)
        .await
        .map_err(|e| e.to_string())
}

/// A client without credentials for a component's own endpoint (`http://` for etcd; `https://`
/// trusting our CA otherwise).
fn plain_client(url: &str, ca_pem: Option<&[u8]>) -> Result<kube::Client, RealError> {
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| {
        RealError::Pki(format!("bad component URL {url}: {e}"))
    })?;
    let mut config = kube::Config::new(uri);
    if let Some(pem) = ca_pem {
        let ders = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RealError::Pki(e.to_string()))?;
        config.root_cert = Some(ders);
    }
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(config).map_err(|source| RealError::Kube {
        context: format!("building a client for {url}"),
        source,
    })
}

/// etcd: `/health` reports `"health":"true"`.
pub async fn etcd(component: &mut Component, url: &str) -> Result<(), RealError> {
    let client = plain_client(url, None)?;
    until(component, Duration::from_secs(60), || async {
        let body = get_text(&client, "/health").await?;
        if body.contains(r#""health":"true""#) {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await
}

/// kube-apiserver: `/readyz` answers `ok` to the admin (a client certificate avoids the
/// anonymous 401/403 window while RBAC bootstraps). On timeout, the failing checks are named.
pub async fn apiserver(component: &mut Component, admin: &kube::Client) -> Result<(), RealError> {
    let result = until(component, Duration::from_secs(120), || async {
        match get_text(admin, "/readyz").await {
            Ok(body) if body.trim() == "ok" => Ok(()),
            Ok(body) => Err(body),
            Err(e) => Err(e),
        }
    })
    .await;
    if let Err(RealError::NotReady { last, .. }) = &result {
        let verbose = get_text(admin, "/readyz?verbose").await.unwrap_or_default();
        let failing: Vec<&str> = verbose.lines().filter(|l| l.contains("failed")).collect();
        tracing::warn!(%last, failing = %failing.join("; "), "kube-apiserver not ready");
    }
    result
}

/// kube-controller-manager or kube-scheduler: `/healthz` on its secure port answers `ok`.
pub async fn healthz(component: &mut Component, port: u16, ca: &[u8]) -> Result<(), RealError> {
    let client = plain_client(&format!("https://127.0.0.1:{port}"), Some(ca))?;
    until(component, Duration::from_secs(60), || async {
        let body = get_text(&client, "/healthz").await?;
        if body.trim() == "ok" {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await
}

/// kube-controller-manager's serviceaccount controller has created `default/default`, which
/// ServiceAccount admission needs before any pod can be created.
pub async fn default_service_account(
    component: &mut Component,
    admin: &kube::Client,
) -> Result<(), RealError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    until(component, Duration::from_secs(60), || async {
        match accounts.get_opt("default").await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("serviceaccount default/default does not exist yet".into()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Creates the fake nodes and waits until each is Ready and has lost the
/// `node.kubernetes.io/not-ready` taint (removed by the node-lifecycle controller).
pub async fn nodes(
    component: &mut Component,
    admin: &kube::Client,
    names: &[&str],
) -> Result<(), RealError> {
    let api: Api<Node> = Api::all(admin.clone());
    for name in names {
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {
                    "kwok.x-k8s.io/node": "fake",
                    "node.alpha.kubernetes.io/ttl": "0"
                },
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok"
                }
            }
        }))
        .map_err(|e| RealError::Pki(format!("node manifest: {e}")))?;
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(RealError::Kube {
                    context: format!("creating node {name}"),
                    source,
                });
            }
        }
    }
    until(component, Duration::from_secs(90), || async {
        for name in names {
            let node = api.get(name).await.map_err(|e| e.to_string())?;
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let tainted = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| t.iter().any(|t| t.key == "node.kubernetes.io/not-ready"));
            if !ready || tainted {
                return Err(format!(
                    "node {name}: ready={ready}, not-ready taint={tainted}"
                ));
            }
        }
        Ok(())
    })
    .await
}
