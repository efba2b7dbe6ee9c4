//! RUNTIME.md's contract table says exactly what `mmf render` produces: every environment
//! variable, configuration file, `mmf.yaml` key, mount and probe path, in both directions, and
//! every per-plugin metric the generated service exports.
#![allow(clippy::unwrap_used)]

mod workflow_common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;
use workflow_common::{Row, contract_rows, documents, of_kind};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn table() -> Vec<Row> {
    contract_rows(&std::fs::read_to_string(repo().join("RUNTIME.md")).unwrap())
}

fn row(kind: &str, name: &str, value: &str) -> Row {
    Row {
        kind: kind.into(),
        name: name.into(),
        value: value.into(),
    }
}

/// What the renderer produces for the shipped example in production, with plugin names and the
/// environment replaced by RUNTIME.md's placeholders.
fn rendered_rows() -> Vec<Row> {
    let output = Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(repo())
        .env_remove("MMF_ENVIRONMENT")
        .args([
            "render",
            "-f",
            "plugins/production_payment_service",
            "--env",
            "production",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let documents = documents(&String::from_utf8(output).unwrap());
    let config_map = of_kind(&documents, "ConfigMap");
    let pod = &of_kind(&documents, "Deployment")["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let mmf_yaml: Value = mmf_operator::core::manifest::parse_yaml_value(
        "mmf.yaml",
        config_map["data"]["mmf.yaml"].as_str().unwrap(),
    )
    .unwrap();
    let plugins: Vec<String> = mmf_yaml["load_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(plugins, ["production-payment"]);
    let generic = |text: &str| {
        plugins.iter().fold(text.to_owned(), |text, plugin| {
            text.replace(plugin.as_str(), "<plugin>")
        })
    };
    let mut rows = Vec::new();
    for env in container["env"].as_array().unwrap() {
        let name = env["name"].as_str().unwrap();
        if name.starts_with("MMF_") {
            rows.push(row("env", name, env["value"].as_str().unwrap()));
        }
    }
    let config_dir = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap()
        .to_owned();
    for file in config_map["data"].as_object().unwrap().keys() {
        rows.push(row(
            "file",
            &generic(file),
            &generic(&format!("{config_dir}/{file}")),
        ));
    }
    for key in mmf_yaml.as_object().unwrap().keys() {
        rows.push(row("mmf.yaml", key, ""));
    }
    for mount in container["volumeMounts"].as_array().unwrap() {
        rows.push(row(
            "mount",
            mount["name"].as_str().unwrap(),
            mount["mountPath"].as_str().unwrap(),
        ));
    }
    for init in pod["spec"]["initContainers"].as_array().unwrap() {
        let command: Vec<&str> = init["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(command[..2], ["cp", "-R"]);
        rows.push(row(
            "mount",
            "plugin image",
            command[2].trim_end_matches("/."),
        ));
        rows.push(row(
            "mount",
            "plugin copy",
            &generic(init["volumeMounts"][0]["mountPath"].as_str().unwrap()),
        ));
    }
    for (probe, field) in [
        ("liveness", "livenessProbe"),
        ("readiness", "readinessProbe"),
        ("startup", "startupProbe"),
    ] {
        rows.push(row(
            probe_kind(),
            probe,
            container[field]["httpGet"]["path"].as_str().unwrap(),
        ));
    }
    rows.push(row(
        probe_kind(),
        "metrics",
        pod["metadata"]["annotations"]["prometheus.io/path"]
            .as_str()
            .unwrap(),
    ));
    rows
}

fn probe_kind() -> &'static str {
    "probe"
}

fn names(rows: &[Row], kind: &str) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.name.clone())
        .collect()
}

fn full(rows: &[Row], kind: &str) -> BTreeSet<Row> {
    rows.iter().filter(|r| r.kind == kind).cloned().collect()
}

#[test]
fn every_env_var_config_file_and_mmf_yaml_key_rendered_is_in_runtime_md_and_vice_versa() {
    let (table, rendered) = (table(), rendered_rows());
    for kind in ["env", "mmf.yaml"] {
        assert_eq!(names(&table, kind), names(&rendered, kind), "kind {kind}");
    }
    assert_eq!(full(&table, "file"), full(&rendered, "file"));
    // Fixed values must match; placeholders stand for the namespace's environment and plugins.
    for documented in table.iter().filter(|r| r.kind == "env") {
        let actual = rendered.iter().find(|r| r.name == documented.name).unwrap();
        match documented.value.as_str() {
            "<environment>" => assert_eq!(actual.value, "production"),
            "<plugin>,<plugin>" => assert_eq!(actual.value, "production-payment"),
            fixed => assert_eq!(actual.value, fixed, "{}", documented.name),
        }
    }
}

#[test]
fn every_mount_and_probe_path_rendered_is_in_runtime_md_and_vice_versa() {
    let (table, rendered) = (table(), rendered_rows());
    assert_eq!(full(&table, "mount"), full(&rendered, "mount"));
    assert_eq!(full(&table, "probe"), full(&rendered, "probe"));
}

#[test]
fn the_per_plugin_metrics_are_exactly_those_the_generated_service_exports() {
    let manager = std::fs::read_to_string(
        repo().join("templates/service/fastapi/mmf_service/plugin_manager.py"),
    )
    .unwrap();
    let exported: BTreeSet<String> = manager
        .lines()
        .filter_map(|line| line.split("# TYPE ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(names(&table(), "metric"), exported);
}

#[test]
fn the_service_skeleton_reads_the_variables_and_files_runtime_md_names() {
    let manager = std::fs::read_to_string(
        repo().join("templates/service/fastapi/mmf_service/plugin_manager.py"),
    )
    .unwrap();
    let main =
        std::fs::read_to_string(repo().join("templates/service/fastapi/mmf_service/main.py"))
            .unwrap();
    for variable in names(&table(), "env") {
        assert!(
            manager.contains(&format!("\"{variable}\"")),
            "{variable} unread"
        );
    }
    assert!(manager.contains("\"mmf.yaml\""));
    for row in full(&table(), "probe")
        .iter()
        .filter(|r| r.name != "metrics")
    {
        assert!(
            main.contains(&format!("@app.get(\"{}\")", row.value)),
            "{} unserved",
            row.value
        );
    }
}
