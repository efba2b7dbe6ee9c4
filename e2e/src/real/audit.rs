//! kube-apiserver's audit log as a request log: which user wrote what, and when, so the
//! failover suites can tell two operator replicas apart on a real control plane as they do
//! through the in-memory server's per-listener request log.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::reqlog::LoggedRequest;

use super::RealError;

/// Writes only (reads would dwarf them), at Metadata level, once each (at ResponseComplete);
/// not the pods, nodes and ReplicaSets only the system controllers and kwok write.
pub const POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: None
  verbs: [get, list, watch]
- level: None
  resources:
  - group: \"\"
    resources: [pods, pods/status, pods/binding, nodes, nodes/status, endpoints]
  - group: apps
    resources: [replicasets, replicasets/status]
  - group: discovery.k8s.io
    resources: [endpointslices]
- level: Metadata
";

/// The audit log's path under the control plane's directory.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("audit.log")
}

/// Writes [`POLICY`] under `dir` and returns the kube-apiserver flags that use it.
pub fn flags(dir: &Path) -> Result<Vec<String>, RealError> {
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(&policy, POLICY).map_err(|e| RealError::io(&policy, e))?;
    Ok(vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log_path(dir).display()),
        "--audit-log-format=json".into(),
        // Written before the response is sent, so a test reading the log after a request
        // returned finds it.
        "--audit-log-mode=blocking".into(),
        "--audit-log-maxsize=0".into(),
    ])
}

/// Now on the clock of [`read`]'s [`LoggedRequest::at`]: time since the Unix epoch.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Every request in the audit log at `path`, oldest first, as a [`LoggedRequest`]: `client`
/// is the user name, `at` the time the server received it since the Unix epoch (see [`now`]).
pub fn read(path: &Path) -> Result<Vec<LoggedRequest>, RealError> {
    let text = std::fs::read_to_string(path).map_err(|e| RealError::io(path, e))?;
    let mut requests = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse(line).map_err(|reason| RealError::Audit {
                path: path.to_path_buf(),
                line: index + 1,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    requests.sort_by_key(|r| r.at);
    Ok(requests)
}

/// One audit event (a JSON line) as a [`LoggedRequest`].
fn parse(line: &str) -> Result<LoggedRequest, String> {
    let event: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let text = |pointer: &str| event.pointer(pointer).and_then(|v| v.as_str());
    let received = text("/requestReceivedTimestamp").ok_or("no requestReceivedTimestamp")?;
    let at: jiff::Timestamp = received
        .parse()
        .map_err(|e| format!("requestReceivedTimestamp {received:?}: {e}"))?;
    let micros = u64::try_from(at.as_microsecond())
        .map_err(|_| format!("requestReceivedTimestamp {received:?} is before 1970"))?;
    let resource = match (text("/objectRef/resource"), text("/objectRef/subresource")) {
        (Some(resource), Some(sub)) => format!("{resource}/{sub}"),
        (Some(resource), None) => resource.to_owned(),
        (None, _) => String::new(),
    };
    Ok(LoggedRequest {
        at: Duration::from_micros(micros),
        client: text("/user/username").unwrap_or_default().to_owned(),
        verb: text("/verb").ok_or("no verb")?.to_owned(),
        resource,
        name: text("/objectRef/name").unwrap_or_default().to_owned(),
        user_agent: text("/userAgent").unwrap_or_default().to_owned(),
        injected: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LEASE_RENEWAL: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"6f0c","stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/ns/leases/mmf-operator","verb":"update","user":{"username":"system:serviceaccount:ns:replica-a","groups":["system:serviceaccounts"]},"sourceIPs":["127.0.0.1"],"userAgent":"mmf-operator/0.1.0 (leader-election)","objectRef":{"resource":"leases","namespace":"ns","name":"mmf-operator","apiGroup":"coordination.k8s.io","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-12-05T19:40:01.123456Z","stageTimestamp":"2026-12-05T19:40:01.130000Z"}"#;

    #[test]
    fn an_audit_event_becomes_a_logged_request_of_its_user_at_its_receipt_time() {
        let request = parse(LEASE_RENEWAL).unwrap();
        let at: jiff::Timestamp = "2026-12-05T19:40:01.123456Z".parse().unwrap();
        assert_eq!(
            request,
            LoggedRequest {
                at: Duration::from_micros(at.as_microsecond() as u64),
                client: "system:serviceaccount:ns:replica-a".into(),
                verb: "update".into(),
                resource: "leases".into(),
                name: "mmf-operator".into(),
                user_agent: "mmf-operator/0.1.0 (leader-election)".into(),
                injected: None,
            }
        );
        assert!(request.is_write());
    }

    #[test]
    fn a_subresource_is_named_after_its_resource() {
        let status = LEASE_RENEWAL.replace(
            r#""resource":"leases","#,
            r#""resource":"mmfservices","subresource":"status","#,
        );
        assert_eq!(parse(&status).unwrap().resource, "mmfservices/status");
    }

    #[test]
    fn a_line_that_is_not_an_event_says_why() {
        assert_eq!(
            parse(r#"{"verb":"get"}"#).unwrap_err(),
            "no requestReceivedTimestamp"
        );
        assert!(parse("{").unwrap_err().contains("EOF"));
    }
}
