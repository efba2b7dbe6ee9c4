//! The Helm chart `charts/mmf-operator`, checked with the real Helm v4 engine (PyPI
//! `helm-python-sdk`): lint, render with each shipped values file, the Kubernetes 1.33 schemas
//! (PyPI `kubernetes-validate`), the values schema, and the shape of every object the operator
//! and GitOps tools depend on.
#![allow(clippy::unwrap_used)]

mod chart_common;

use std::collections::BTreeSet;
use std::path::Path;

use chart_common::{
    Rendered, Values, args, chart_dir, helm_python, lint_problems, operator_container, render,
    root, value_sets, venv_tool, yaml_file,
};
use serde_json::{Value, json};

// === Files that need no Helm ===

#[test]
fn chart_crds_are_the_same_bytes_as_crds_dir() {
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let source = root().join("crds");
    let copy = chart_dir().join("crds");
    assert_eq!(
        names(&source),
        names(&copy),
        "charts/mmf-operator/crds/ must hold exactly the files of crds/ (cp crds/*.yaml charts/mmf-operator/crds/)"
    );
    for name in names(&source) {
        assert!(
            std::fs::read(source.join(&name)).unwrap() == std::fs::read(copy.join(&name)).unwrap(),
            "charts/mmf-operator/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/mmf-operator/crds/"
        );
    }
}

#[test]
fn chart_version_and_app_version_follow_the_crate_version() {
    let chart = yaml_file(&chart_dir().join("Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "mmf-operator");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion must equal the crate version"
    );
    assert_eq!(
        chart["version"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml version must equal the crate version"
    );
}

/// `config/` is the source of truth; the chart's default `policy` values must say the same.
#[test]
fn default_policy_values_equal_the_config_dir() {
    let values = yaml_file(&chart_dir().join("values.yaml"));
    let policy = &values["policy"];
    let config = root().join("config");
    assert_eq!(policy["base"], yaml_file(&config.join("base.yaml")), "base");
    let mut environments = BTreeSet::new();
    for entry in std::fs::read_dir(&config).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(env) = name.strip_suffix(".yaml").filter(|n| *n != "base") {
            environments.insert(env.to_string());
            assert_eq!(policy["environments"][env], yaml_file(&path), "{env}");
        }
    }
    let keys: BTreeSet<String> = policy["environments"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, environments);
    let mut plugins = BTreeSet::new();
    for entry in std::fs::read_dir(config.join("plugins")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert_eq!(policy["plugins"][&name], yaml_file(&path), "plugin {name}");
        plugins.insert(name);
    }
    let keys: BTreeSet<String> = policy["plugins"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, plugins);
}

#[test]
fn values_schema_forbids_unknown_top_level_keys_and_covers_every_default() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(schema["additionalProperties"], false);
    let values = yaml_file(&chart_dir().join("values.yaml"));
    // Every default key is declared, recursively through objects that forbid extra keys.
    fn walk(values: &Value, schema: &Value, path: &str) {
        let Some(map) = values.as_object() else {
            return;
        };
        if schema["additionalProperties"] != false {
            return;
        }
        for (key, value) in map {
            let child = &schema["properties"][key];
            assert!(
                !child.is_null(),
                "{path}.{key} is missing from values.schema.json"
            );
            walk(value, child, &format!("{path}.{key}"));
        }
    }
    walk(&values, &schema, "");
    assert!(values["replicaCount"].is_u64());
    assert!(values["environment"].is_string());
    assert_eq!(schema["properties"]["replicaCount"]["minimum"], 0);
    assert_eq!(
        schema["properties"]["logFormat"]["enum"],
        json!(["text", "json"])
    );
}

/// The chart README documents every value (its values table names each key).
#[test]
fn readme_values_table_names_every_value() {
    let values = yaml_file(&chart_dir().join("values.yaml"));
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    // Maps documented as a whole rather than key by key.
    const WHOLE: &[&str] = &[
        "resources",
        "policy.base",
        "policy.environments",
        "policy.plugins",
    ];
    fn leaves(value: &Value, path: String, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) if !map.is_empty() && !WHOLE.contains(&path.as_str()) => {
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    leaves(child, child_path, out);
                }
            }
            _ => out.push(path),
        }
    }
    let mut keys = Vec::new();
    leaves(&values, String::new(), &mut keys);
    assert!(keys.len() > 30, "{keys:?}");
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| !readme.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "charts/mmf-operator/README.md lacks values: {missing:?}"
    );
}

// === The Helm engine ===

#[test]
fn lint_reports_no_errors_or_warnings() {
    let Some(python) = helm_python("chart lint") else {
        return;
    };
    for (label, values) in value_sets() {
        let problems = lint_problems(&python, &values);
        assert!(
            problems.is_empty(),
            "helm lint --strict ({label}): {problems:#?}"
        );
    }
}

#[test]
fn every_value_set_renders_and_passes_the_kubernetes_1_33_schemas() {
    let Some(python) = helm_python("chart render") else {
        return;
    };
    let Some(validator) = venv_tool("kubernetes-validate", "chart kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, (label, values)) in value_sets().into_iter().enumerate() {
        let rendered = render(&python, &values).unwrap_or_else(|e| panic!("{label}: {e}"));
        let file = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&file, rendered.to_yaml()).unwrap();
        let output = std::process::Command::new(&validator)
            .args(["--kubernetes-version", "1.33.0", "--strict"])
            .arg(&file)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{label}:\n{report}");
        for line in report.lines() {
            // Custom resources of cert-manager and the Prometheus Operator have no schema in
            // the Kubernetes release; everything else must pass.
            let third_party = [
                "kind Issuer ",
                "kind Certificate ",
                "kind ServiceMonitor ",
                "kind PrometheusRule ",
            ]
            .iter()
            .any(|k| line.contains(k))
                && line.contains("Couldn't find schema");
            assert!(
                third_party || !(line.contains("ERROR") || line.contains("WARN")),
                "{label}: {line}\n{report}"
            );
        }
        let passed = report.matches(" passed for resource ").count();
        let expected = rendered
            .objects
            .iter()
            .filter(|o| {
                !matches!(
                    o["kind"].as_str(),
                    Some("Issuer" | "Certificate" | "ServiceMonitor" | "PrometheusRule")
                )
            })
            .count();
        assert_eq!(
            passed, expected,
            "{label}: every built-in object validated\n{report}"
        );
        // Helm installs the CRDs from crds/ first, exactly as committed in crds/.
        let crd_names: Vec<&str> = rendered
            .crds
            .iter()
            .map(|c| c["filename"].as_str().unwrap())
            .collect();
        assert_eq!(
            crd_names,
            [
                "mmf-operator/crds/mmfpluginrevisions.yaml",
                "mmf-operator/crds/mmfplugins.yaml",
                "mmf-operator/crds/mmfservices.yaml"
            ],
            "{label}"
        );
        for crd in &rendered.crds {
            let file = crd["filename"]
                .as_str()
                .unwrap()
                .trim_start_matches("mmf-operator/");
            let committed = std::fs::read_to_string(root().join(file)).unwrap();
            assert!(
                crd["data"].as_str() == Some(committed.as_str()),
                "{label}: {file}"
            );
        }
    }
}

#[test]
fn bad_values_are_rejected_by_the_schema_with_a_clear_message() {
    let Some(python) = helm_python("chart values schema") else {
        return;
    };
    let cases = [
        (
            json!({"replicaCount": -1}),
            vec!["/replicaCount", "minimum", "-1"],
        ),
        (
            json!({"replicaCount": "two"}),
            vec!["/replicaCount", "integer"],
        ),
        (
            json!({"replicaCoutn": 2}),
            vec!["additional properties", "replicaCoutn"],
        ),
        (
            json!({"logFormat": "xml"}),
            vec!["/logFormat", "text", "json"],
        ),
        (
            json!({"webhook": {"failurePolicy": "Fail"}}),
            vec!["/webhook", "failurePolicy"],
        ),
        (
            json!({"webhook": {"certManager": {"enable": true}}}),
            vec!["/webhook/certManager", "enable"],
        ),
        (
            json!({"image": {"digest": "latest"}}),
            vec!["/image/digest"],
        ),
        (json!({"environment": "Prod_1"}), vec!["/environment"]),
        (
            json!({"policy": {"environments": {"Prod": {}}}}),
            vec!["invalid propertyName 'Prod'"],
        ),
    ];
    for (values, needles) in cases {
        let error = render(&python, &Values::defaults().set(values.clone()))
            .err()
            .unwrap_or_else(|| panic!("{values} was accepted"));
        for needle in needles {
            assert!(
                error.contains(needle),
                "{values}: {needle:?} not in: {error}"
            );
        }
    }
}

#[test]
fn contradictory_values_fail_rendering_with_a_clear_message() {
    let Some(python) = helm_python("chart value checks") else {
        return;
    };
    let error = render(
        &python,
        &Values::defaults().set(json!({"environment": "staging"})),
    )
    .err()
    .unwrap();
    assert!(
        error.contains(r#"environment "staging" has no policy"#)
            && error.contains("development, production"),
        "{error}"
    );
    let error = render(
        &python,
        &Values::defaults().set(json!({"replicaCount": 3, "leaderElection": false})),
    )
    .err()
    .unwrap();
    assert!(error.contains("needs leaderElection: true"), "{error}");
    let error = render(
        &python,
        &Values::defaults().set(json!({"policy": {"environments": {"base": {}}}})),
    )
    .err()
    .unwrap();
    assert!(error.contains(r#"the name "base" is reserved"#), "{error}");
    let error = render(
        &python,
        &Values::defaults().set(json!({"webhook": {"port": 8081}})),
    )
    .err()
    .unwrap();
    assert!(error.contains("need different ports"), "{error}");
}

#[test]
fn policy_config_map_holds_config_dir_and_is_mounted_file_by_file() {
    let Some(python) = helm_python("chart policy ConfigMap") else {
        return;
    };
    let rendered = render(&python, &Values::defaults()).unwrap();
    let config_map = rendered.get("ConfigMap", "mmf-operator-policy");
    let data = config_map["data"].as_object().unwrap();
    let config = root().join("config");
    let mut expected = vec![("base.yaml".to_string(), "base.yaml".to_string())];
    for env in ["development", "production"] {
        expected.push((format!("{env}.yaml"), format!("{env}.yaml")));
    }
    expected.push((
        "plugins.production-payment.yaml".to_string(),
        "plugins/production-payment.yaml".to_string(),
    ));
    assert_eq!(data.len(), expected.len(), "{config_map}");
    for (key, path) in &expected {
        let text = data[key]
            .as_str()
            .unwrap_or_else(|| panic!("key {key} missing"));
        let parsed: Value = serde_saphyr::from_str(text).unwrap();
        assert_eq!(
            parsed,
            yaml_file(&config.join(path)),
            "{key} vs config/{path}"
        );
    }
    // The volume maps each key to the path the operator reads under --config-dir.
    let pod = &rendered.get("Deployment", "mmf-operator")["spec"]["template"];
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "policy")
        .unwrap();
    assert_eq!(volume["configMap"]["name"], "mmf-operator-policy");
    let items: Vec<(String, String)> = volume["configMap"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                i["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(items, expected);
    let mount = operator_container(&rendered, "mmf-operator")["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "policy")
        .unwrap()
        .clone();
    assert_eq!(
        mount,
        json!({"name": "policy", "mountPath": "/etc/mmf/config", "readOnly": true}),
        "a subPath mount would never see updates"
    );
    assert!(args(&rendered, "mmf-operator").contains(&"--config-dir=/etc/mmf/config".to_string()));
}

/// `helm upgrade` with a new policy changes only the ConfigMap: the operator reloads the
/// mounted files, so the pod template (and therefore the pods) must stay the same.
#[test]
fn a_policy_change_reaches_the_config_map_without_restarting_pods() {
    let Some(python) = helm_python("chart policy upgrade") else {
        return;
    };
    let before = render(&python, &Values::defaults()).unwrap();
    let after = render(
        &python,
        &Values::defaults().set(json!({"policy": {"environments": {"production": {
            "plugins": {"security": {"sandboxing": {"resource_limits": {"memory_mb": 512}}}}
        }}}})),
    )
    .unwrap();
    let production = |r: &Rendered| -> Value {
        serde_saphyr::from_str(
            r.get("ConfigMap", "mmf-operator-policy")["data"]["production.yaml"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        production(&after)["plugins"]["security"]["sandboxing"]["resource_limits"]["memory_mb"],
        512
    );
    assert_ne!(production(&before), production(&after));
    let template = |r: &Rendered| r.get("Deployment", "mmf-operator")["spec"]["template"].clone();
    assert_eq!(
        template(&before),
        template(&after),
        "the pod template must not change with the policy (no checksum annotation)"
    );
}
