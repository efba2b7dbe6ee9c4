//! Server-side apply: field sets, `managedFields` bookkeeping and conflict detection.
//!
//! A simplified structured-merge-diff: a field set is a set of leaf paths. Associative lists
//! (the merge-key table in [`crate::patch`]) are keyed, `finalizers` is a set, other lists are
//! atomic. Metadata ownership covers labels, annotations, finalizers and ownerReferences.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::patch::merge_key;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pe {
    F(String),
    /// Associative list item: merge key and the key's JSON text.
    K(String, String),
    /// Set item: JSON text.
    V(String),
    /// "." marker: the list item itself.
    Dot,
}

pub type Path = Vec<Pe>;
pub type FieldSet = BTreeSet<Path>;

/// Renders a path the way kube-apiserver prints conflicts: `.spec.containers[name="a"].image`.
pub fn path_string(p: &[Pe]) -> String {
    let mut s = String::new();
    for e in p {
        match e {
            Pe::F(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::K(k, v) => s.push_str(&format!("[{k}={v}]")),
            Pe::V(v) => s.push_str(&format!("[={v}]")),
            Pe::Dot => {}
        }
    }
    s
}

/// Leaf paths of an object (apiVersion/kind/most metadata excluded).
pub fn fields_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(mv) = v.get(mk) {
                            walk(
                                mv,
                                mk,
                                &mut vec![Pe::F("metadata".into()), Pe::F(mk.into())],
                                &mut out,
                            );
                        }
                    }
                }
                _ => walk(v, k, &mut vec![Pe::F(k.clone())], &mut out),
            }
        }
    }
    out
}

fn walk(v: &Value, field: &str, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(Pe::F(k.clone()));
                walk(c, k, path, out);
                path.pop();
            }
        }
        Value::Array(items) if field == "finalizers" => {
            for i in items {
                path.push(Pe::V(i.to_string()));
                out.insert(path.clone());
                path.pop();
            }
        }
        Value::Array(items) => match merge_key(field, items) {
            Some(key) if !items.is_empty() && items.iter().all(|i| i.get(key).is_some()) => {
                for i in items {
                    path.push(Pe::K(key.into(), i[key].to_string()));
                    path.push(Pe::Dot);
                    out.insert(path.clone());
                    path.pop();
                    walk(i, "", path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn jt(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_default()
}

/// The value at a path, if present.
pub fn get_path<'a>(obj: &'a Value, p: &[Pe]) -> Option<&'a Value> {
    let mut cur = obj;
    for e in p {
        cur = match e {
            Pe::F(f) => cur.get(f)?,
            Pe::K(k, v) => cur.as_array()?.iter().find(|i| jt(i.get(k)) == *v)?,
            Pe::V(v) => cur.as_array()?.iter().find(|i| i.to_string() == *v)?,
            Pe::Dot => cur,
        };
    }
    Some(cur)
}

/// Removes the value at a path (a list item for `Dot`/`V` paths).
pub fn remove_path(obj: &mut Value, p: &[Pe]) {
    let p: Vec<&Pe> = p.iter().filter(|e| **e != Pe::Dot).collect();
    let Some((last, parent)) = p.split_last() else {
        return;
    };
    let mut cur = obj;
    for e in parent {
        let next = match e {
            Pe::F(f) => cur.get_mut(f.as_str()),
            Pe::K(k, v) => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| jt(i.get(k.as_str())) == *v)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Pe::F(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        Pe::K(k, v) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| jt(i.get(k.as_str())) != *v);
            }
        }
        Pe::V(v) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| i.to_string().as_str() != v.as_str());
            }
        }
        Pe::Dot => {}
    }
}

/// Merges an applied configuration into the live object (maps deep, keyed lists by key).
pub fn merge_applied(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                match l.get_mut(k) {
                    Some(lv) => merge_applied(lv, av, k),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if field == "finalizers" => {
            for x in a {
                if !l.contains(x) {
                    l.push(x.clone());
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match merge_key(field, a) {
            Some(key) if a.iter().all(|i| i.get(key).is_some()) => {
                for item in a {
                    match l.iter_mut().find(|i| i.get(key) == item.get(key)) {
                        Some(li) => merge_applied(li, item, ""),
                        None => l.push(item.clone()),
                    }
                }
            }
            _ => *l = a.clone(),
        },
        (l, a) => *l = a.clone(),
    }
}

/// One `managedFields` entry, decoded.
#[derive(Clone, Debug)]
pub struct Manager {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
    pub time: String,
    pub fields: FieldSet,
}

/// Reads `metadata.managedFields`.
pub fn read_managers(obj: &Value) -> Vec<Manager> {
    let Some(list) = obj["metadata"]["managedFields"].as_array() else {
        return vec![];
    };
    list.iter()
        .map(|e| {
            let mut fields = FieldSet::new();
            decode(&e["fieldsV1"], &mut vec![], &mut fields);
            Manager {
                manager: e["manager"].as_str().unwrap_or_default().into(),
                operation: e["operation"].as_str().unwrap_or("Update").into(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                subresource: e["subresource"].as_str().unwrap_or_default().into(),
                time: e["time"].as_str().unwrap_or_default().into(),
                fields,
            }
        })
        .collect()
}

/// Writes `metadata.managedFields` (dropping managers that own nothing).
pub fn write_managers(obj: &mut Value, managers: &[Manager]) {
    let list: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            let mut e = json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode(&m.fields),
            });
            if !m.subresource.is_empty() {
                e["subresource"] = json!(m.subresource);
            }
            e
        })
        .collect();
    let meta = crate::store::meta_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn encode(fields: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in fields {
        let mut cur = &mut root;
        for e in p {
            let key = match e {
                Pe::F(f) => format!("f:{f}"),
                Pe::K(k, v) => format!("k:{{{}:{v}}}", json!(k)),
                Pe::V(v) => format!("v:{v}"),
                Pe::Dot => ".".into(),
            };
            let entry = cur.entry(key).or_insert_with(|| json!({}));
            cur = match entry.as_object_mut() {
                Some(m) => m,
                None => break,
            };
        }
    }
    Value::Object(root)
}

fn decode(v: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    if m.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (k, c) in m {
        let e = if k == "." {
            Pe::Dot
        } else if let Some(f) = k.strip_prefix("f:") {
            Pe::F(f.into())
        } else if let Some(kv) = k.strip_prefix("k:") {
            match serde_json::from_str::<Map<String, Value>>(kv) {
                Ok(km) => match km.into_iter().next() {
                    Some((kk, vv)) => Pe::K(kk, vv.to_string()),
                    None => continue,
                },
                Err(_) => continue,
            }
        } else if let Some(vv) = k.strip_prefix("v:") {
            match serde_json::from_str::<Value>(vv) {
                Ok(x) => Pe::V(x.to_string()),
                Err(_) => continue,
            }
        } else {
            continue;
        };
        path.push(e);
        decode(c, path, out);
        path.pop();
    }
}

/// How kube-apiserver names a manager in conflict messages.
pub fn describe(m: &Manager) -> String {
    let mut s = format!("{:?}", m.manager);
    if !m.subresource.is_empty() {
        s = format!("{s} with subresource {:?}", m.subresource);
    }
    if m.operation == "Update" {
        s = format!("{s} using {}", m.api_version);
    }
    s
}

/// Result of an apply: the merged object and updated managers, or the conflicts.
pub enum ApplyOutcome {
    Ok(Value),
    Conflicts(Vec<(String, String)>),
}

/// Applies `applied` on top of `live` for `manager`. Returns conflicts unless `force`.
pub fn apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
) -> ApplyOutcome {
    let mut managers = read_managers(live);
    let new_set = fields_of(applied);
    let mut conflicts = Vec::new();
    for m in &managers {
        if m.manager == manager && m.operation == "Apply" && m.subresource == subresource {
            continue;
        }
        for p in m.fields.intersection(&new_set) {
            if p.last() == Some(&Pe::Dot) {
                continue;
            }
            if get_path(live, p) != get_path(applied, p) {
                conflicts.push((describe(m), path_string(p)));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return ApplyOutcome::Conflicts(conflicts);
    }
    let mut obj = live.clone();
    let old_set = managers
        .iter()
        .find(|m| m.manager == manager && m.operation == "Apply" && m.subresource == subresource)
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    // Fields this manager stopped applying and nobody else owns are removed.
    let others: FieldSet = managers
        .iter()
        .filter(|m| {
            !(m.manager == manager && m.operation == "Apply" && m.subresource == subresource)
        })
        .flat_map(|m| m.fields.iter().cloned())
        .collect();
    let mut removed: Vec<&Path> = old_set
        .difference(&new_set)
        .filter(|p| !others.contains(*p))
        .collect();
    // Whole list items first (their key fields are still there to match on), then leaves.
    removed.sort_by_key(|p| (p.last() != Some(&Pe::Dot), std::cmp::Reverse(p.len())));
    for p in removed {
        remove_path(&mut obj, p);
    }
    merge_applied(&mut obj, applied, "");
    if force {
        for m in managers.iter_mut() {
            if !(m.manager == manager && m.operation == "Apply" && m.subresource == subresource) {
                m.fields.retain(|p| {
                    !(new_set.contains(p) && get_path(live, p) != get_path(applied, p))
                });
            }
        }
    }
    let now = crate::store::now_rfc3339();
    match managers
        .iter_mut()
        .find(|m| m.manager == manager && m.operation == "Apply" && m.subresource == subresource)
    {
        Some(m) => {
            m.fields = new_set;
            m.time = now;
            m.api_version = api_version.into();
        }
        None => managers.push(Manager {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: api_version.into(),
            subresource: subresource.into(),
            time: now,
            fields: new_set,
        }),
    }
    prune_missing(&obj, &mut managers);
    write_managers(&mut obj, &managers);
    ApplyOutcome::Ok(obj)
}

/// Records an Update-operation write by `manager` (create/update/patch).
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
) {
    let mut managers = match old {
        Some(o) => read_managers(o),
        None => read_managers(new),
    };
    let new_fields = fields_of(new);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| old.is_none_or(|o| get_path(o, p) != get_path(new, p)))
        .cloned()
        .collect();
    if !changed.is_empty() && !manager.is_empty() {
        for m in managers.iter_mut() {
            if !(m.manager == manager && m.operation == "Update" && m.subresource == subresource) {
                m.fields.retain(|p| !changed.contains(p));
            }
        }
        let now = crate::store::now_rfc3339();
        match managers.iter_mut().find(|m| {
            m.manager == manager && m.operation == "Update" && m.subresource == subresource
        }) {
            Some(m) => {
                m.fields.extend(changed);
                m.time = now;
            }
            None => managers.push(Manager {
                manager: manager.into(),
                operation: "Update".into(),
                api_version: api_version.into(),
                subresource: subresource.into(),
                time: now,
                fields: changed,
            }),
        }
    }
    prune_missing(new, &mut managers);
    write_managers(new, &managers);
}

fn prune_missing(obj: &Value, managers: &mut [Manager]) {
    for m in managers.iter_mut() {
        m.fields.retain(|p| get_path(obj, p).is_some());
    }
}

/// Stable ordering helper so callers can group conflicts by manager.
pub fn group_conflicts(c: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (mgr, p) in c {
        m.entry(mgr.clone()).or_default().push(p.clone());
    }
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn second_manager_conflicts_on_a_different_value_unless_forced() {
        let live =
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"1"}});
        let ApplyOutcome::Ok(live) =
            apply(&live, &json!({"data":{"a":"1"}}), "one", "v1", "", false)
        else {
            panic!()
        };
        match apply(&live, &json!({"data":{"a":"2"}}), "two", "v1", "", false) {
            ApplyOutcome::Conflicts(c) => {
                assert_eq!(c, vec![("\"one\"".to_string(), ".data.a".to_string())])
            }
            ApplyOutcome::Ok(_) => panic!("expected conflict"),
        }
        let ApplyOutcome::Ok(o) = apply(&live, &json!({"data":{"a":"2"}}), "two", "v1", "", true)
        else {
            panic!()
        };
        assert_eq!(o["data"]["a"], "2");
        assert_eq!(o["metadata"]["managedFields"].as_array().unwrap().len(), 1);
    }
}

#[cfg(test)]
mod status_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_manager_applying_spec_and_status_keeps_both_and_drops_what_it_stops_applying() {
        let live = json!({"apiVersion":"v1","kind":"X","metadata":{"name":"x"}});
        let spec = json!({"spec":{"a":1}});
        let ApplyOutcome::Ok(live) = apply(&live, &spec, "op", "v1", "", false) else {
            panic!()
        };
        let two = json!({"status":{"conditions":[{"type":"Ready","status":"True"},{"type":"Degraded","status":"False"}]}});
        let ApplyOutcome::Ok(live) = apply(&live, &two, "op", "v1", "status", false) else {
            panic!()
        };
        let one = json!({"status":{"conditions":[{"type":"Ready","status":"True"}]}});
        let ApplyOutcome::Ok(live) = apply(&live, &one, "op", "v1", "status", false) else {
            panic!()
        };
        assert_eq!(live["spec"], json!({"a":1}));
        assert_eq!(
            live["status"]["conditions"],
            json!([{"type":"Ready","status":"True"}])
        );
    }
}
