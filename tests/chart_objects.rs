//! The objects the chart renders, checked one by one: the operator Deployment under the
//! restricted profile, the webhook configuration with every defaulted field written out,
//! cert-manager mode, least-privilege RBAC, and the optional objects.
#![allow(clippy::unwrap_used)]

mod chart_common;

use chart_common::{
    Rendered, Values, args, helm_python, operator_container, render, render_in, value_sets,
};
use serde_json::json;

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
        "--webhook-ca-validity=1825d",
        "--webhook-cert-validity=365d",
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
            {"apiGroups": ["mmf.marty.dev"], "resources": ["mmfpluginrevisions"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
            {"apiGroups": ["mmf.marty.dev"], "resources": ["mmfpluginrevisions/status"], "verbs": ["get", "patch"]},
            {"apiGroups": ["mmf.marty.dev"], "resources": ["mmfplugins/finalizers", "mmfservices/finalizers"], "verbs": ["update"]},
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
        json!([{"port": "http-metrics", "path": "/metrics", "interval": "30s", "honorLabels": true}])
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

/// The chart templates the webhook configuration; the operator generates the same object for
/// `--webhook-url` runs. One shape, two producers: they must never drift apart.
#[test]
fn chart_webhook_configuration_equals_the_operators_own() {
    let Some(python) = helm_python("chart vs operator webhook configuration") else {
        return;
    };
    // Default values, and a production default environment (unlabelled namespaces fail closed).
    for (values, unlabelled_fail_closed) in [
        (Values::defaults(), false),
        (
            Values::defaults().set(json!({"environment": "production"})),
            true,
        ),
    ] {
        let rendered = render(&python, &values).unwrap();
        let mut chart = rendered
            .get("ValidatingWebhookConfiguration", "mmf-operator")
            .clone();
        let generated = mmf_operator::webhook::configuration(
            "mmf-operator",
            &mmf_operator::webhook::Endpoint::Service {
                namespace: "mmf-system".into(),
                name: "mmf-operator-webhook".into(),
            },
            b"",
            "mmf-system",
            &["production".to_owned()],
            unlabelled_fail_closed,
        );
        let mut generated = serde_json::to_value(generated).unwrap();
        // The chart leaves caBundle to the operator; metadata carries Helm's labels.
        for object in [&mut chart, &mut generated] {
            for webhook in object["webhooks"].as_array_mut().unwrap() {
                webhook["clientConfig"]
                    .as_object_mut()
                    .unwrap()
                    .remove("caBundle");
            }
        }
        assert_eq!(
            chart["webhooks"], generated["webhooks"],
            "unlabelled_fail_closed={unlabelled_fail_closed}"
        );
        assert_eq!(chart["metadata"]["name"], generated["metadata"]["name"]);
    }
}
