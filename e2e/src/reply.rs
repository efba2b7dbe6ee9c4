//! HTTP replies: the body type, JSON and error responses, and a verb's successful result.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::Response;
use serde_json::{Value, json};

use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// Every response body the server sends (whole JSON documents or a watch stream).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A body holding `b` in one piece.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

/// A JSON response; each warning becomes a `Warning: 299` header as kube-apiserver sends.
pub fn json_response(
    code: u16,
    v: &Value,
    content_type: &str,
    warnings: &[String],
) -> Response<Body> {
    let mut b = Response::builder()
        .status(code)
        .header("content-type", content_type);
    for w in warnings {
        b = b.header("warning", format!("299 - {:?}", w));
    }
    b.body(full(v.to_string()))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// A `Status` document for `e`, with its code.
pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json", &[])
}

/// A successful reply: status code, body, warnings.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

pub(crate) fn ok(code: u16, body: Value, warnings: Vec<String>) -> ApiResult<Reply> {
    Ok(Reply {
        code,
        body,
        warnings,
    })
}

/// The object as served through `info`'s version.
pub fn present(info: &ResourceInfo, obj: &Value) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(info.api_version());
    o
}
