//! The `mmf` command line as a user or a pipeline runs it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mmf(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("mmf").unwrap();
    command.current_dir(dir).env_remove("MMF_ENVIRONMENT");
    command
}

/// A scratch directory with a copy of the shipped config.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("plugins")).unwrap();
    for entry in std::fs::read_dir(repo().join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, config.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const SERVICE: &str = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: shop\nspec:\n  image: registry.example/shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

#[test]
fn malformed_yaml_is_reported_with_file_line_and_column() {
    let dir = workspace();
    write(
        dir.path(),
        "m/bad.yaml",
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: a\nspec:\n  image: [unclosed\n  port: 80\n",
    );
    mmf(dir.path())
        .args(["check", "-f", "m/bad.yaml", "--env", "development"])
        .assert()
        .code(1)
        .stderr("error: m/bad.yaml:7:7: illegal placement of ':' indicator\n");
}

#[test]
fn a_type_error_in_a_later_document_is_refused_at_its_field_in_the_servers_words() {
    let dir = workspace();
    write(
        dir.path(),
        "m/two.yaml",
        &format!(
            "{SERVICE}---\n# second\n{}",
            SERVICE.replace("shop", "cart") + "  replicas: many\n"
        ),
    );
    mmf(dir.path())
        .args(["check", "-f", "m/two.yaml", "--env", "development"])
        .assert()
        .code(1)
        .stderr("error: m/two.yaml:15:3: MmfService/cart: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"\n");
}

#[test]
fn an_unknown_field_is_refused_like_kubectl_strict_validation() {
    let dir = workspace();
    write(
        dir.path(),
        "m/svc.yaml",
        &format!("{SERVICE}  imagePullPolicy: Always\n"),
    );
    mmf(dir.path())
        .args(["render", "-f", "m", "--env", "development"])
        .assert()
        .code(1)
        .stderr("error: m/svc.yaml:7:3: MmfService/shop: spec.imagePullPolicy: unknown field \"spec.imagePullPolicy\"\nerror: nothing rendered: the API server would refuse the object(s) above (CRD schema)\n");
}

#[test]
fn an_unknown_key_in_a_policy_file_names_file_line_and_column() {
    let dir = workspace();
    write(
        dir.path(),
        "config/development.yaml",
        "plugins:\n  loading: lenient\n  securty:\n    require_signature: false\n",
    );
    write(dir.path(), "m/svc.yaml", SERVICE);
    mmf(dir.path())
        .args(["check", "-f", "m", "--env", "development"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: config/development.yaml:3:3: unknown field `securty`, expected one of",
        ));
}

#[test]
fn an_environment_without_a_config_file_is_an_error_not_a_fallback() {
    let dir = workspace();
    write(dir.path(), "m/svc.yaml", SERVICE);
    mmf(dir.path())
        .args(["render", "-f", "m", "--env", "staging"])
        .assert()
        .code(1)
        .stderr("error: environment \"staging\" has no config file staging.yaml in the config directory (known environments: development, production)\n");
}

#[test]
fn check_fails_in_a_strict_environment_and_lists_every_violation() {
    let dir = workspace();
    write(
        dir.path(),
        "m/plugin.yaml",
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: tagged\nspec:\n  version: 1.0.0\n  image: registry.example/tagged:1.0\n",
    );
    mmf(dir.path())
        .args(["check", "-f", "m", "--env", "production"])
        .assert()
        .code(1)
        .stdout("2 violation(s) of the production policy (strict) in 1 object(s)\n")
        .stderr(predicate::str::contains(
            "error: m/plugin.yaml:5:1: MmfPlugin/tagged: spec.signature is missing: sign the plugin",
        ))
        .stderr(predicate::str::contains(
            "error: m/plugin.yaml:7:3: MmfPlugin/tagged: spec.image: image \"registry.example/tagged:1.0\" is not pinned by digest",
        ));
}

#[test]
fn check_json_output_is_machine_readable_and_lenient_warnings_pass_by_default() {
    let dir = workspace();
    write(
        dir.path(),
        "m/svc.yaml",
        &format!("{SERVICE}  plugins:\n    - name: ghost\n"),
    );
    let output = mmf(dir.path())
        .args([
            "check",
            "-f",
            "m",
            "--env",
            "development",
            "--output",
            "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(report["environment"], "development");
    assert_eq!(report["loading"], "lenient");
    assert_eq!(report["compliant"], false);
    assert_eq!(report["violations"][0]["severity"], "warning");
    assert_eq!(report["violations"][0]["reason"], "PluginNotFound");
    assert_eq!(report["violations"][0]["field"], "spec.plugins[0].name");
    assert_eq!(report["violations"][0]["file"], "m/svc.yaml");
    assert_eq!(report["violations"][0]["line"], 8);
    assert_eq!(report["violations"][0]["column"], 7);
    mmf(dir.path())
        .args([
            "check",
            "-f",
            "m",
            "--env",
            "development",
            "--fail-on-warnings",
        ])
        .assert()
        .code(1);
}

#[test]
fn generate_service_writes_a_manifest_that_renders_and_refuses_to_overwrite() {
    let dir = workspace();
    mmf(dir.path())
        .args([
            "generate",
            "service",
            "--name",
            "orders",
            "--plugin",
            "production_payment",
            "--type",
            "grpc",
            "--out",
            "services",
        ])
        .assert()
        .success()
        .stdout("wrote services/orders.yaml\nwrote config/plugins/production-payment.yaml\n");
    let manifest = std::fs::read_to_string(dir.path().join("services/orders.yaml")).unwrap();
    assert!(manifest.contains("name: production-payment"), "{manifest}");
    assert!(manifest.contains("type: grpc"), "{manifest}");
    // The generated manifest is valid input: in development the missing plugin is skipped.
    mmf(dir.path())
        .args(["render", "-f", "services", "--env", "development"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kind: Deployment"));
    mmf(dir.path())
        .args([
            "generate", "service", "--name", "orders", "--out", "services",
        ])
        .assert()
        .code(1)
        .stderr("error: refusing to overwrite services/orders.yaml (use --force)\n");
    let path = dir.path().join("services/orders.yaml");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        manifest,
        "a refusal must not touch the file"
    );
    mmf(dir.path())
        .args([
            "generate", "service", "--name", "orders", "--out", "services", "--force",
        ])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "wrote services/orders.yaml\nwrote services/orders/Containerfile\n",
        ));
    // Regenerated without plugins and as fastapi: the old file was replaced.
    let replaced = std::fs::read_to_string(&path).unwrap();
    assert!(
        !replaced.contains("production-payment")
            && replaced.contains("type: fastapi")
            && !replaced.contains(":latest")
            && replaced.contains("@sha256:"),
        "{replaced}"
    );
}

#[test]
fn generate_rejects_names_kubernetes_would_reject() {
    let dir = workspace();
    mmf(dir.path())
        .args(["generate", "service", "--name", "9lives"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "service name \"9lives\" is not a valid name",
        ));
}

#[test]
fn crds_prints_the_committed_crds() {
    let output = mmf(&repo())
        .arg("crds")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let expected = format!(
        "---\n{}---\n{}---\n{}",
        std::fs::read_to_string(repo().join("crds/mmfplugins.yaml")).unwrap(),
        std::fs::read_to_string(repo().join("crds/mmfservices.yaml")).unwrap(),
        std::fs::read_to_string(repo().join("crds/mmfpluginrevisions.yaml")).unwrap()
    );
    assert_eq!(String::from_utf8(output).unwrap(), expected);
}
