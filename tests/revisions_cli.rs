//! `mmf render` and `mmf check` with several versions of a plugin in their input (MmfPlugin
//! documents of one name, MmfPluginRevision documents): resolved by the same core solver as
//! the operator.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `mmf <command> --config-dir <the shipped config> <args>` in `dir`.
fn mmf(dir: &Path, command: &str, args: &[&str]) -> Command {
    let mut mmf = Command::cargo_bin("mmf").unwrap();
    mmf.current_dir(dir)
        .env_remove("MMF_ENVIRONMENT")
        .arg(command)
        .arg("--config-dir")
        .arg(repo().join("config"))
        .args(args);
    mmf
}

fn plugin(version: &str, timeout: u32) -> String {
    format!(
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: ledger\nspec:\n  version: {version}\n  image: registry.example/ledger:{version}\n  config:\n    timeout: {timeout}\n"
    )
}

fn revision(version: &str, timeout: u32) -> String {
    format!(
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPluginRevision\nmetadata:\n  name: ledger-{version}\nspec:\n  plugin: ledger\n  version: {version}\n  digest: sha256:{}\n  pluginSpec:\n    version: {version}\n    image: registry.example/ledger:{version}\n    config:\n      timeout: {timeout}\n",
        "0".repeat(64)
    )
}

fn service(name: &str, version: Option<&str>) -> String {
    let pin = version
        .map(|v| format!("\n    version: \"{v}\""))
        .unwrap_or_default();
    format!(
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: {name}\nspec:\n  image: registry.example/{name}@sha256:{}\n  plugins:\n  - name: ledger{pin}\n",
        "0123456789abcdef".repeat(4)
    )
}

/// The `ledger.yaml` entry of each rendered ConfigMap, by service.
fn ledger_configs(rendered: &str) -> Vec<(String, String)> {
    rendered
        .split("\n---\n")
        .filter_map(|document| {
            let value: serde_json::Value = serde_saphyr::from_str(document).ok()?;
            (value["kind"] == "ConfigMap").then(|| {
                (
                    value["metadata"]["name"].as_str().unwrap().to_owned(),
                    value["data"]["ledger.yaml"]
                        .as_str()
                        .unwrap()
                        .trim()
                        .to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn render_resolves_each_service_among_every_version_in_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        revision("1.0.0", 10),
        plugin("1.1.0", 11),
        plugin("2.0.0", 20),
        service("follower", None),
        service("minor", Some("^1")),
        service("pinned", Some("=1.0.0")),
    ]
    .join("---\n");
    std::fs::write(dir.path().join("all.yaml"), text).unwrap();
    let output = mmf(
        dir.path(),
        "render",
        &["-f", "all.yaml", "--env", "development"],
    )
    .assert()
    .success()
    .get_output()
    .stdout
    .clone();
    assert_eq!(
        ledger_configs(&String::from_utf8(output).unwrap()),
        [
            ("follower-mmf".to_owned(), "timeout: 20".to_owned()),
            ("minor-mmf".to_owned(), "timeout: 11".to_owned()),
            ("pinned-mmf".to_owned(), "timeout: 10".to_owned()),
        ]
    );
}

#[test]
fn check_reports_a_pin_that_matches_no_version_with_the_versions_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        plugin("1.0.0", 10),
        plugin("1.1.0", 11),
        service("shop", Some("=3.0.0")),
    ]
    .join("---\n");
    std::fs::write(dir.path().join("all.yaml"), text).unwrap();
    mmf(dir.path(), "check", &["-f", "all.yaml", "--env", "development"])
        .assert()
        .code(0)
        .stderr(
            "warning: all.yaml:29:5: MmfService/shop: spec.plugins[0].version: no version of plugin \"ledger\" matches =3.0.0; versions: 1.0.0, 1.1.0; change the requirement or apply a matching version\n",
        );
}
