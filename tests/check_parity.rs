//! Parity of the offline gate with the cluster: every manifest of `tests/fixtures/invalid/` is
//! refused by `mmf check` at the field its first line names (`# field: spec.replicas`), and
//!
//! - `schema/` ones (the CRD's structural schema and CEL rules) by `kubectl apply
//!   --dry-run=server` too, naming the same field; the valid controls pass both;
//! - `policy/` ones (the environment policy, which only the admission webhook enforces) are
//!   accepted by the CRD alone and judged by the webhook's own decision function, which denies
//!   them naming the same field (or, for violations that depend on other objects, admits with
//!   a warning naming it, as documented: the controller blocks those).
//!
//! The cluster is `Cluster::start()`: the in-memory test API server, or a real cluster named by
//! `MMF_E2E_KUBECONFIG`. Without kubectl the schema half is skipped, except under `CI`, where
//! it fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Cluster, repo, require_tool};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use mmf_operator::api::MmfPlugin;
use mmf_operator::cluster_view::StaticView;
use mmf_operator::config::load_dir;
use mmf_operator::webhook::review::decide;
use serde_json::{Value, json};

/// `(path, field)` of every fixture in `tests/fixtures/invalid/<group>/`.
fn fixtures(group: &str) -> Vec<(PathBuf, String)> {
    let dir = repo().join("tests/fixtures/invalid").join(group);
    let mut found: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let field = text
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("# field: "))
                .unwrap_or_else(|| panic!("{}: first line is not '# field: ...'", path.display()))
                .to_owned();
            (path, field)
        })
        .collect();
    found.sort();
    found
}

/// `mmf check --env production -o json`: exit code and `(reason, field)` of each finding.
fn check(path: &Path) -> (i32, Vec<(String, String)>) {
    let output = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .args(["check", "--env", "production", "-o", "json", "--config-dir"])
        .arg(repo().join("config"))
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{}: mmf check printed no report: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let findings = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["reason"].as_str().unwrap().to_owned(),
                v["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (output.status.code().unwrap(), findings)
}

/// True when kube-apiserver's refusal names `field`: `spec.replicas: Invalid value ...`, or
/// `unknown field "spec.foo"` under strict field validation.
fn names_field(refusal: &str, field: &str) -> bool {
    refusal.contains(&format!("{field}: "))
        || refusal.contains(&format!("unknown field \"{field}\""))
}

fn kubectl_or_skip() -> bool {
    require_tool("kubectl")
}

#[test]
fn the_cluster_and_mmf_check_refuse_the_same_schema_fixtures_at_the_same_field() {
    if !kubectl_or_skip() {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("parity", "development");
    let corpus = fixtures("schema");
    assert!(
        corpus.len() >= 30,
        "the schema corpus shrank to {}",
        corpus.len()
    );
    let mut differences = Vec::new();
    for (path, field) in &corpus {
        let (code, findings) = check(path);
        let offline: Vec<&String> = findings
            .iter()
            .filter(|(reason, _)| reason == "SchemaInvalid")
            .map(|(_, f)| f)
            .collect();
        let applied = cluster.kubectl(&[
            "apply",
            "--dry-run=server",
            "-n",
            &namespace,
            "-f",
            &path.display().to_string(),
        ]);
        let refusal = String::from_utf8_lossy(&applied.stderr).into_owned();
        let name = path.file_name().unwrap().to_string_lossy();
        if code != 1 || !offline.contains(&field) {
            differences.push(format!(
                "{name}: mmf check did not refuse {field}: {findings:?}"
            ));
        }
        if applied.status.success() || !names_field(&refusal, field) {
            differences.push(format!(
                "{name}: the cluster did not refuse {field}: {refusal}"
            ));
        }
    }
    for control in [
        repo().join("tests/fixtures/valid"),
        repo().join("plugins/production_payment_service"),
    ] {
        let (_, findings) = check(&control);
        let refused: Vec<_> = findings
            .iter()
            .filter(|(r, _)| r == "SchemaInvalid")
            .collect();
        if !refused.is_empty() {
            differences.push(format!(
                "{}: mmf check refused a valid manifest: {refused:?}",
                control.display()
            ));
        }
        let applied = cluster.kubectl(&[
            "apply",
            "--dry-run=server",
            "-n",
            &namespace,
            "-f",
            &control.display().to_string(),
        ]);
        if !applied.status.success() {
            differences.push(format!(
                "{}: the cluster refused a valid manifest: {}",
                control.display(),
                String::from_utf8_lossy(&applied.stderr)
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// A CREATE AdmissionRequest for the fixture's object in namespace `prod`.
fn admission_request(path: &Path) -> AdmissionRequest<DynamicObject> {
    let mut object: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    object["metadata"]["namespace"] = json!("prod");
    let kind = object["kind"].as_str().unwrap().to_owned();
    let resource = format!("{}s", kind.to_lowercase());
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "parity",
            "kind": {"group": "mmf.marty.dev", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "mmf.marty.dev", "version": "v1alpha1", "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": "prod",
            "operation": "CREATE",
            "userInfo": {"username": "parity"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
        },
    });
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).unwrap();
    review.try_into().unwrap()
}

#[test]
fn the_webhook_and_mmf_check_refuse_the_same_policy_fixtures_at_the_same_field() {
    let configs = load_dir(&repo().join("config")).unwrap();
    let plugin: MmfPlugin = serde_saphyr::from_str(
        &std::fs::read_to_string(repo().join("plugins/production_payment_service/plugin.yaml"))
            .unwrap(),
    )
    .unwrap();
    let mut plugin = plugin;
    plugin.metadata.namespace = Some("prod".to_owned());
    let view = StaticView::new()
        .namespace_in("prod", "production")
        .plugin(Arc::new(plugin));
    let corpus = fixtures("policy");
    assert!(
        corpus.len() >= 15,
        "the policy corpus shrank to {}",
        corpus.len()
    );
    let mut differences = Vec::new();
    for (path, field) in &corpus {
        let name = path.file_name().unwrap().to_string_lossy();
        let (code, findings) = check(path);
        let offline = findings.iter().find(|(_, f)| f == field);
        match offline {
            Some((reason, _)) if code == 1 && reason != "SchemaInvalid" => {}
            _ => differences.push(format!(
                "{name}: mmf check did not refuse {field} by policy: {findings:?}"
            )),
        }
        if findings.iter().any(|(reason, _)| reason == "SchemaInvalid") {
            differences.push(format!(
                "{name}: a policy fixture must pass the CRD schema: {findings:?}"
            ));
        }
        let verdict = decide(&admission_request(path), &configs, "development", &view);
        let referential = matches!(
            offline.map(|(r, _)| r.as_str()),
            Some(
                "PluginNotFound"
                    | "PluginRejected"
                    | "DependencyMissing"
                    | "DependencyVersionMismatch"
                    | "DependencyCycle"
            )
        );
        let named = if referential {
            verdict.allowed && verdict.warnings.iter().any(|w| w.contains(field.as_str()))
        } else {
            !verdict.allowed && verdict.message.contains(field.as_str())
        };
        if !named {
            differences.push(format!(
                "{name}: the webhook's verdict does not match for {field}: {verdict:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
