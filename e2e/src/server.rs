//! HTTP(S) front end: accepts connections and routes each request (discovery, OpenAPI, or a
//! resource verb in [`crate::verbs`]) after counting it and applying injected faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::controls::RequestKey;
use crate::network::Cut;
use crate::reply::{Body, error_response, full, json_response};
use crate::reqlog::LoggedRequest;
use crate::request::ResReq;
use crate::shared::Shared;
use crate::status::{ApiError, path_not_found};
use crate::verbs::{self, watch};
use crate::{discovery, openapi};

/// Accepts connections until the task is aborted; connections live in `conns`. Requests are
/// logged as coming from `client` (the listener's name), and a [`Cut`] of that name applies.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    client: Arc<str>,
) {
    let mut conns = JoinSet::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // e.g. out of file descriptors: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let client = client.clone();
        conns.spawn(async move {
            let network = &shared.network;
            match network.cut_of(&client) {
                Some(Cut::Refuse) => return,
                Some(Cut::BlackHole) => {
                    network.until_healed(&client).await;
                    return;
                }
                None => {}
            }
            let svc = {
                let (shared, client) = (shared.clone(), client.clone());
                hyper::service::service_fn(move |req| {
                    let (shared, client) = (shared.clone(), client.clone());
                    async move { Ok::<_, Infallible>(route(shared, req, &client).await) }
                })
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = async {
                match acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            };
            // A cut stops polling the connection: Refuse closes it, BlackHole keeps it (open and
            // silent) until healed.
            tokio::pin!(connection);
            tokio::select! {
                biased;
                how = network.until_cut(&client) => {
                    if how == Cut::BlackHole {
                        network.until_healed(&client).await;
                    }
                }
                () = &mut connection => {}
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>, client: &str) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = query_map(parts.uri.query());
    let header = |h: &str| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let accept = header("accept");
    let user_agent = header("user-agent");
    let content_type = header("content-type");
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    tracing::debug!(method = %parts.method, uri = %parts.uri, %user_agent, %accept, %content_type, "request");

    // Non-resource endpoints.
    let reg_doc = |f: &dyn Fn(&crate::resources::Registry) -> Option<Value>| {
        let st = shared.state();
        f(&st.registry)
    };
    let simple = |v: Option<Value>| match v {
        Some(v) => json_response(200, &v, "application/json", &[]),
        None => error_response(&path_not_found()),
    };
    let non_resource_key = |shared: &Shared| {
        shared.controls.on_request(RequestKey {
            verb: "get".into(),
            resource: String::new(),
            user_agent: user_agent.clone(),
            field_manager: String::new(),
        });
    };
    match (parts.method.clone(), segs.as_slice()) {
        (Method::GET, ["version"]) => {
            non_resource_key(&shared);
            return simple(Some(discovery::version()));
        }
        (Method::GET, ["healthz" | "readyz" | "livez"]) => {
            return Response::builder()
                .status(200)
                .body(full("ok"))
                .unwrap_or_else(|_| Response::new(full("ok")));
        }
        (Method::GET, ["api"]) => {
            non_resource_key(&shared);
            if discovery::wants_aggregated(&accept) {
                let v = reg_doc(&|r| Some(discovery::aggregated(r, true)));
                return json_response(200, &v.unwrap_or_default(), discovery::AGGREGATED_CT, &[]);
            }
            return simple(Some(discovery::api_versions()));
        }
        (Method::GET, ["apis"]) => {
            non_resource_key(&shared);
            if discovery::wants_aggregated(&accept) {
                let v = reg_doc(&|r| Some(discovery::aggregated(r, false)));
                return json_response(200, &v.unwrap_or_default(), discovery::AGGREGATED_CT, &[]);
            }
            return simple(reg_doc(&|r| Some(discovery::api_group_list(r))));
        }
        (Method::GET, ["api", v]) => {
            non_resource_key(&shared);
            return simple(reg_doc(&|r| discovery::resource_list(r, "", v)));
        }
        (Method::GET, ["apis", g]) => {
            non_resource_key(&shared);
            return simple(reg_doc(&|r| discovery::api_group(r, g)));
        }
        (Method::GET, ["apis", g, v]) => {
            non_resource_key(&shared);
            return simple(reg_doc(&|r| discovery::resource_list(r, g, v)));
        }
        (Method::GET, ["openapi", "v2"]) => {
            non_resource_key(&shared);
            if !accept.is_empty() && !accept.contains("json") && !accept.contains("*/*") {
                return error_response(&ApiError::new(
                    406,
                    "NotAcceptable",
                    "only application/json is served for /openapi/v2",
                ));
            }
            return simple(reg_doc(&|r| Some(openapi::v2_document(r))));
        }
        (Method::GET, ["openapi", "v3"]) => {
            non_resource_key(&shared);
            return simple(reg_doc(&|r| Some(openapi::v3_index(r))));
        }
        (Method::GET, ["openapi", "v3", "api", v]) => {
            non_resource_key(&shared);
            return simple(reg_doc(&|r| openapi::v3_document(r, "", v)));
        }
        (Method::GET, ["openapi", "v3", "apis", g, v]) => {
            non_resource_key(&shared);
            return simple(reg_doc(&|r| openapi::v3_document(r, g, v)));
        }
        (Method::GET, []) => {
            return simple(Some(
                json!({"paths": ["/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3", "/version", "/healthz"]}),
            ));
        }
        _ => {}
    }

    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return error_response(&path_not_found()),
    };
    let (plural, ns, name, sub) = {
        let st = shared.state();
        let reg = &st.registry;
        match rest {
            ["namespaces", ns, p, tail @ ..]
                if reg.find(group, version, p).is_some_and(|i| i.namespaced) =>
            {
                (
                    p.to_string(),
                    Some(ns.to_string()),
                    tail.first().map(|s| s.to_string()),
                    tail.get(1).map(|s| s.to_string()),
                )
            }
            [p, tail @ ..] => (
                p.to_string(),
                None,
                tail.first().map(|s| s.to_string()),
                tail.get(1).map(|s| s.to_string()),
            ),
            _ => return error_response(&path_not_found()),
        }
    };
    let info = shared.state().registry.find(group, version, &plural);
    let Some(info) = info else {
        return error_response(&path_not_found());
    };
    if info.namespaced && ns.is_none() && name.is_some() {
        return error_response(&path_not_found());
    }
    let has_name = name.is_some();
    let verb: &'static str = match (&parts.method, has_name) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) => {
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                "watch"
            } else {
                "list"
            }
        }
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return error_response(&ApiError::method_not_allowed()),
    };
    if let Some(s) = &sub
        && !(s == "status" && info.status)
        && !(s == "scale" && info.group == "apps" && info.plural == "deployments")
    {
        return error_response(&path_not_found());
    }
    let resource = match &sub {
        Some(s) => format!("{}/{}", info.plural, s),
        None => info.plural.clone(),
    };
    let (delay, fault) = shared.controls.on_request(RequestKey {
        verb: verb.into(),
        resource: resource.clone(),
        user_agent: user_agent.clone(),
        field_manager: query.get("fieldManager").cloned().unwrap_or_default(),
    });
    shared.log.push(LoggedRequest {
        at: Duration::ZERO,
        client: client.to_owned(),
        verb: verb.into(),
        resource,
        name: name.clone().unwrap_or_default(),
        user_agent: user_agent.clone(),
        injected: fault,
    });
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(code) = fault {
        let e = match code {
            409 => ApiError::conflict(&info, name.as_deref().unwrap_or_default()),
            410 => ApiError::gone("injected: too old resource version"),
            429 => {
                let mut e = ApiError::new(429, "TooManyRequests", "injected: too many requests");
                e.details = json!({"retryAfterSeconds": 1});
                let mut response = error_response(&e);
                response
                    .headers_mut()
                    .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
                return response;
            }
            503 => ApiError::new(503, "ServiceUnavailable", "injected: service unavailable"),
            c => ApiError::new(c, "InternalError", format!("injected fault ({c})")),
        };
        return error_response(&e);
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&ApiError::bad_request(e.to_string())),
    };
    let rr = ResReq {
        verb,
        info,
        ns,
        name,
        sub,
        query,
        accept,
        content_type,
        body,
        user_agent,
    };
    if verb == "watch" {
        return match watch::watch(&shared, &rr) {
            Ok(resp) => resp,
            Err(e) => error_response(&e),
        };
    }
    let as_table = crate::table::wants_table(&rr.accept) && matches!(verb, "get" | "list");
    match verbs::handle(&shared, rr).await {
        Ok(reply) => {
            let ct = if as_table {
                "application/json;as=Table;v=v1;g=meta.k8s.io"
            } else {
                "application/json"
            };
            json_response(reply.code, &reply.body, ct, &reply.warnings)
        }
        Err(e) => {
            tracing::debug!(code = e.code, message = %e.message, "error reply");
            error_response(&e)
        }
    }
}
