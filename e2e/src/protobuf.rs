//! Decoding of Kubernetes protobuf request bodies for the few kinds kubectl's imperative
//! generators send that way (`kubectl create namespace|configmap|secret|serviceaccount|deployment`;
//! for Deployments only the fields those generators set: name, image, command, args, ports, env).
//! Responses are always JSON (clients accept it); other protobuf bodies get 415.

use base64::Engine;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum F {
    Str,
    Bytes,
    Int,
    Bool,
    Msg(&'static [(u64, &'static str, F)]),
    RepStr,
    RepMsg(&'static [(u64, &'static str, F)]),
    MapStr,
    MapBytes,
}

const OWNER_REF: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];
const OBJECT_META: &[(u64, &str, F)] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];
const LOCAL_REF: &[(u64, &str, F)] = &[(1, "name", F::Str)];
const OBJECT_REF: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (2, "namespace", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
];
const CONFIG_MAP: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStr),
    (3, "binaryData", F::MapBytes),
    (4, "immutable", F::Bool),
];
const SECRET: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];
const NS_SPEC: &[(u64, &str, F)] = &[(1, "finalizers", F::RepStr)];
const NS_STATUS: &[(u64, &str, F)] = &[(1, "phase", F::Str)];
const NAMESPACE: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(NS_SPEC)),
    (3, "status", F::Msg(NS_STATUS)),
];
const SERVICE_ACCOUNT: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "secrets", F::RepMsg(OBJECT_REF)),
    (3, "imagePullSecrets", F::RepMsg(LOCAL_REF)),
    (4, "automountServiceAccountToken", F::Bool),
];
const LABEL_SELECTOR: &[(u64, &str, F)] = &[(1, "matchLabels", F::MapStr)];
const CONTAINER_PORT: &[(u64, &str, F)] = &[
    (1, "name", F::Str),
    (2, "hostPort", F::Int),
    (3, "containerPort", F::Int),
    (4, "protocol", F::Str),
    (5, "hostIP", F::Str),
];
const ENV_VAR: &[(u64, &str, F)] = &[(1, "name", F::Str), (2, "value", F::Str)];
const EMPTY: &[(u64, &str, F)] = &[];
const CONTAINER: &[(u64, &str, F)] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::RepStr),
    (4, "args", F::RepStr),
    (5, "workingDir", F::Str),
    (6, "ports", F::RepMsg(CONTAINER_PORT)),
    (7, "env", F::RepMsg(ENV_VAR)),
    (8, "resources", F::Msg(EMPTY)),
    (13, "terminationMessagePath", F::Str),
    (14, "imagePullPolicy", F::Str),
    (20, "terminationMessagePolicy", F::Str),
];
const POD_SPEC: &[(u64, &str, F)] = &[
    (2, "containers", F::RepMsg(CONTAINER)),
    (3, "restartPolicy", F::Str),
    (6, "dnsPolicy", F::Str),
    (7, "nodeSelector", F::MapStr),
    (8, "serviceAccountName", F::Str),
    (19, "schedulerName", F::Str),
    (20, "initContainers", F::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(POD_SPEC)),
];
const STRATEGY: &[(u64, &str, F)] = &[(1, "type", F::Str)];
const DEPLOYMENT_SPEC: &[(u64, &str, F)] = &[
    (1, "replicas", F::Int),
    (2, "selector", F::Msg(LABEL_SELECTOR)),
    (3, "template", F::Msg(POD_TEMPLATE)),
    (4, "strategy", F::Msg(STRATEGY)),
    (5, "minReadySeconds", F::Int),
    (6, "revisionHistoryLimit", F::Int),
    (7, "paused", F::Bool),
    (9, "progressDeadlineSeconds", F::Int),
];
const DEPLOYMENT: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(DEPLOYMENT_SPEC)),
];
const UNKNOWN: &[(u64, &str, F)] = &[
    (
        1,
        "typeMeta",
        F::Msg(&[(1, "apiVersion", F::Str), (2, "kind", F::Str)]),
    ),
    (2, "raw", F::Bytes),
];

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn skip(&mut self, wire: u64) -> Option<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => {
                self.i += 8;
                Some(())
            }
            2 => self.bytes().map(|_| ()),
            5 => {
                self.i += 4;
                Some(())
            }
            _ => None,
        }
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut r = Reader { b, i: 0 };
    let (mut k, mut v) = (String::new(), json!(""));
    while r.i < b.len() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => k = String::from_utf8_lossy(r.bytes()?).into_owned(),
            (2, 2) => {
                let raw = r.bytes()?;
                v = if bytes_value {
                    json!(b64(raw))
                } else {
                    json!(String::from_utf8_lossy(raw))
                };
            }
            (_, w) => r.skip(w)?,
        }
    }
    Some((k, v))
}

fn decode(b: &[u8], schema: &[(u64, &str, F)]) -> Option<Value> {
    let mut out = Map::new();
    let mut r = Reader { b, i: 0 };
    while r.i < b.len() {
        let tag = r.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == num) else {
            r.skip(wire)?;
            continue;
        };
        let name = name.to_string();
        match kind {
            F::Str => {
                let v = String::from_utf8_lossy(r.bytes()?).into_owned();
                if !v.is_empty() {
                    out.insert(name, json!(v));
                }
            }
            F::Bytes => {
                out.insert(name, json!(b64(r.bytes()?)));
            }
            F::Int => {
                // Go omits zero non-pointer ints from JSON; `replicas` is a pointer (0 is meaningful).
                let v = r.varint()? as i64 as i32;
                if v != 0 || name == "replicas" {
                    out.insert(name, json!(v));
                }
            }
            F::Bool => {
                out.insert(name, json!(r.varint()? != 0));
            }
            F::Msg(s) => {
                out.insert(name, decode(r.bytes()?, s)?);
            }
            F::RepStr => {
                let v = json!(String::from_utf8_lossy(r.bytes()?));
                push(&mut out, name, v);
            }
            F::RepMsg(s) => {
                let v = decode(r.bytes()?, s)?;
                push(&mut out, name, v);
            }
            F::MapStr | F::MapBytes => {
                let (k, v) = map_entry(r.bytes()?, matches!(kind, F::MapBytes))?;
                let e = out.entry(name).or_insert_with(|| json!({}));
                e[k] = v;
            }
        }
    }
    Some(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    match out.entry(name).or_insert_with(|| json!([])) {
        Value::Array(a) => a.push(v),
        other => *other = json!([v]),
    }
}

/// Decodes a `k8s\0`-prefixed protobuf envelope into JSON, for the supported kinds.
pub fn decode_envelope(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing protobuf magic prefix")?;
    let env = decode(inner, UNKNOWN).ok_or("malformed protobuf envelope")?;
    let kind = env["typeMeta"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let api_version = env["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let raw = env["raw"]
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default();
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        _ => {
            return Err(format!(
                "protobuf bodies for {api_version} {kind} are not supported by the mmf-e2e test API server; send JSON"
            ));
        }
    };
    let mut obj = decode(&raw, schema).ok_or("malformed protobuf object")?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn decodes_a_configmap_envelope() {
        // TypeMeta{apiVersion:"v1",kind:"ConfigMap"}, raw = ConfigMap{metadata{name:"c"}, data{"a":"b"}}
        let meta = [0x0a, 0x01, b'c'];
        let entry = [0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        let mut raw = vec![0x0a, meta.len() as u8];
        raw.extend(meta);
        raw.extend([0x12, entry.len() as u8]);
        raw.extend(entry);
        let tm = [
            0x0a, 0x02, b'v', b'1', 0x12, 0x09, b'C', b'o', b'n', b'f', b'i', b'g', b'M', b'a',
            b'p',
        ];
        let mut body = b"k8s\0".to_vec();
        body.extend([0x0a, tm.len() as u8]);
        body.extend(tm);
        body.extend([0x12, raw.len() as u8]);
        body.extend(raw);
        let v = super::decode_envelope(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}})
        );
    }
}
