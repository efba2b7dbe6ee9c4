//! ValidatingWebhookConfigurations are honoured: a TLS webhook inside the test denies an
//! object and kubectl prints the webhook's message, warnings reach the client, and
//! `failurePolicy` decides what happens when the webhook cannot be called.
//!
//! Memory-only: every test starts a fresh in-memory server (`Env::memory`), even when
//! `MMF_E2E_KUBECONFIG` is set, because `clientConfig.service` is routed to the local webhook
//! with `TestApiServer::map_service`.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use base64::Engine;
use bytes::Bytes;
use common::{Env, skip_without_kubectl};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mmf_e2e::tls::TestCa;
use serde_json::{Value, json};

/// Denies widgets with size > 10, warns for size > 5.
fn review(req: &Value) -> Value {
    let uid = req["request"]["uid"].clone();
    let obj = &req["request"]["object"];
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let size = obj["spec"]["size"].as_i64().unwrap_or(0);
    let response = if size > 10 {
        json!({"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": format!("size {size} exceeds the limit of 10")}})
    } else if size > 5 {
        json!({"uid": uid, "allowed": true, "warnings": [format!("widget {name} is large")]})
    } else {
        json!({"uid": uid, "allowed": true})
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Adds the label `mutated: "yes"` with a JSONPatch.
fn mutation(req: &Value) -> Value {
    let patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]);
    let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": req["request"]["uid"], "allowed": true, "patchType": "JSONPatch", "patch": patch}})
}

async fn start_webhook(ca: &TestCa) -> SocketAddr {
    let cert = ca.issue(&["policy-webhook.default.svc"]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(mmf_e2e::tls::server_config(&cert).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let mutate = req.uri().path() == "/mutate";
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let parsed: Value = serde_json::from_slice(&body).unwrap();
                        let out = if mutate {
                            mutation(&parsed)
                        } else {
                            review(&parsed)
                        };
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                            out.to_string(),
                        ))))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

fn webhook_config(name: &str, client_config: Value, failure_policy: &str) -> String {
    typed_webhook_config(
        "ValidatingWebhookConfiguration",
        name,
        client_config,
        failure_policy,
    )
}

fn typed_webhook_config(
    kind: &str,
    name: &str,
    client_config: Value,
    failure_policy: &str,
) -> String {
    let cfg = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": [{
            "name": format!("{name}.e2e.mmf.dev"),
            "clientConfig": client_config,
            "rules": [{"apiGroups": ["e2e.mmf.dev"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["widgets"], "scope": "*"}],
            "failurePolicy": failure_policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
        }],
    });
    cfg.to_string()
}

fn widget(name: &str, size: i64) -> String {
    format!(
        "apiVersion: e2e.mmf.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n"
    )
}

#[tokio::test]
async fn webhook_denial_is_printed_by_kubectl_and_warnings_are_shown() {
    if skip_without_kubectl("webhook_denial") {
        return;
    }
    let env = Env::memory().await;
    env.install_widget_crd().await;
    let ca = TestCa::new().unwrap();
    let addr = start_webhook(&ca).await;
    env.memory_server()
        .map_service("default", "policy-webhook", 443, addr);
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca.cert_pem());
    let cc = json!({"service": {"namespace": "default", "name": "policy-webhook", "path": "/validate", "port": 443}, "caBundle": bundle});
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&webhook_config("policy", cc, "Fail")),
    )
    .await;

    let err = env
        .kubectl_fails(&["apply", "-f", "-"], Some(&widget("big", 11)))
        .await;
    assert_eq!(
        err,
        "Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"policy.e2e.mmf.dev\" denied the request: size 11 exceeds the limit of 10\n"
    );
    let out = env
        .kubectl_output(&["apply", "-f", "-"], Some(&widget("medium", 6)))
        .await;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "widget.e2e.mmf.dev/medium created\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Warning: widget medium is large\n"
    );
    // Updates are reviewed too.
    let err = env
        .kubectl_fails(
            &[
                "patch",
                "widget",
                "medium",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"size":12}}"#,
            ],
            None,
        )
        .await;
    assert!(
        err.contains("denied the request: size 12 exceeds the limit of 10"),
        "{err}"
    );
    assert_eq!(
        env.kubectl(&["get", "widget", "medium", "-o=jsonpath={.spec.size}"])
            .await,
        "6"
    );
}

#[tokio::test]
async fn webhook_with_the_wrong_ca_or_no_listener_follows_failure_policy() {
    if skip_without_kubectl("webhook_failure_policy") {
        return;
    }
    let env = Env::memory().await;
    env.install_widget_crd().await;
    let ca = TestCa::new().unwrap();
    let addr = start_webhook(&ca).await;
    let wrong_ca =
        base64::engine::general_purpose::STANDARD.encode(TestCa::new().unwrap().cert_pem());
    let cc =
        json!({"url": format!("https://localhost:{}/validate", addr.port()), "caBundle": wrong_ca});
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&webhook_config("untrusted", cc.clone(), "Fail")),
    )
    .await;
    let err = env
        .kubectl_fails(&["apply", "-f", "-"], Some(&widget("w", 1)))
        .await;
    assert!(
        err.starts_with("Error from server (InternalError): error when creating \"STDIN\": Internal error occurred: failed calling webhook \"untrusted.e2e.mmf.dev\": failed to call webhook: "),
        "{err}"
    );
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&webhook_config("untrusted", cc, "Ignore")),
    )
    .await;
    assert_eq!(
        env.kubectl_stdin(&["apply", "-f", "-"], Some(&widget("w", 1)))
            .await,
        "widget.e2e.mmf.dev/w created\n"
    );
}

#[tokio::test]
async fn mutating_webhook_patches_the_object_before_validation() {
    if skip_without_kubectl("mutating_webhook") {
        return;
    }
    let env = Env::memory().await;
    env.install_widget_crd().await;
    let ca = TestCa::new().unwrap();
    let addr = start_webhook(&ca).await;
    env.memory_server()
        .map_service("default", "policy-webhook", 443, addr);
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca.cert_pem());
    let cc = json!({"service": {"namespace": "default", "name": "policy-webhook", "path": "/mutate", "port": 443}, "caBundle": bundle});
    let cfg = typed_webhook_config("MutatingWebhookConfiguration", "labeler", cc, "Fail");
    env.kubectl_stdin(&["apply", "-f", "-"], Some(&cfg)).await;
    env.kubectl_stdin(&["apply", "-f", "-"], Some(&widget("m", 1)))
        .await;
    assert_eq!(
        env.kubectl(&[
            "get",
            "widget",
            "m",
            "-o=jsonpath={.metadata.labels.mutated}"
        ])
        .await,
        "yes"
    );
}
