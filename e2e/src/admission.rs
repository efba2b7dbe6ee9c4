//! Admission webhooks (mutating, then validating): matching requests are sent as AdmissionReview v1 over TLS
//! verified with the webhook's `caBundle`. `clientConfig.service` is reached through the
//! mapping registered with [`crate::TestApiServer::map_service`].

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::resources::ResourceInfo;
use crate::selectors::LabelSelector;
use crate::shared::Shared;
use crate::status::{ApiError, ApiResult};

/// What is being admitted.
pub struct Attrs<'a> {
    pub operation: &'a str,
    pub info: &'a ResourceInfo,
    pub sub: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
    pub object: Option<&'a Value>,
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

fn list_has(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|a| a.iter().any(|x| x == "*" || x == want))
}

fn rule_matches(rule: &Value, a: &Attrs<'_>) -> bool {
    let res = match a.sub {
        Some(s) => format!("{}/{}", a.info.plural, s),
        None => a.info.plural.clone(),
    };
    let res_ok = rule["resources"].as_array().is_some_and(|rs| {
        rs.iter().filter_map(Value::as_str).any(|r| {
            r == res
                || r == "*/*"
                || (r == "*" && a.sub.is_none())
                || (r.ends_with("/*")
                    && a.sub.is_some()
                    && r.trim_end_matches("/*") == a.info.plural)
                || (r.starts_with("*/") && a.sub.is_some_and(|s| r.trim_start_matches("*/") == s))
        })
    });
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Namespaced" => a.info.namespaced,
        "Cluster" => !a.info.namespaced,
        _ => true,
    };
    list_has(&rule["operations"], a.operation)
        && list_has(&rule["apiGroups"], &a.info.group)
        && list_has(&rule["apiVersions"], &a.info.version)
        && res_ok
        && scope_ok
}

/// Runs every matching validating webhook; returns warnings, or the denial/failure.
pub async fn validate(shared: &Arc<Shared>, a: Attrs<'_>) -> ApiResult<Vec<String>> {
    Ok(run(shared, a, "validatingwebhookconfigurations").await?.1)
}

/// Runs every matching mutating webhook in order, applying their JSON patches; returns the
/// mutated object (if any webhook patched it) and warnings.
pub async fn mutate(shared: &Arc<Shared>, a: Attrs<'_>) -> ApiResult<(Option<Value>, Vec<String>)> {
    if a.operation == "DELETE" {
        return Ok((None, vec![]));
    }
    run(shared, a, "mutatingwebhookconfigurations").await
}

async fn run(
    shared: &Arc<Shared>,
    a: Attrs<'_>,
    configs: &str,
) -> ApiResult<(Option<Value>, Vec<String>)> {
    if a.info.group == "admissionregistration.k8s.io" {
        return Ok((None, vec![]));
    }
    let mutating = configs.starts_with("mutating");
    let mut current: Option<Value> = None;
    let (hooks, ns_labels) = {
        let st = shared.state();
        let key = (
            "admissionregistration.k8s.io".to_string(),
            configs.to_string(),
        );
        let hooks: Vec<Value> = st
            .types
            .get(&key)
            .map(|t| {
                t.objects
                    .values()
                    .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let ns_labels = if a.namespace.is_empty() {
            json!({})
        } else {
            st.get(&(String::new(), "namespaces".into()), "", a.namespace)
                .map(|n| n["metadata"]["labels"].clone())
                .unwrap_or(json!({}))
        };
        (hooks, ns_labels)
    };
    let mut warnings = Vec::new();
    for hook in hooks {
        let rules_ok = hook["rules"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| rule_matches(r, &a)));
        if !rules_ok {
            continue;
        }
        if a.info.namespaced
            && !LabelSelector::from_object(&hook["namespaceSelector"]).matches(&ns_labels)
        {
            continue;
        }
        let obj_labels = a
            .object
            .or(a.old)
            .map(|o| o["metadata"]["labels"].clone())
            .unwrap_or(json!({}));
        if !LabelSelector::from_object(&hook["objectSelector"]).matches(&obj_labels) {
            continue;
        }
        let name = hook["name"].as_str().unwrap_or_default().to_string();
        let timeout = Duration::from_secs(hook["timeoutSeconds"].as_u64().unwrap_or(10));
        let mut review = review(&a, shared);
        if let Some(c) = &current {
            review["request"]["object"] = c.clone();
        }
        let result = tokio::time::timeout(timeout, call(shared, &hook, &review)).await;
        let outcome = match result {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("context deadline exceeded".to_string()),
        };
        match outcome {
            Ok(resp) => {
                let r = &resp["response"];
                if let Some(ws) = r["warnings"].as_array() {
                    warnings.extend(ws.iter().filter_map(|w| w.as_str().map(String::from)));
                }
                if r["allowed"] != Value::Bool(true) {
                    return Err(denial(&name, &r["status"]));
                }
                if mutating && let Some(p) = r["patch"].as_str() {
                    let mut obj = current
                        .take()
                        .or_else(|| a.object.cloned())
                        .unwrap_or(Value::Null);
                    let patch = base64::engine::general_purpose::STANDARD
                        .decode(p)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .ok_or_else(|| {
                            ApiError::internal(format!(
                                "webhook \"{name}\" returned an undecodable patch"
                            ))
                        })?;
                    crate::patch::json(&mut obj, &patch).map_err(|e| {
                        ApiError::internal(format!(
                            "webhook \"{name}\" returned an invalid patch: {}",
                            e.message
                        ))
                    })?;
                    current = Some(obj);
                }
            }
            Err(e) => {
                if hook["failurePolicy"].as_str() != Some("Ignore") {
                    return Err(ApiError::internal(format!(
                        "failed calling webhook \"{name}\": failed to call webhook: {e}"
                    )));
                }
            }
        }
    }
    Ok((current, warnings))
}

/// Same shape as kube-apiserver's `webhookerrors.ToStatusErr`.
fn denial(name: &str, status: &Value) -> ApiError {
    let denied = format!("admission webhook \"{name}\" denied the request");
    let code = status["code"].as_u64().filter(|c| *c >= 400).unwrap_or(400) as u16;
    let msg = status["message"].as_str().filter(|m| !m.is_empty());
    let reason_text = status["reason"].as_str().filter(|m| !m.is_empty());
    let message = match (msg, reason_text) {
        (Some(m), _) => format!("{denied}: {m}"),
        (None, Some(r)) => format!("{denied}: {r}"),
        _ => format!("{denied} without explanation"),
    };
    // The webhook's reason is passed through, as kube-apiserver does.
    let reason: &'static str = match status["reason"].as_str().unwrap_or_default() {
        "Forbidden" => "Forbidden",
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        "Conflict" => "Conflict",
        "Unauthorized" => "Unauthorized",
        "NotFound" => "NotFound",
        "AlreadyExists" => "AlreadyExists",
        _ => "",
    };
    let mut e = ApiError::new(code, reason, message);
    if status["details"].is_object() {
        e.details = status["details"].clone();
    }
    e
}

fn review(a: &Attrs<'_>, shared: &Shared) -> Value {
    let uid = shared.state().new_uid();
    let kind = json!({"group": a.info.group, "version": a.info.version, "kind": a.info.kind});
    let resource =
        json!({"group": a.info.group, "version": a.info.version, "resource": a.info.plural});
    let options = match a.operation {
        "CREATE" => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        _ => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
    };
    let mut req = json!({
        "uid": uid, "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
        "name": a.name, "operation": a.operation,
        "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
        "object": a.object.cloned().unwrap_or(Value::Null),
        "oldObject": a.old.cloned().unwrap_or(Value::Null),
        "dryRun": a.dry_run, "options": options,
    });
    if !a.namespace.is_empty() {
        req["namespace"] = json!(a.namespace);
    }
    if let Some(s) = a.sub {
        req["subResource"] = json!(s);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

async fn call(shared: &Shared, hook: &Value, review: &Value) -> Result<Value, String> {
    let cc = &hook["clientConfig"];
    let (addr, server_name, path) = if let Some(u) = cc["url"].as_str() {
        let url = url::Url::parse(u).map_err(|e| e.to_string())?;
        let host = url.host_str().unwrap_or("localhost").to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path = format!("{path}?{q}");
        }
        (addr, host, path)
    } else {
        let svc = &cc["service"];
        let ns = svc["namespace"].as_str().unwrap_or_default();
        let name = svc["name"].as_str().unwrap_or_default();
        let port = svc["port"].as_u64().unwrap_or(443) as u16;
        let addr = shared
            .service_addr(ns, name, port)
            .ok_or_else(|| format!("service \"{ns}/{name}\" port {port} is not mapped to a local address (TestApiServer::map_service)"))?;
        (
            addr,
            format!("{name}.{ns}.svc"),
            svc["path"].as_str().unwrap_or("/").to_string(),
        )
    };
    let ca = match cc["caBundle"].as_str() {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("invalid caBundle: {e}"))?,
        None => return Err("no caBundle (the test server trusts no system roots)".into()),
    };
    let cfg = crate::tls::client_config_for_bundle(&ca).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("Post \"https://{server_name}{path}\": {e}"))?;
    let sn =
        rustls::pki_types::ServerName::try_from(server_name.clone()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(sn, tcp)
        .await
        .map_err(|e| format!("Post \"https://{server_name}{path}\": tls: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header("host", server_name)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(review.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("the server responded with status {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("invalid AdmissionReview response: {e}"))
}
