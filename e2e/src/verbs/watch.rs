//! Watches: resume from a resourceVersion (410 Gone once compacted), initial events
//! (`sendInitialEvents`), bookmarks, `timeoutSeconds`, Table-formatted events for `kubectl get -w`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::controls::WatchCtl;
use crate::reply::{Body, full, present};
use crate::request::ResReq;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::shared::Shared;
use crate::status::ApiResult;
use crate::store::{Event, EventType};
use crate::table;

struct Filter {
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.ns
            && obj["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(&obj["metadata"]["labels"]) && self.fields.matches(obj)
    }
}

fn gone_event(msg: String) -> Value {
    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": msg, "reason": "Expired", "code": 410}})
}

/// Starts a watch; the response body streams newline-delimited JSON events.
pub fn watch(shared: &Arc<Shared>, r: &ResReq) -> ApiResult<hyper::Response<Body>> {
    let filter = Filter {
        ns: r.ns.clone(),
        labels: LabelSelector::parse(r.q("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(r.q("fieldSelector").unwrap_or_default())?,
    };
    let send_initial = r.q("sendInitialEvents") == Some("true");
    let bookmarks = r.q("allowWatchBookmarks") == Some("true");
    let timeout = r
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let rv_param = r.q("resourceVersion").unwrap_or_default().to_string();
    let as_table = table::wants_table(&r.accept);
    let info = r.info.clone();
    let include = r.q("includeObject").unwrap_or("Metadata").to_string();

    let mut initial: Vec<(EventType, Arc<Value>)> = Vec::new();
    let mut error: Option<Value> = None;
    if shared.controls.take_forced_gone(&r.info.plural) {
        error = Some(gone_event(
            "too old resource version (forced by test)".into(),
        ));
    }
    let (rx, start_rv) = {
        let mut st = shared.state();
        let cur_rv = st.rv;
        let key = info.key();
        let t = st.ty(&key);
        if error.is_some() {
            // A forced 410: no events, the client must relist.
        } else if send_initial || rv_param.is_empty() || rv_param == "0" {
            for o in t.objects.values() {
                initial.push((EventType::Added, o.clone()));
            }
        } else {
            match rv_param.parse::<u64>() {
                Ok(since) if since >= t.compacted => {
                    for ev in t.log.iter().filter(|e| e.rv > since) {
                        initial.push((ev.kind, ev.object.clone()));
                    }
                }
                Ok(since) => {
                    error = Some(gone_event(format!(
                        "too old resource version: {since} ({})",
                        t.compacted + 1
                    )))
                }
                Err(_) => error = Some(gone_event(format!("invalid resource version: {rv_param}"))),
            }
        }
        (t.tx.subscribe(), cur_rv)
    };
    let (tx, out_rx) = mpsc::channel::<Bytes>(256);
    let ctl = shared.controls.watch_ctl.subscribe();
    let shared2 = shared.clone();
    tokio::spawn(async move {
        let mut w = Writer {
            tx,
            info,
            as_table,
            include,
            headers_sent: false,
        };
        if let Some(e) = error {
            w.send_raw(&e).await;
            return;
        }
        for (kind, obj) in initial {
            if filter.matches(&obj) && !w.send(kind.as_str(), &obj).await {
                return;
            }
        }
        if send_initial {
            let bm = json!({"kind": w.info.kind, "apiVersion": w.info.api_version(), "metadata": {"resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if !w.send_raw(&json!({"type": "BOOKMARK", "object": bm})).await {
                return;
            }
        }
        run(shared2, w, rx, ctl, filter, bookmarks, timeout).await;
    });
    let stream = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let body: Body = http_body_util::StreamBody::new(stream).boxed_unsync();
    let ct = if as_table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    Ok(hyper::Response::builder()
        .status(200)
        .header("content-type", ct)
        .header("transfer-encoding", "chunked")
        .body(body)
        .unwrap_or_else(|_| hyper::Response::new(full(Bytes::new()))))
}

struct Writer {
    tx: mpsc::Sender<Bytes>,
    info: Arc<crate::resources::ResourceInfo>,
    as_table: bool,
    include: String,
    headers_sent: bool,
}

impl Writer {
    async fn send_raw(&mut self, v: &Value) -> bool {
        let mut line = v.to_string();
        line.push('\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }
    async fn send(&mut self, kind: &str, obj: &Value) -> bool {
        let o = present(&self.info, obj);
        let ev = if self.as_table {
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            let t = table::table(
                &self.info,
                &[o],
                rv,
                None,
                &self.include,
                !self.headers_sent,
            );
            self.headers_sent = true;
            json!({"type": kind, "object": t})
        } else {
            json!({"type": kind, "object": o})
        };
        self.send_raw(&ev).await
    }
}

async fn run(
    shared: Arc<Shared>,
    mut w: Writer,
    mut rx: broadcast::Receiver<Arc<Event>>,
    mut ctl: broadcast::Receiver<WatchCtl>,
    filter: Filter,
    bookmarks: bool,
    timeout: Duration,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(shared.bookmark_interval);
    tick.tick().await;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if filter.matches(&ev.object) && !w.send(ev.kind.as_str(), &ev.object).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    w.send_raw(&gone_event("watch fell behind; too old resource version".into())).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = &mut deadline => return,
            _ = tick.tick(), if bookmarks => {
                let rv = shared.state().rv;
                // Everything up to `rv` is already in the channel: deliver it before the bookmark.
                loop {
                    match rx.try_recv() {
                        Ok(ev) => {
                            if filter.matches(&ev.object) && !w.send(ev.kind.as_str(), &ev.object).await {
                                return;
                            }
                        }
                        Err(broadcast::error::TryRecvError::Lagged(_)) => {
                            w.send_raw(&gone_event("watch fell behind; too old resource version".into())).await;
                            return;
                        }
                        Err(_) => break,
                    }
                }
                let bm = json!({"type": "BOOKMARK", "object": {"kind": w.info.kind, "apiVersion": w.info.api_version(), "metadata": {"resourceVersion": rv.to_string()}}});
                if !w.send_raw(&bm).await {
                    return;
                }
            }
            c = ctl.recv() => match c {
                Ok(WatchCtl::Drop) => return,
                Ok(WatchCtl::Expire) => {
                    w.send_raw(&gone_event("too old resource version (forced by test)".into())).await;
                    return;
                }
                Err(_) => {}
            },
            _ = w.tx.closed() => return,
        }
    }
}
