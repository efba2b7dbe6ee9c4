//! Garbage collection: ownerReference cascades (background, foreground, orphan), finalizer
//! bookkeeping for those policies, and namespace termination.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::lifecycle::{after_removal, delete_object, ready_to_vanish};
use crate::resources::TypeKey;
use crate::shared::Shared;
use crate::store::{EventType, State};

/// Runs a GC pass shortly after every delete (and every second, as a safety net).
pub async fn run(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.gc_notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut st = shared.state();
        for _ in 0..100 {
            if !pass(&mut st) {
                break;
            }
        }
    }
}

fn info_for(st: &State, key: &TypeKey) -> Option<Arc<crate::resources::ResourceInfo>> {
    st.registry
        .list
        .iter()
        .find(|r| r.group == key.0 && r.plural == key.1)
        .cloned()
}

fn has_fin(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == f))
}

fn ns_name(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// One sweep; returns whether anything changed.
pub fn pass(st: &mut State) -> bool {
    let all = st.all_objects();
    let mut by_uid: HashMap<String, Arc<Value>> = HashMap::new();
    for (_, o) in &all {
        if let Some(u) = o["metadata"]["uid"].as_str() {
            by_uid.insert(u.to_string(), o.clone());
        }
    }
    let mut changed = false;
    let mut has_dependents: HashSet<String> = HashSet::new();
    let mut ns_has_objects: HashSet<String> = HashSet::new();
    for (key, obj) in &all {
        let (ns, name) = ns_name(obj);
        if !ns.is_empty() {
            ns_has_objects.insert(ns.clone());
        }
        let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if refs.is_empty() {
            continue;
        }
        let uid_of = |r: &Value| r["uid"].as_str().unwrap_or_default().to_string();
        for r in refs {
            if by_uid.contains_key(&uid_of(r)) {
                has_dependents.insert(uid_of(r));
            }
        }
        let orphaning: Vec<String> = refs
            .iter()
            .map(uid_of)
            .filter(|u| {
                by_uid.get(u).is_some_and(|o| {
                    !o["metadata"]["deletionTimestamp"].is_null() && has_fin(o, "orphan")
                })
            })
            .collect();
        let alive: Vec<&Value> = refs
            .iter()
            .filter(|r| by_uid.contains_key(&uid_of(r)))
            .collect();
        let foreground = alive.iter().any(|r| {
            by_uid.get(&uid_of(r)).is_some_and(|o| {
                !o["metadata"]["deletionTimestamp"].is_null() && has_fin(o, "foregroundDeletion")
            })
        });
        let Some(info) = info_for(st, key) else {
            continue;
        };
        if !orphaning.is_empty() || (alive.len() < refs.len() && !alive.is_empty()) {
            let keep: Vec<Value> = refs
                .iter()
                .filter(|r| by_uid.contains_key(&uid_of(r)) && !orphaning.contains(&uid_of(r)))
                .cloned()
                .collect();
            let mut o = (**obj).clone();
            if keep.is_empty() {
                if let Some(m) = o["metadata"].as_object_mut() {
                    m.remove("ownerReferences");
                }
            } else {
                o["metadata"]["ownerReferences"] = json!(keep);
            }
            st.put(key, o, EventType::Modified);
            changed = true;
        } else if (alive.is_empty() || foreground) && obj["metadata"]["deletionTimestamp"].is_null()
        {
            let policy = if foreground {
                "Foreground"
            } else {
                "Background"
            };
            if delete_object(st, &info, &ns, &name, policy).is_ok() {
                changed = true;
            }
        }
    }
    for (key, obj) in &all {
        if obj["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let (ns, name) = ns_name(obj);
        let Some(cur) = st.get(key, &ns, &name) else {
            continue;
        };
        let uid = cur["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut o = (*cur).clone();
        let mut touched = false;
        for f in ["foregroundDeletion", "orphan"] {
            if has_fin(&o, f) && !has_dependents.contains(&uid) {
                if let Some(a) = o["metadata"]["finalizers"].as_array_mut() {
                    a.retain(|x| x != f);
                }
                touched = true;
            }
        }
        let is_ns = key.0.is_empty() && key.1 == "namespaces";
        if is_ns {
            if ns_has_objects.contains(&name) {
                let victims: Vec<(TypeKey, Arc<Value>)> = all
                    .iter()
                    .filter(|(_, x)| {
                        x["metadata"]["namespace"] == name.as_str()
                            && x["metadata"]["deletionTimestamp"].is_null()
                    })
                    .cloned()
                    .collect();
                for (k, v) in victims {
                    if let Some(info) = info_for(st, &k) {
                        let (vns, vn) = ns_name(&v);
                        if delete_object(st, &info, &vns, &vn, "Background").is_ok() {
                            changed = true;
                        }
                    }
                }
            } else if o["spec"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                o["spec"]["finalizers"] = json!([]);
                touched = true;
            }
        }
        let vanish = if is_ns {
            o["spec"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty())
                && o["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|a| a.is_empty())
        } else {
            ready_to_vanish(&o)
        };
        if vanish {
            if let Some(gone) = st.remove(key, &ns, &name)
                && let Some(info) = info_for(st, key)
            {
                after_removal(st, &info, &gone);
            }
            changed = true;
        } else if touched {
            st.put(key, o, EventType::Modified);
            changed = true;
        }
    }
    changed
}
