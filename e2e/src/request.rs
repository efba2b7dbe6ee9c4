//! A request against a resource, as the router parsed it, and its decoded body.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::lifecycle::FieldValidation;
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult};

/// A parsed request against a resource.
pub struct ResReq {
    pub verb: &'static str,
    pub info: Arc<ResourceInfo>,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub content_type: String,
    pub body: Bytes,
    pub user_agent: String,
}

impl ResReq {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
    pub(crate) fn ns_str(&self) -> &str {
        self.ns.as_deref().unwrap_or_default()
    }
    pub(crate) fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
    pub(crate) fn manager(&self) -> String {
        match self.q("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
    pub(crate) fn dry_run(&self) -> bool {
        self.q("dryRun") == Some("All")
    }
    pub(crate) fn fv(&self) -> FieldValidation {
        FieldValidation::parse(self.q("fieldValidation"))
    }
}

/// The request body as JSON (JSON, YAML or a protobuf envelope on the wire).
pub fn parse_body(r: &ResReq) -> ApiResult<Value> {
    if r.body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if r.content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        return crate::protobuf::decode_envelope(&r.body)
            .map_err(|m| ApiError::new(415, "UnsupportedMediaType", m));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
        return Ok(v);
    }
    serde_saphyr::from_slice::<Value>(&r.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

/// An object's `metadata.resourceVersion` ("" when unset).
pub fn rv_of(o: &Value) -> &str {
    o["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}
