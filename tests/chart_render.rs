//! The Helm chart `charts/mmf-operator`, checked with the real Helm v4 engine (PyPI
//! `helm-python-sdk`): lint, render with each shipped values file, the Kubernetes 1.33 schemas
//! (PyPI `kubernetes-validate`), the values schema, and the shape of every object the operator
//! and GitOps tools depend on.
#![allow(clippy::unwrap_used)]

mod chart_common;

use std::collections::BTreeSet;
use std::path::Path;

use chart_common::{
    Rendered, Values, chart_dir, helm_python, lint_problems, render, render_in, root, value_sets,
    venv_tool,
};
use serde_json::{Value, json};

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn operator_container(rendered: &Rendered, name: &str) -> Value {
    let deployment = rendered.get("Deployment", name);
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{deployment}");
    containers[0].clone()
}

fn args(rendered: &Rendered, name: &str) -> Vec<String> {
    strings(&operator_container(rendered, name)["args"])
        .into_iter()
        .map(str::to_string)
        .collect()
}

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
            let third_party = ["kind Issuer ", "kind Certificate ", "kind ServiceMonitor "]
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
                    Some("Issuer" | "Certificate" | "ServiceMonitor")
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

#[test]
fn deployment_runs_replicas_with_leader_election_under_the_restricted_profile() {
    let Some(python) = helm_python("chart deployment") else {
        return;
    };
    for (label, values) in value_sets() {
        let rendered = render(&python, &values).unwrap();
        let deployment = rendered
            .objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .unwrap();
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let container = operator_container(&rendered, name);
        let args = args(&rendered, name);

        // Pod Security Standard "restricted".
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{label}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let sc = &container["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{label}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{label}");
        assert_eq!(sc["runAsNonRoot"], true, "{label}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{label}");
        assert!(sc["capabilities"].get("add").is_none());
        for forbidden in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod.get(forbidden).is_none(), "{label}: {forbidden}");
        }
        // Requests, limits and probes.
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    container["resources"][kind][resource].is_string(),
                    "{label}: resources.{kind}.{resource}"
                );
            }
        }
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(
            container["livenessProbe"]["httpGet"]["port"],
            "http-metrics"
        );
        assert!(
            args.contains(&"--probe-addr=0.0.0.0:8081".to_string()),
            "{label}"
        );
        assert_eq!(args[0], "run");
        // The namespace reaches the operator through the downward API.
        let env = container["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e["name"] == "POD_NAMESPACE"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"));
        // Leader election is on unless disabled explicitly, and only then.
        let replicas = deployment["spec"]["replicas"].as_u64().unwrap();
        assert_eq!(
            args.contains(&"--leader-election=false".to_string()),
            replicas <= 1 && label.starts_with("webhook off"),
            "{label}"
        );
        // Spread over nodes by default.
        if label != "everything on" {
            let term = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                [0]["podAffinityTerm"];
            assert_eq!(term["topologyKey"], "kubernetes.io/hostname", "{label}");
            assert_eq!(
                term["labelSelector"]["matchLabels"],
                deployment["spec"]["selector"]["matchLabels"]
            );
        }
        // No checksum annotation: policy changes are reloaded, not rolled out.
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        if let Some(map) = annotations.as_object() {
            assert!(!map.keys().any(|k| k.contains("checksum")), "{label}");
        }
        // The PodDisruptionBudget only exists where it cannot block a drain forever.
        let pdb = rendered
            .objects
            .iter()
            .find(|o| o["kind"] == "PodDisruptionBudget");
        assert_eq!(pdb.is_some(), replicas > 1, "{label}");
        if let Some(pdb) = pdb {
            assert_eq!(pdb["spec"]["maxUnavailable"], 1);
            assert_eq!(
                pdb["spec"]["selector"]["matchLabels"],
                deployment["spec"]["selector"]["matchLabels"]
            );
        }
    }
    let rendered = render(&python, &Values::defaults()).unwrap();
    assert_eq!(
        rendered.get("Deployment", "mmf-operator")["spec"]["replicas"],
        2
    );
    let args = args(&rendered, "mmf-operator");
    assert!(
        args.contains(&"--environment=development".to_string()),
        "{args:?}"
    );
    assert_eq!(
        operator_container(&rendered, "mmf-operator")["image"],
        format!(
            "ghcr.io/marty-framework/mmf-operator:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let rendered = render(
        &python,
        &Values::defaults().set(json!({"replicaCount": 0, "environment": "production"})),
    )
    .unwrap();
    assert_eq!(
        rendered.get("Deployment", "mmf-operator")["spec"]["replicas"],
        0
    );
    assert!(args_of(&rendered).contains(&"--environment=production".to_string()));
}

fn args_of(rendered: &Rendered) -> Vec<String> {
    args(rendered, "mmf-operator")
}

/// LESSONS "GitOps drift": every field the API server defaults is written out, so Argo CD
/// and Flux compare equal objects. DESIGN section 6 fixes the shape.
#[test]
fn webhook_configuration_writes_out_every_defaulted_field() {
    let Some(python) = helm_python("chart webhook") else {
        return;
    };
    let rendered = render_in(&python, &Values::defaults(), "mmf-system").unwrap();
    let vwc = rendered.get("ValidatingWebhookConfiguration", "mmf-operator");
    assert!(vwc["metadata"].get("namespace").is_none(), "cluster-scoped");
    let webhook = |name: &str, operator: &str, failure_policy: &str| {
        json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {
                "namespace": "mmf-system",
                "name": "mmf-operator-webhook",
                "path": "/validate",
                "port": 443,
            }},
            "failurePolicy": failure_policy,
            "matchPolicy": "Equivalent",
            "namespaceSelector": {"matchExpressions": [
                {"key": "mmf.marty.dev/environment", "operator": operator, "values": ["production"]},
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "mmf-system"]},
            ]},
            "objectSelector": {},
            "rules": [{
                "apiGroups": ["mmf.marty.dev"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["mmfplugins", "mmfservices"],
                "scope": "Namespaced",
            }],
            "sideEffects": "None",
            "timeoutSeconds": 5,
        })
    };
    assert_eq!(
        vwc["webhooks"],
        json!([
            webhook("strict.validate.mmf.marty.dev", "In", "Fail"),
            webhook("lenient.validate.mmf.marty.dev", "NotIn", "Ignore"),
        ]),
        "self-managed mode leaves caBundle to the operator"
    );
    assert!(vwc["metadata"].get("annotations").is_none());

    // The webhook Service routes 443 to the container's webhook port on every replica.
    let service = rendered.get("Service", "mmf-operator-webhook");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "https-webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        rendered.get("Deployment", "mmf-operator")["spec"]["selector"]["matchLabels"]
    );
    let args = args_of(&rendered);
    for arg in [
        "--webhook-addr=0.0.0.0:9443",
        "--webhook-service=mmf-operator-webhook",
        "--webhook-configuration=mmf-operator",
        "--webhook-secret=mmf-operator-webhook-tls",
        "--fail-closed-environments=production",
    ] {
        assert!(args.contains(&arg.to_string()), "{arg} not in {args:?}");
    }
    assert!(!args.iter().any(|a| a.starts_with("--webhook-cert-dir")));

    // The lockout recovery is one line away.
    assert!(
        rendered
            .notes()
            .contains("kubectl delete validatingwebhookconfiguration mmf-operator"),
        "{}",
        rendered.notes()
    );

    // A release in kube-system excludes it once; more fail-closed environments reach both.
    let rendered = render_in(
        &python,
        &Values::defaults()
            .set(json!({"webhook": {"failClosedEnvironments": ["production", "staging"]}})),
        "kube-system",
    )
    .unwrap();
    let vwc = rendered.get("ValidatingWebhookConfiguration", "mmf-operator");
    for webhook in vwc["webhooks"].as_array().unwrap() {
        let expressions = &webhook["namespaceSelector"]["matchExpressions"];
        assert_eq!(expressions[0]["values"], json!(["production", "staging"]));
        assert_eq!(expressions[1]["values"], json!(["kube-system"]));
    }
}

#[test]
fn cert_manager_mode_issues_mounts_and_injects_the_certificate() {
    let Some(python) = helm_python("chart cert-manager") else {
        return;
    };
    let rendered = render(&python, &Values::chart_file("values-cert-manager.yaml")).unwrap();
    let vwc = rendered.get("ValidatingWebhookConfiguration", "mmf-operator");
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "mmf-system/mmf-operator-webhook"
    );
    for webhook in vwc["webhooks"].as_array().unwrap() {
        assert!(webhook["clientConfig"].get("caBundle").is_none());
    }
    let issuer = rendered.get("Issuer", "mmf-operator-selfsigned");
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));
    let certificate = rendered.get("Certificate", "mmf-operator-webhook");
    assert_eq!(
        certificate["spec"]["secretName"],
        "mmf-operator-webhook-tls"
    );
    assert_eq!(
        certificate["spec"]["dnsNames"],
        json!([
            "mmf-operator-webhook.mmf-system.svc",
            "mmf-operator-webhook.mmf-system.svc.cluster.local"
        ])
    );
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"name": "mmf-operator-selfsigned", "kind": "Issuer", "group": "cert-manager.io"})
    );
    let args = args_of(&rendered);
    assert!(args.contains(&"--webhook-cert-dir=/etc/mmf/webhook-tls".to_string()));
    assert!(
        !args.iter().any(|a| a.starts_with("--webhook-secret")),
        "{args:?}"
    );
    let pod = &rendered.get("Deployment", "mmf-operator")["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "webhook-tls")
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "mmf-operator-webhook-tls");
    let mounts = &operator_container(&rendered, "mmf-operator")["volumeMounts"];
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "webhook-tls"
                && m["mountPath"] == "/etc/mmf/webhook-tls"
                && m["readOnly"] == true)
    );
    // cert-manager owns the Secret: the operator gets no Secret rights and never patches the
    // webhook configuration.
    let role = rendered.get("Role", "mmf-operator");
    assert!(!role.to_string().contains("secrets"), "{role}");
    let cluster_role = rendered.get("ClusterRole", "mmf-operator");
    for rule in cluster_role["rules"].as_array().unwrap() {
        if rule["resources"] == json!(["validatingwebhookconfigurations"]) {
            assert_eq!(rule["verbs"], json!(["get", "list", "watch"]));
        }
    }

    // An existing issuer replaces the chart's self-signed one.
    let rendered = render(
        &python,
        &Values::chart_file("values-cert-manager.yaml").set(json!({"webhook": {"certManager": {
            "issuerRef": {"name": "platform-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
        }}})),
    )
    .unwrap();
    assert!(rendered.objects.iter().all(|o| o["kind"] != "Issuer"));
    assert_eq!(
        rendered.get("Certificate", "mmf-operator-webhook")["spec"]["issuerRef"]["name"],
        "platform-ca"
    );
}

/// Least privilege: exactly the verbs and resources the operator uses, no wildcards.
#[test]
fn rbac_grants_only_what_the_operator_uses() {
    let Some(python) = helm_python("chart rbac") else {
        return;
    };
    let rendered = render(&python, &Values::defaults()).unwrap();
    let cluster_role = rendered.get("ClusterRole", "mmf-operator");
    assert_eq!(
        cluster_role["rules"],
        json!([
            {"apiGroups": ["mmf.marty.dev"], "resources": ["mmfplugins", "mmfservices"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["mmf.marty.dev"], "resources": ["mmfplugins/status", "mmfservices/status"], "verbs": ["get", "patch", "update"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "resourceNames": ["mmf-operator"], "verbs": ["patch", "update"]},
        ])
    );
    let role = rendered.get("Role", "mmf-operator");
    assert_eq!(role["metadata"]["namespace"], "mmf-system");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["mmf-operator"], "verbs": ["get", "update", "patch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mmf-operator-webhook-tls"], "verbs": ["get", "update", "patch"]},
        ])
    );
    for (kind, role_kind) in [
        ("ClusterRoleBinding", "ClusterRole"),
        ("RoleBinding", "Role"),
    ] {
        let binding = rendered.get(kind, "mmf-operator");
        assert_eq!(binding["roleRef"]["kind"], role_kind);
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "mmf-operator", "namespace": "mmf-system"}])
        );
    }
    assert_eq!(
        rendered.get("Deployment", "mmf-operator")["spec"]["template"]["spec"]["serviceAccountName"],
        "mmf-operator"
    );
    // No wildcard anywhere, in any value set.
    for (label, values) in value_sets() {
        let rendered = render(&python, &values).unwrap();
        for object in rendered
            .objects
            .iter()
            .filter(|o| matches!(o["kind"].as_str(), Some("ClusterRole" | "Role")))
        {
            assert!(
                !object["rules"].to_string().contains('*'),
                "{label}: {object}"
            );
        }
    }
}

#[test]
fn metrics_service_monitor_network_policy_and_helm_test() {
    let Some(python) = helm_python("chart extras") else {
        return;
    };
    let rendered = render(&python, &Values::defaults()).unwrap();
    let selector =
        rendered.get("Deployment", "mmf-operator")["spec"]["selector"]["matchLabels"].clone();
    let metrics = rendered.get("Service", "mmf-operator-metrics");
    assert_eq!(metrics["spec"]["selector"], selector);
    assert_eq!(metrics["spec"]["ports"][0]["port"], 8081);
    assert!(
        rendered
            .objects
            .iter()
            .all(|o| o["kind"] != "ServiceMonitor")
    );
    let policy = rendered.get("NetworkPolicy", "mmf-operator");
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"], selector);
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));

    // `helm test`: a hook pod that calls the probe port and the webhook, and that no Service,
    // PodDisruptionBudget or NetworkPolicy of the operator selects.
    let test = rendered.get("Pod", "mmf-operator-test");
    assert_eq!(test["metadata"]["annotations"]["helm.sh/hook"], "test");
    let labels = test["metadata"]["labels"].as_object().unwrap();
    let selects_test_pod = selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    assert!(
        !selects_test_pod,
        "the operator's selector matches the test pod: {labels:?}"
    );
    let script = test["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap();
    for needle in [
        "http://mmf-operator-metrics.mmf-system.svc:8081",
        "/healthz",
        "/readyz",
        "/metrics",
        "https://mmf-operator-webhook.mmf-system.svc:443/validate",
    ] {
        assert!(script.contains(needle), "{needle} not in {script}");
    }
    assert_eq!(test["spec"]["restartPolicy"], "Never");

    // Restricting who may scrape still lets `helm test` in.
    let rendered = render(
        &python,
        &Values::defaults().set(json!({"networkPolicy": {"metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]}})),
    )
    .unwrap();
    let policy = rendered.get("NetworkPolicy", "mmf-operator");
    let test_labels = rendered.get("Pod", "mmf-operator-test")["metadata"]["labels"]
        .as_object()
        .unwrap()
        .clone();
    let from = policy["spec"]["ingress"][1]["from"].as_array().unwrap();
    assert_eq!(from.len(), 2, "{policy}");
    assert!(
        from[1]["podSelector"]["matchLabels"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| test_labels.get(k) == Some(v)),
        "{policy}"
    );

    let rendered = render(
        &python,
        &Values::defaults().set(json!({"metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}}})),
    )
    .unwrap();
    let monitor = rendered.get("ServiceMonitor", "mmf-operator");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "http-metrics", "path": "/metrics", "interval": "30s"}])
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "metrics"
    );
}

#[test]
fn webhook_off_renders_no_webhook_objects_and_no_webhook_rights() {
    let Some(python) = helm_python("chart webhook off") else {
        return;
    };
    let rendered = render(
        &python,
        &Values::defaults().set(json!({"webhook": {"enabled": false}})),
    )
    .unwrap();
    for (kind, name) in [
        ("ValidatingWebhookConfiguration", "mmf-operator"),
        ("Service", "mmf-operator-webhook"),
    ] {
        assert!(rendered.find(kind, name).is_none(), "{kind}/{name}");
    }
    assert!(args_of(&rendered).contains(&"--webhook-addr=none".to_string()));
    let text = rendered.to_yaml();
    assert!(!text.contains("validatingwebhookconfigurations"));
    assert!(!text.contains("secrets"));
    assert!(
        !rendered
            .notes()
            .contains("delete validatingwebhookconfiguration")
    );
}
