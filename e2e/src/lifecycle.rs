//! Object lifecycle rules: what the server sets on create, what an update may change
//! (status separation, generation), deletion with finalizers, and built-in defaulting.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, TypeKey};
use crate::schema;
use crate::status::{ApiError, ApiResult};
use crate::store::{EventType, State, meta_mut, now_rfc3339};

/// How unknown fields in custom resources are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("Ignore") => Self::Ignore,
            Some("Strict") => Self::Strict,
            _ => Self::Warn,
        }
    }
}

/// Built-in defaulting for the kinds whose defaults clients observe. `cluster_ip` is the
/// address to allocate to a Service that has none.
fn builtin_defaults(info: &ResourceInfo, obj: &mut Value, cluster_ip: Value) {
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            if obj["status"]["phase"].is_null() {
                obj["status"]["phase"] = json!("Active");
            }
        }
        ("", "Secret") => {
            if obj["type"].is_null() {
                obj["type"] = json!("Opaque");
            }
            if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
                use base64::Engine;
                for (k, v) in sd {
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    obj["data"][k] = json!(enc);
                }
                if let Some(m) = obj.as_object_mut() {
                    m.remove("stringData");
                }
            }
        }
        ("", "Service") => {
            if obj["spec"]["type"].is_null() {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            if obj["spec"]["clusterIP"].is_null() && obj["spec"]["type"] != "ExternalName" {
                obj["spec"]["clusterIP"] = cluster_ip;
                obj["spec"]["clusterIPs"] = json!([obj["spec"]["clusterIP"].clone()]);
            }
            if obj["spec"]["sessionAffinity"].is_null() {
                obj["spec"]["sessionAffinity"] = json!("None");
            }
            if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
                for p in ports {
                    if p["protocol"].is_null() {
                        p["protocol"] = json!("TCP");
                    }
                    if p["targetPort"].is_null() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
        }
        ("apps", "Deployment") => {
            let spec = &mut obj["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = json!(1);
            }
            if spec["revisionHistoryLimit"].is_null() {
                spec["revisionHistoryLimit"] = json!(10);
            }
            if spec["progressDeadlineSeconds"].is_null() {
                spec["progressDeadlineSeconds"] = json!(600);
            }
            if spec["strategy"].is_null() || spec["strategy"] == json!({}) {
                spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
            }
            // Container ports default to TCP, as in the Pod template defaulting of kube-apiserver.
            for list in ["containers", "initContainers"] {
                let Some(cs) = spec["template"]["spec"][list].as_array_mut() else {
                    continue;
                };
                for p in cs
                    .iter_mut()
                    .filter_map(|c| c["ports"].as_array_mut())
                    .flatten()
                {
                    if p["protocol"].is_null() {
                        p["protocol"] = json!("TCP");
                    }
                }
            }
        }
        _ => {}
    }
}

/// CRD defaulting, pruning and validation; returns warnings (Warn mode) or an error.
pub fn check_custom(
    info: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    fv: FieldValidation,
) -> ApiResult<Vec<String>> {
    let Some(s) = &info.schema else {
        return Ok(vec![]);
    };
    schema::apply_defaults(s, obj);
    let mut unknown = Vec::new();
    schema::prune(s, obj, "", true, &mut unknown);
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match fv {
            FieldValidation::Strict => {
                let msgs: Vec<String> = unknown
                    .iter()
                    .map(|u| format!("unknown field \"{u}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    msgs.join(", "),
                    kind = info.kind,
                    v = info.version
                )));
            }
            FieldValidation::Warn => {
                warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")))
            }
            FieldValidation::Ignore => {}
        }
    }
    let mut causes = Vec::new();
    schema::validate(s, obj, "", &mut causes);
    if causes.is_empty() {
        causes = schema::cel_causes(s, obj, old);
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(info, &name, &causes));
    }
    Ok(warnings)
}

/// Prepares a new object for creation. Checks namespace, fills server-set metadata.
pub fn prepare_create(
    st: &mut State,
    info: &ResourceInfo,
    ns: Option<&str>,
    mut obj: Value,
    fv: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was not an object",
        ));
    }
    obj["apiVersion"] = json!(info.api_version());
    obj["kind"] = json!(info.kind);
    let meta = meta_mut(&mut obj);
    if let Some(ns) = ns {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    let has_name = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) => {
                let suffix: String = st
                    .new_uid()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .rev()
                    .take(5)
                    .collect();
                meta.insert("name".into(), json!(format!("{prefix}{suffix}")));
            }
            None => {
                return Err(ApiError::invalid(
                    info,
                    "",
                    &[(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        }
    }
    let uid = st.new_uid();
    let meta = meta_mut(&mut obj);
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(k);
    }
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    if let Some(ns) = ns {
        let key: TypeKey = (String::new(), "namespaces".into());
        match st.get(&key, "", ns) {
            None => {
                let mut e =
                    ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"));
                e.details = json!({"name": ns, "kind": "namespaces"});
                return Err(e);
            }
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        info.qualified(),
                        obj["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                ));
            }
            _ => {}
        }
    }
    let n = st.rv;
    builtin_defaults(
        info,
        &mut obj,
        json!(format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 1)),
    );
    let warnings = check_custom(info, &mut obj, None, fv)?;
    if info.kind == "CustomResourceDefinition" && info.group == "apiextensions.k8s.io" {
        crd_status(&mut obj);
    }
    Ok((obj, warnings))
}

fn crd_status(obj: &mut Value) {
    let now = now_rfc3339();
    obj["status"] = json!({
        "acceptedNames": obj["spec"]["names"].clone(),
        "storedVersions": obj["spec"]["versions"].as_array().map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
}

/// Content that counts for `generation`: everything but metadata (and status when it is a subresource).
fn spec_part(info: &ResourceInfo, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        if info.status || !info.crd {
            m.remove("status");
        }
    }
    v
}

/// Merges an incoming full object (`new`) over the stored one under update rules.
/// Returns `None` when nothing changed (no write, no new resourceVersion).
pub fn prepare_update(
    info: &ResourceInfo,
    old: &Value,
    mut new: Value,
    sub: Option<&str>,
    fv: FieldValidation,
) -> ApiResult<(Option<Value>, Vec<String>)> {
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was not an object",
        ));
    }
    new["apiVersion"] = json!(info.api_version());
    new["kind"] = json!(info.kind);
    if sub == Some("status") {
        let status = new["status"].clone();
        // Server-side apply to /status records its ownership in the incoming managedFields.
        let managed = new["metadata"]["managedFields"].clone();
        new = old.clone();
        new["status"] = status;
        if !managed.is_null() {
            new["metadata"]["managedFields"] = managed;
        }
    } else if info.status {
        new["status"] = old["status"].clone();
        if old.get("status").is_none()
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
    }
    {
        let om = &old["metadata"];
        let meta = meta_mut(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "generation",
        ] {
            match om.get(k) {
                Some(v) => {
                    meta.insert(k.into(), v.clone());
                }
                None => {
                    meta.remove(k);
                }
            }
        }
    }
    builtin_defaults(info, &mut new, old["spec"]["clusterIP"].clone());
    let warnings = if sub == Some("status") {
        vec![]
    } else {
        check_custom(info, &mut new, Some(old), fv)?
    };
    if spec_part(info, old) != spec_part(info, &new) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        new["metadata"]["generation"] = json!(g);
    }
    if info.kind == "CustomResourceDefinition" && info.group == "apiextensions.k8s.io" {
        new["status"] = old["status"].clone();
        crd_status(&mut new);
        new["status"]["conditions"] = old["status"]["conditions"].clone();
    }
    let mut a = old.clone();
    let mut b = new.clone();
    for o in [&mut a, &mut b] {
        let m = meta_mut(o);
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    if a == b {
        return Ok((None, warnings));
    }
    Ok((Some(new), warnings))
}

/// Whether a stored object should now disappear (deleting and no finalizers left).
pub fn ready_to_vanish(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
        && obj["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
        && obj["spec"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty() || obj["kind"] != "Namespace")
}

/// Deletes an object honouring finalizers and the propagation policy. Returns the object as
/// last seen (with deletionTimestamp if it must wait) and whether it is gone.
pub fn delete_object(
    st: &mut State,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    policy: &str,
) -> ApiResult<(Arc<Value>, bool)> {
    let key = info.key();
    let Some(cur) = st.get(&key, ns, name) else {
        return Err(ApiError::not_found(info, name));
    };
    let mut obj = (*cur).clone();
    let is_ns = info.group.is_empty() && info.plural == "namespaces";
    let mut changed = false;
    if obj["metadata"]["deletionTimestamp"].is_null() {
        obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        changed = true;
    }
    let extra = match policy {
        "Foreground" => Some("foregroundDeletion"),
        "Orphan" => Some("orphan"),
        _ => None,
    };
    if let Some(f) = extra {
        let fins = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !fins.iter().any(|x| x == f) {
            let mut fins = fins;
            fins.push(json!(f));
            obj["metadata"]["finalizers"] = json!(fins);
            changed = true;
        }
    }
    if is_ns && obj["status"]["phase"] != "Terminating" {
        obj["status"]["phase"] = json!("Terminating");
        changed = true;
    }
    if !is_ns && ready_to_vanish(&obj) {
        let gone = st.remove(&key, ns, name).unwrap_or(cur);
        after_removal(st, info, &gone);
        return Ok((gone, true));
    }
    if changed {
        let stored = st.put(&key, obj, EventType::Modified);
        return Ok((stored, false));
    }
    Ok((cur, false))
}

/// Side effects of an object vanishing (CRDs stop serving and lose their objects).
pub fn after_removal(st: &mut State, info: &ResourceInfo, obj: &Value) {
    if info.kind == "CustomResourceDefinition" && info.group == "apiextensions.k8s.io" {
        let group = obj["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = obj["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        st.registry.remove_crd(&group, &plural);
        let key = (group, plural);
        let names: Vec<(String, String)> = st
            .types
            .get(&key)
            .map(|t| t.objects.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, n) in names {
            st.remove(&key, &ns, &n);
        }
    }
}
