//! The audit trail and the plugin metrics of `mmf run` end to end (issue 18): the real binary
//! with `--audit-log FILE`, driven with kubectl against the in-memory test API server (or a
//! real cluster named by `MMF_E2E_KUBECONFIG`), checked in the audit file and on `/metrics`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::real::DeleteOnDrop;
use common::{Cluster, Operator, eventually, repo, require_tool};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Every audit record in `path` whose `operation` is `operation`.
fn records(path: &Path, operation: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["operation"] == operation)
        .collect()
}

/// Waits until `path` holds `count` records of `operation` and returns them.
fn wait_records(path: &Path, operation: &str, count: usize, operator: &Operator) -> Vec<Value> {
    let reached = eventually(Duration::from_secs(45), || {
        records(path, operation).len() >= count
    });
    assert!(
        reached,
        "expected {count} {operation} record(s), found {:?}; log:\n{}",
        records(path, operation),
        operator.log_text()
    );
    records(path, operation)
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
fn sample(operator: &Operator, series: &str) -> Option<f64> {
    let (_, body) = operator.get("/metrics")?;
    body.lines()
        .find(|line| line.starts_with(&format!("{series} ")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Every metric of the contract with the chart's alerts and dashboard (README "Metrics"), as
/// `# TYPE` names it (counters without `_total`).
const CONTRACT: [(&str, &str); 19] = [
    ("mmf_reconciles", "counter"),
    ("mmf_reconcile_errors", "counter"),
    ("mmf_reconcile_duration_seconds", "histogram"),
    ("mmf_child_applies", "counter"),
    ("mmf_config_reloads", "counter"),
    ("mmf_queue_depth", "gauge"),
    ("mmf_leader", "gauge"),
    ("mmf_admission_requests", "counter"),
    ("mmf_admission_duration_seconds", "histogram"),
    ("mmf_plugin_info", "gauge"),
    ("mmf_plugin_state", "gauge"),
    ("mmf_service_plugins", "gauge"),
    ("mmf_plugin_services", "gauge"),
    ("mmf_signature_verifications", "counter"),
    ("mmf_signature_verdict_cache_hits", "counter"),
    ("mmf_signature_verdict_cache_misses", "counter"),
    ("mmf_admission_plugin_denials", "counter"),
    ("mmf_webhook_certificate_expiry_timestamp_seconds", "gauge"),
    ("mmf_audit_records", "counter"),
];

/// Counters that have no series until their first event (no error, no reload in the test).
const FIRST_EVENT_ONLY: [&str; 2] = ["mmf_reconcile_errors", "mmf_config_reloads"];

/// The user the in-memory server puts in every AdmissionReview.
const TEST_SERVER_USER: &str = "system:admin";

fn audit_args(audit: &Path) -> Vec<String> {
    vec![
        "--config-dir".into(),
        repo().join("config").display().to_string(),
        "--namespace".into(),
        "default".into(),
        "--leader-election=false".into(),
        "--audit-log".into(),
        audit.display().to_string(),
    ]
}

#[test]
fn an_unsigned_plugin_denied_in_production_is_one_audit_record_and_one_counted_denial() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("audit-deny", "production");
    let audit = cluster.dir.path().join("audit.jsonl");
    let port = common::free_port();
    let configuration = format!("mmf-audit-{}", std::process::id());
    // Declared before the operator, so it runs after the operator stopped (which would
    // re-create it): on a real cluster a fail-closed configuration pointing at a stopped
    // webhook would block the other suites.
    let _cleanup = DeleteOnDrop {
        cluster: &cluster,
        objects: vec![format!("validatingwebhookconfiguration/{configuration}")],
    };
    let mut args = audit_args(&audit);
    args.extend([
        "--webhook-addr".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-url".into(),
        format!("https://127.0.0.1:{port}/validate"),
        "--webhook-configuration".into(),
        configuration.clone(),
    ]);
    let operator = cluster.operator_with(&args, &[]);

    let signed =
        std::fs::read_to_string(repo().join("plugins/production_payment_service/plugin.yaml"))
            .unwrap();
    let unsigned = signed[..signed.find("  signature:").unwrap()]
        .replace("name: production-payment", "name: unsigned-payment");
    let (ok, _, stderr) = cluster.kubectl_input(&["apply", "-n", &namespace, "-f", "-"], &unsigned);
    assert!(!ok, "an unsigned plugin was admitted in production");
    assert!(stderr.contains("spec.signature is missing"), "{stderr}");

    let admissions = records(&audit, "admission");
    assert_eq!(admissions.len(), 1, "{admissions:?}");
    let record = &admissions[0];
    assert_eq!(record["schema"], "mmf.marty.dev/audit/v1");
    assert_eq!(record["object"]["kind"], "MmfPlugin");
    assert_eq!(record["object"]["namespace"], namespace.as_str());
    assert_eq!(record["object"]["name"], "unsigned-payment");
    if cluster.server.is_some() {
        assert_eq!(record["user"]["username"], TEST_SERVER_USER);
    } else {
        assert!(
            record["user"]["username"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
    }
    assert_eq!(record["request"], "CREATE");
    assert_eq!(record["environment"], "production");
    assert_eq!(record["outcome"], "deny");
    let violations: Vec<(&str, &str)> = record["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["reason"].as_str().unwrap(), v["field"].as_str().unwrap()))
        .collect();
    assert_eq!(violations, vec![("SignatureMissing", "spec.signature")]);
    assert!(
        !record.to_string().contains("\"spec\""),
        "an audit record carries no spec: {record}"
    );

    let denials = format!(
        "mmf_admission_plugin_denials_total{{namespace=\"{namespace}\",plugin=\"unsigned-payment\",reason=\"SignatureMissing\"}}"
    );
    assert_eq!(sample(&operator, &denials), Some(1.0));
    assert_eq!(
        sample(
            &operator,
            "mmf_audit_records_total{operation=\"admission\"}"
        ),
        Some(1.0)
    );
    // The shipped signed example is admitted and loaded: every metric of the contract has a
    // series now, except the two that only appear with their first event.
    let example = cluster.payment_example();
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &example.display().to_string(),
    ]);
    let loaded =
        format!("mmf_plugin_services{{namespace=\"{namespace}\",plugin=\"production-payment\"}}");
    let loading = eventually(Duration::from_secs(45), || {
        sample(&operator, &loaded) == Some(1.0)
    });
    assert!(loading, "log:\n{}", operator.log_text());
    let (_, scrape) = operator.get("/metrics").unwrap();
    let scraped: Vec<(&str, &str)> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_once(' '))
        .collect();
    // A first-event family may be there too: on the shared real control plane the operator
    // also sees what earlier suites left in terminating namespaces, and a reconcile of those
    // can fail. Such a family must still carry the contract's type.
    let (first_event, mut scraped): (Vec<_>, Vec<_>) = scraped
        .into_iter()
        .partition(|(name, _)| FIRST_EVENT_ONLY.contains(name));
    let mut expected: Vec<(&str, &str)> = CONTRACT
        .into_iter()
        .filter(|(name, _)| !FIRST_EVENT_ONLY.contains(name))
        .collect();
    expected.sort_unstable();
    scraped.sort_unstable();
    assert_eq!(scraped, expected, "{scrape}");
    for family in first_event {
        assert!(
            CONTRACT.contains(&family),
            "{family:?} is not in the contract: {scrape}"
        );
    }
    let expiry = sample(
        &operator,
        "mmf_webhook_certificate_expiry_timestamp_seconds",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now,
        "the served certificate expires at {expiry}, now is {now}"
    );
}

/// `mmf_plugin_state` of the payment plugin in `namespace`, state by state.
fn plugin_state(operator: &Operator, namespace: &str, state: &str) -> Option<f64> {
    sample(
        operator,
        &format!(
            "mmf_plugin_state{{namespace=\"{namespace}\",environment=\"production\",plugin=\"production-payment\",state=\"{state}\"}}"
        ),
    )
}

#[test]
fn a_plugin_losing_and_regaining_its_signature_is_two_audit_records_and_two_state_changes() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("audit-sig", "production");
    let audit = cluster.dir.path().join("audit.jsonl");
    let mut args = audit_args(&audit);
    args.extend(["--webhook-addr".into(), "none".into()]);
    let operator = cluster.operator_with(&args, &[]);
    let example = cluster.payment_example();
    let plugin = example.join("plugin.yaml");
    let apply = |path: &Path| {
        cluster.kubectl_ok(&["apply", "-n", &namespace, "-f", &path.display().to_string()]);
    };
    apply(&plugin);
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        &namespace,
        "--for=condition=Ready",
        "mmfplugin/production-payment",
        "--timeout=60s",
    ]);
    let verified = eventually(Duration::from_secs(30), || {
        plugin_state(&operator, &namespace, "verified") == Some(1.0)
    });
    assert!(verified, "log:\n{}", operator.log_text());
    assert_eq!(
        plugin_state(&operator, &namespace, "rejected_signature"),
        Some(0.0)
    );
    assert_eq!(records(&audit, "signature_verdict"), Vec::<Value>::new());

    let signed = std::fs::read_to_string(&plugin).unwrap();
    std::fs::write(&plugin, &signed[..signed.find("  signature:").unwrap()]).unwrap();
    apply(&plugin);
    let lost = wait_records(&audit, "signature_verdict", 1, &operator);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["object"]["name"], "production-payment");
    assert_eq!(lost[0]["object"]["namespace"], namespace.as_str());
    assert_eq!(lost[0]["from"]["verdict"], "verified");
    assert_eq!(lost[0]["to"]["verdict"], "rejected");
    assert_eq!(lost[0]["to"]["reason"], "SignatureMissing");
    assert_eq!(lost[0]["key_id"], Value::Null);
    assert_eq!(plugin_state(&operator, &namespace, "verified"), Some(0.0));
    assert_eq!(
        plugin_state(&operator, &namespace, "rejected_signature"),
        Some(1.0)
    );

    std::fs::write(&plugin, &signed).unwrap();
    apply(&plugin);
    let both = wait_records(&audit, "signature_verdict", 2, &operator);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[1]["from"]["reason"], "SignatureMissing");
    assert_eq!(both[1]["to"]["verdict"], "verified");
    assert_eq!(both[1]["key_id"], "mmf-demo-2026");
    assert_eq!(both[1]["algorithm"], "ecdsa-p256-sha256");
    assert!(
        both[1]["payload_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:") && d.len() == 71),
        "{}",
        both[1]
    );
    assert!(
        both[1]["object"]["generation"].as_i64().unwrap()
            > both[0]["object"]["generation"].as_i64().unwrap()
    );
    assert_eq!(plugin_state(&operator, &namespace, "verified"), Some(1.0));
    assert_eq!(
        plugin_state(&operator, &namespace, "rejected_signature"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &operator,
            "mmf_audit_records_total{operation=\"signature_verdict\"}"
        ),
        Some(2.0)
    );

    cluster.kubectl_ok(&["delete", "-n", &namespace, "mmfplugin/production-payment"]);
    let forgotten = eventually(Duration::from_secs(30), || {
        plugin_state(&operator, &namespace, "verified").is_none()
    });
    assert!(forgotten, "the series of a deleted plugin stayed");
    assert_eq!(
        sample(
            &operator,
            &format!(
                "mmf_plugin_info{{namespace=\"{namespace}\",plugin=\"production-payment\",version=\"1.0.0\"}}"
            )
        ),
        None
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn sha256(path: &PathBuf) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[test]
fn a_policy_reload_is_one_audit_record_with_the_digests_before_and_after() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let config = cluster.dir.path().join("config");
    copy_dir(&repo().join("config"), &config);
    let audit = cluster.dir.path().join("audit.jsonl");
    let mut args = audit_args(&audit);
    args[1] = config.display().to_string();
    args.extend(["--webhook-addr".into(), "none".into()]);
    let operator = cluster.operator_with(&args, &[]);

    let production = config.join("production.yaml");
    let before = sha256(&production);
    let base = sha256(&config.join("base.yaml"));
    let text = std::fs::read_to_string(&production).unwrap();
    assert!(text.contains("memory_mb: 256"));
    std::fs::write(
        &production,
        text.replace("memory_mb: 256", "memory_mb: 512"),
    )
    .unwrap();
    let after = sha256(&production);
    assert_ne!(before, after);

    let reloads = wait_records(&audit, "policy_reload", 1, &operator);
    let reloaded = eventually(Duration::from_secs(30), || {
        sample(&operator, "mmf_config_reloads_total{result=\"success\"}") == Some(1.0)
    });
    assert!(reloaded, "log:\n{}", operator.log_text());
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    let record = &reloads[0];
    assert_eq!(record["result"], "applied");
    assert_eq!(record["error"], Value::Null);
    assert_eq!(record["object"]["kind"], "EnvironmentConfig");
    assert_eq!(record["files_before"]["production.yaml"], before.as_str());
    assert_eq!(record["files_after"]["production.yaml"], after.as_str());
    assert_eq!(record["files_before"]["base.yaml"], base.as_str());
    assert_eq!(record["files_after"]["base.yaml"], base.as_str());
    assert_eq!(records(&audit, "policy_reload").len(), 1);
    assert_eq!(
        sample(
            &operator,
            "mmf_audit_records_total{operation=\"policy_reload\"}"
        ),
        Some(1.0)
    );
}
