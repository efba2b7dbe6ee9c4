//! Deployment status simulator: there are no kubelets, so after a configurable delay the
//! server itself reports a Deployment's replicas as updated, ready and available.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::controls::Readiness;
use crate::shared::Shared;
use crate::store::{EventType, now_rfc3339};

fn key() -> (String, String) {
    ("apps".into(), "deployments".into())
}

fn status(obj: &Value, ready: bool) -> Value {
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = obj["metadata"]["generation"].clone();
    let now = now_rfc3339();
    let prev = |t: &str| -> Option<Value> {
        obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
    };
    let cond = |t: &str, s: &str, reason: &str, msg: String| {
        let ltt = prev(t)
            .filter(|c| c["status"] == s)
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or(json!(now));
        json!({"type": t, "status": s, "reason": reason, "message": msg, "lastUpdateTime": now, "lastTransitionTime": ltt})
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if ready {
        json!({
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into()),
                cond("Progressing", "True", "NewReplicaSetAvailable", format!("ReplicaSet \"{name}-7d4b9c8f5\" has successfully progressed.")),
            ],
        })
    } else {
        json!({
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "unavailableReplicas": replicas,
            "conditions": [
                cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into()),
                cond("Progressing", "True", "ReplicaSetUpdated", format!("ReplicaSet \"{name}-7d4b9c8f5\" is progressing.")),
            ],
        })
    }
}

/// Writes the status for the deployment at generation `generation`, if it still is at that generation.
fn write(shared: &Shared, ns: &str, name: &str, generation: &Value, ready: bool) {
    let mut st = shared.state();
    let Some(cur) = st.get(&key(), ns, name) else {
        return;
    };
    if cur["metadata"]["generation"] != *generation
        || !cur["metadata"]["deletionTimestamp"].is_null()
    {
        return;
    }
    let mut o = (*cur).clone();
    let s = status(&o, ready);
    if o["status"] == s {
        return;
    }
    o["status"] = s;
    st.put(&key(), o, EventType::Modified);
}

/// Called after a Deployment was created or its spec changed.
pub fn on_write(shared: &Arc<Shared>, obj: &Value) {
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let generation = obj["metadata"]["generation"].clone();
    if obj["status"]["observedGeneration"] == generation {
        return;
    }
    let readiness = shared.readiness();
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        write(&shared, &ns, &name, &generation, false);
        if let Readiness::After(d) = readiness {
            tokio::time::sleep(d).await;
            write(&shared, &ns, &name, &generation, true);
        }
    });
}
