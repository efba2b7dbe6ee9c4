//! `as=Table` responses so `kubectl get` prints printer columns.

use serde_json::{Value, json};

use crate::resources::ResourceInfo;
use crate::selectors::json_path;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

pub fn column_definitions(info: &ResourceInfo) -> Vec<Value> {
    let mut cols = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace."
    })];
    for c in &info.columns {
        cols.push(json!({
            "name": c.name, "type": c.type_, "format": c.format,
            "description": c.description, "priority": c.priority,
        }));
    }
    cols
}

/// One row for one object, with the object's metadata (includeObject=Metadata).
pub fn row(info: &ResourceInfo, obj: &Value, include: &str) -> Value {
    let mut cells = vec![obj["metadata"]["name"].clone()];
    for c in &info.columns {
        cells.push(cell(c.type_.as_str(), &c.json_path, obj));
    }
    let object = match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            let mut meta = obj["metadata"].clone();
            if let Some(m) = meta.as_object_mut() {
                m.remove("managedFields");
            }
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
        }
    };
    json!({"cells": cells, "object": object})
}

fn cell(ty: &str, path: &str, obj: &Value) -> Value {
    match path {
        "!data" => {
            let n = obj["data"].as_object().map(|m| m.len()).unwrap_or(0)
                + obj["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
            return json!(n);
        }
        "!webhooks" => return json!(obj["webhooks"].as_array().map(|a| a.len()).unwrap_or(0)),
        "!ready" => {
            let ready = obj["status"]["readyReplicas"].as_i64().unwrap_or(0);
            let want = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            return json!(format!("{ready}/{want}"));
        }
        _ => {}
    }
    let found = json_path(obj, path);
    let Some(v) = found.first() else {
        return if ty == "date" {
            json!("<unknown>")
        } else {
            Value::Null
        };
    };
    if ty == "date" {
        return match v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
            Some(t) => json!(human_duration(
                jiff::Timestamp::now().as_second() - t.as_second()
            )),
            None => json!("<invalid>"),
        };
    }
    match (ty, v) {
        ("string", Value::String(_)) => (*v).clone(),
        ("string", Value::Null) => Value::Null,
        ("string", other) => json!(other.to_string()),
        _ => (*v).clone(),
    }
}

/// Port of apimachinery's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = (secs / 60) % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

/// A full Table for a list of objects.
pub fn table(
    info: &ResourceInfo,
    objs: &[Value],
    rv: &str,
    cont: Option<&str>,
    include: &str,
    headers: bool,
) -> Value {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if headers { column_definitions(info) } else { vec![] },
        "rows": objs.iter().map(|o| row(info, o, include)).collect::<Vec<_>>(),
    })
}
