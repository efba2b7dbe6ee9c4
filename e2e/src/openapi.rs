//! Minimal OpenAPI v2/v3 documents: enough for kubectl's server-side field validation probe,
//! its apply patch-type detection, and `kubectl explain` on custom resources.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceInfo};

/// `com.example.v1.Widget` / `io.k8s.api.apps.v1.Deployment`.
pub fn definition_name(r: &ResourceInfo) -> String {
    if r.crd {
        let rev: Vec<&str> = r.group.split('.').rev().collect();
        format!("{}.{}.{}", rev.join("."), r.version, r.kind)
    } else {
        let g = if r.group.is_empty() {
            "core"
        } else {
            r.group.split('.').next().unwrap_or("core")
        };
        format!("io.k8s.api.{g}.{}.{}", r.version, r.kind)
    }
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn object_meta_schema() -> Value {
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "properties": {
            "name": {"type": "string", "description": "Name must be unique within a namespace."},
            "namespace": {"type": "string", "description": "Namespace defines the space within which each name must be unique."},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Map of string keys and values that can be used to organize and categorize objects."},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Annotations is an unstructured key value map stored with a resource."},
            "uid": {"type": "string", "description": "UID is the unique in time and space value for this object."},
            "resourceVersion": {"type": "string", "description": "An opaque value that represents the internal version of this object."},
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state."},
            "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Must be empty before the object is deleted from the registry."},
            "ownerReferences": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}, "description": "List of objects depended by this object."}
        }
    })
}

fn resource_schema(r: &ResourceInfo) -> Value {
    let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
    let mut s = match &r.schema {
        Some(s) => s.clone(),
        None => json!({
            "type": "object",
            "description": format!("{} is a built-in kind served by the mmf-e2e test API server (schema not modelled).", r.kind),
            "x-kubernetes-preserve-unknown-fields": true,
        }),
    };
    if !s["properties"].is_object() {
        s["properties"] = json!({});
    }
    s["properties"]["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
    s["properties"]["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
    s["properties"]["metadata"] = json!({"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}], "description": "Standard object's metadata."});
    s["x-kubernetes-group-version-kind"] = gvk;
    s
}

fn path_base(r: &ResourceInfo) -> String {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    }
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn ops(r: &ResourceInfo) -> (Value, Value) {
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let reference = json!({"$ref": format!("#/components/schemas/{}", definition_name(r))});
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
    let patch_types = json!({
        "application/json-patch+json": {"schema": {"type": "object"}},
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
    });
    // strategic-merge-patch+json is deliberately not advertised: kubectl would then compute
    // patches from these (schema-less) documents. Without it kubectl falls back to its
    // compiled-in types for built-in kinds and to merge patch for custom resources.
    let write_params = json!([
        param("dryRun"),
        param("fieldManager"),
        param("fieldValidation")
    ]);
    let item = json!({
        "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
        "put": {"x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk, "parameters": write_params, "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": ok},
        "patch": {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk, "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")], "requestBody": {"content": patch_types}, "responses": ok},
        "delete": {"x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok},
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
    });
    let coll = json!({
        "get": {"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk, "responses": ok},
        "post": {"x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk, "parameters": write_params, "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": ok},
    });
    (item, coll)
}

/// The OpenAPI v3 document for one group/version (`api/v1`, `apis/apps/v1`).
pub fn v3_document(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let rs = reg.in_group_version(group, version);
    if rs.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    schemas.insert(OBJECT_META.into(), object_meta_schema());
    for r in rs {
        let (item, coll) = ops(&r);
        let base = path_base(&r);
        paths.insert(format!("{base}/{{name}}"), item);
        paths.insert(base, coll);
        schemas.insert(definition_name(&r), resource_schema(&r));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (mmf-e2e test API server)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// FNV-1a, used for the `?hash=` cache key of each v3 document.
pub fn hash(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: the index of group/version documents.
pub fn v3_index(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, vs) in reg.groups() {
        for v in vs {
            let key = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            if let Some(doc) = v3_document(reg, &g, &v) {
                paths.insert(
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&doc))}),
                );
            }
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v2` (JSON only): definitions for every kind, no paths.
pub fn v2_document(reg: &Registry) -> Value {
    let mut defs = serde_json::Map::new();
    for r in &reg.list {
        let mut s = resource_schema(r);
        s["properties"]["metadata"] =
            json!({"description": "Standard object's metadata.", "type": "object"});
        defs.insert(definition_name(r), s);
    }
    json!({"swagger": "2.0", "info": {"title": "Kubernetes (mmf-e2e test API server)", "version": "v1.33.0"}, "paths": {}, "definitions": defs})
}
