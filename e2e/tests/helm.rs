//! The real Helm v4 engine (PyPI `helm-python-sdk`) installs, upgrades, rolls back and
//! uninstalls a chart with a CRD, a Deployment, a ConfigMap and a custom resource.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, helm_python, testdata};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

async fn helm(env: &Env, python: &std::path::Path, step: &str, values: Option<Value>) -> Value {
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(testdata("helm/drive.py"))
        .arg(env.kubeconfig())
        .arg(testdata("helm/gadget"))
        .arg(step)
        .env("HOME", env.dir.path())
        .env("MMF_E2E_NAMESPACE", &env.namespace)
        .kill_on_drop(true);
    if let Some(v) = values {
        cmd.arg(v.to_string());
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "helm {step} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

fn gadgets(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "e2e.mmf.dev".into(),
        version: "v1".into(),
        api_version: "e2e.mmf.dev/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    Api::namespaced_with(client, ns, &ar)
}

#[tokio::test]
async fn helm_install_upgrade_rollback_uninstall() {
    let Some(python) = helm_python() else {
        mmf_e2e::tools::missing(
            "a python with helm_python (helm test)",
            "set MMF_E2E_PYTHON or `pip install -r e2e/requirements.txt` into <repo>/.venv",
        );
        return;
    };
    let env = Env::start().await;
    // Helm never deletes CRDs from crds/: on a real cluster the Env removes it at the end.
    env.own_crd("gadgets.e2e.mmf.dev");
    let client = env.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let message = |cm: ConfigMap| cm.data.unwrap()["message"].clone();

    let rel = helm(&env, &python, "install", Some(json!({"message": "hello"}))).await;
    assert_eq!(
        (rel["revision"].as_i64(), rel["status"].as_str()),
        (Some(1), Some("deployed")),
        "{rel}"
    );
    assert_eq!(message(cms.get("demo-config").await.unwrap()), "hello");
    let deploy: Api<Deployment> = Api::default_namespaced(client.clone());
    let d = deploy.get("demo-app").await.unwrap();
    assert_eq!(
        d.status.unwrap().ready_replicas,
        Some(1),
        "helm waited for the Deployment to be ready"
    );
    assert_eq!(
        gadgets(client.clone(), &env.namespace)
            .get("demo-gadget")
            .await
            .unwrap()
            .data["spec"]["size"],
        1
    );

    let rel = helm(
        &env,
        &python,
        "upgrade",
        Some(json!({"message": "bye", "size": 2})),
    )
    .await;
    assert_eq!(rel["revision"].as_i64(), Some(2), "{rel}");
    assert_eq!(message(cms.get("demo-config").await.unwrap()), "bye");
    assert_eq!(
        gadgets(client.clone(), &env.namespace)
            .get("demo-gadget")
            .await
            .unwrap()
            .data["spec"]["size"],
        2
    );

    let rel = helm(&env, &python, "rollback", None).await;
    assert_eq!(rel["revision"].as_i64(), Some(3), "{rel}");
    assert_eq!(message(cms.get("demo-config").await.unwrap()), "hello");
    assert_eq!(
        gadgets(client.clone(), &env.namespace)
            .get("demo-gadget")
            .await
            .unwrap()
            .data["spec"]["size"],
        1
    );
    let history = helm(&env, &python, "history", None).await;
    assert_eq!(
        history["revisions"],
        json!([[1, "superseded"], [2, "superseded"], [3, "deployed"]])
    );

    helm(&env, &python, "uninstall", None).await;
    assert!(cms.get_opt("demo-config").await.unwrap().is_none());
    assert!(deploy.get_opt("demo-app").await.unwrap().is_none());
    assert!(
        gadgets(client.clone(), &env.namespace)
            .get_opt("demo-gadget")
            .await
            .unwrap()
            .is_none()
    );
    // Helm never deletes CRDs from crds/.
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    assert!(crds.get_opt("gadgets.e2e.mmf.dev").await.unwrap().is_some());
}
