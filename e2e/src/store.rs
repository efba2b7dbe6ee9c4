//! In-memory object storage with one cluster-wide resourceVersion counter and a bounded
//! per-type event log that backs watches (events older than the log answer 410 Gone).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::resources::{Registry, TypeKey};

/// Watch event type, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub object: Arc<Value>,
}

/// Objects and event history of one resource type.
pub struct TypeStore {
    pub objects: BTreeMap<(String, String), Arc<Value>>,
    pub log: VecDeque<Arc<Event>>,
    /// A watch may resume from any rv >= `compacted`; older ones get 410 Gone.
    pub compacted: u64,
    pub tx: broadcast::Sender<Arc<Event>>,
}

impl TypeStore {
    fn new(rv: u64) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Self {
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            compacted: rv,
            tx,
        }
    }
}

/// The whole mutable state, guarded by one mutex in [`crate::shared::Shared`].
pub struct State {
    pub registry: Registry,
    pub rv: u64,
    pub types: HashMap<TypeKey, TypeStore>,
    pub log_capacity: usize,
    uid_counter: u64,
    uid_seed: u64,
}

impl State {
    pub fn new(log_capacity: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        Self {
            registry: Registry::builtin(),
            rv: 1,
            types: HashMap::new(),
            log_capacity,
            uid_counter: 0,
            uid_seed: seed,
        }
    }

    pub fn ty(&mut self, key: &TypeKey) -> &mut TypeStore {
        self.types
            .entry(key.clone())
            .or_insert_with(|| TypeStore::new(0))
    }

    pub fn get(&self, key: &TypeKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.types
            .get(key)?
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let mut x = self.uid_seed ^ self.uid_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let a = x;
        let b = self.uid_counter;
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            (b >> 48) as u16 & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    /// Stores `obj` (stamping a fresh resourceVersion) and records the event.
    pub fn put(&mut self, key: &TypeKey, mut obj: Value, kind: EventType) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let obj = Arc::new(obj);
        let cap = self.log_capacity;
        let t = self.ty(key);
        t.objects.insert((ns, name), obj.clone());
        push_event(
            t,
            cap,
            Event {
                rv,
                kind,
                object: obj.clone(),
            },
        );
        obj
    }

    /// Removes an object, emitting DELETED with a fresh resourceVersion.
    pub fn remove(&mut self, key: &TypeKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        let t = self.types.get_mut(key)?;
        let old = t.objects.remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        let mut obj = (*old).clone();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let obj = Arc::new(obj);
        let cap = self.log_capacity;
        let t = self.ty(key);
        push_event(
            t,
            cap,
            Event {
                rv,
                kind: EventType::Deleted,
                object: obj.clone(),
            },
        );
        Some(obj)
    }

    /// Forgets all history so that every resumed watch/list continue gets 410 Gone.
    pub fn compact_all(&mut self) {
        let rv = self.rv;
        for t in self.types.values_mut() {
            t.log.clear();
            t.compacted = rv;
        }
    }

    /// Every stored object, for GC and namespace cleanup.
    pub fn all_objects(&self) -> Vec<(TypeKey, Arc<Value>)> {
        let mut out = Vec::new();
        for (k, t) in &self.types {
            for o in t.objects.values() {
                out.push((k.clone(), o.clone()));
            }
        }
        out
    }
}

fn push_event(t: &mut TypeStore, cap: usize, ev: Event) {
    let ev = Arc::new(ev);
    t.log.push_back(ev.clone());
    while t.log.len() > cap {
        if let Some(old) = t.log.pop_front() {
            t.compacted = old.rv;
        }
    }
    let _ = t.tx.send(ev);
}

/// RFC 3339 "now", second precision, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The `metadata` map of an object (created if missing).
pub fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable_map(),
    }
}

fn unreachable_map() -> &'static mut serde_json::Map<String, Value> {
    // metadata was just set to an object above; this path cannot be taken.
    Box::leak(Box::default())
}
