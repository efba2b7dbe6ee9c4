//! Issue 17, "the offline gate is as strict as the cluster": the manifest from the issue gets
//! exactly four findings, each at its field's line and column, in all three outputs.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::{Value, json};

const BAD: &str = "apiVersion: mmf.marty.dev/v1alpha1
kind: MmfService
metadata:
  name: orders
spec:
  image: nginx:latest
  replicas: -1
  plugins:
    - name: nothere
  resources:
    limits:
      memory: 2Gi
";

fn check(output: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), BAD).unwrap();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let result = Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("MMF_ENVIRONMENT")
        .args([
            "check",
            "-f",
            "bad.yaml",
            "--env",
            "production",
            "-o",
            output,
        ])
        .arg("--config-dir")
        .arg(config)
        .output()
        .unwrap();
    (
        result.status.code().unwrap(),
        String::from_utf8(result.stdout).unwrap(),
        String::from_utf8(result.stderr).unwrap(),
    )
}

#[test]
fn the_issue_manifest_gets_four_findings_each_at_its_field() {
    let (code, stdout, stderr) = check("text");
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "error: bad.yaml:6:3: MmfService/orders: spec.image: image \"nginx:latest\" is not pinned by digest: environment production requires references of the form name@sha256:<64 hex digits>
error: bad.yaml:7:3: MmfService/orders: spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0
error: bad.yaml:9:7: MmfService/orders: spec.plugins[0].name: plugin \"nothere\" does not exist in this namespace: apply its MmfPlugin manifest or remove it from spec.plugins[0]
error: bad.yaml:12:7: MmfService/orders: spec.resources.limits.memory: 2Gi is above the 256Mi per-container limit of environment production: lower it to at most 256Mi
"
    );
    assert_eq!(
        stdout,
        "1 schema violation(s) the API server refuses and 3 violation(s) of the production policy (strict) in 1 object(s)\n"
    );
}

#[test]
fn the_json_report_places_each_finding_at_line_and_column() {
    let (code, stdout, _) = check("json");
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let places: Vec<Value> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| json!([v["line"], v["column"], v["reason"], v["field"]]))
        .collect();
    assert_eq!(
        places,
        [
            json!([6, 3, "ImageNotPinned", "spec.image"]),
            json!([7, 3, "SchemaInvalid", "spec.replicas"]),
            json!([9, 7, "PluginNotFound", "spec.plugins[0].name"]),
            json!([12, 7, "LimitsExceeded", "spec.resources.limits.memory"]),
        ]
    );
    assert_eq!(report["compliant"], false);
}

#[test]
fn the_sarif_log_has_one_result_per_finding_with_its_region() {
    let (code, stdout, _) = check("sarif");
    assert_eq!(code, 1);
    let log: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let results: Vec<Value> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let physical = &r["locations"][0]["physicalLocation"];
            json!([
                r["ruleId"],
                r["level"],
                physical["artifactLocation"]["uri"],
                physical["region"]["startLine"],
                physical["region"]["startColumn"],
            ])
        })
        .collect();
    assert_eq!(
        results,
        [
            json!(["ImageNotPinned", "error", "bad.yaml", 6, 3]),
            json!(["SchemaInvalid", "error", "bad.yaml", 7, 3]),
            json!(["PluginNotFound", "error", "bad.yaml", 9, 7]),
            json!(["LimitsExceeded", "error", "bad.yaml", 12, 7]),
        ]
    );
}

#[test]
fn the_shipped_example_and_config_still_pass_in_production() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(&root)
        .env_remove("MMF_ENVIRONMENT")
        .args([
            "check",
            "-f",
            "plugins/production_payment_service",
            "--env",
            "production",
        ])
        .assert()
        .code(0)
        .stdout("2 object(s) comply with the production policy\n");
}

#[test]
fn development_only_warns_about_a_tag_only_service_image() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("svc.yaml"),
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: web\nspec:\n  image: nginx:latest\n",
    )
    .unwrap();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(dir.path())
        .args(["check", "-f", "svc.yaml", "--env", "development", "--config-dir"])
        .arg(config)
        .assert()
        .code(0)
        .stderr("warning: svc.yaml:6:3: MmfService/web: spec.image: image \"nginx:latest\" is not pinned by digest: environment development requires references of the form name@sha256:<64 hex digits>\n");
}

/// The code block after `<!-- check-gate:NAME -->` in README.md.
fn readme_block(name: &str) -> String {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let marker = format!("<!-- check-gate:{name} -->\n");
    let after = &readme[readme.find(&marker).unwrap() + marker.len()..];
    let body = &after[after.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

#[test]
fn the_readme_shows_the_three_outputs_exactly_as_printed() {
    let (_, stdout, stderr) = check("text");
    assert_eq!(readme_block("text"), format!("{stderr}{stdout}"));
    assert_eq!(readme_block("json"), check("json").1);
    assert_eq!(readme_block("sarif"), check("sarif").1);
}
