//! Real kubectl against the in-memory API server, or the real cluster named by
//! `MMF_E2E_KUBECONFIG`: what a user sees must match kube-apiserver. Each test works in a
//! namespace of its own; on a real cluster the Widget CRD is deleted at the end of each test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, skip_without_kubectl, testdata};
use tokio::io::{AsyncBufReadExt, BufReader};

/// kube-controller-manager publishes `kube-root-ca.crt` into every namespace.
const NOT_ROOT_CA: &str = "--field-selector=metadata.name!=kube-root-ca.crt";

const SECOND_MANAGER: &str =
    "apiVersion: e2e.mmf.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 9\n";

#[tokio::test]
async fn custom_resource_is_served_with_printer_columns_short_names_and_categories() {
    if skip_without_kubectl("custom_resource_is_served") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    let w = testdata("kubectl/widget.yaml");
    assert_eq!(
        env.kubectl(&["apply", "-f", w.to_str().unwrap()]).await,
        "widget.e2e.mmf.dev/w1 created\n"
    );
    let table = "NAME   SIZE   COLOR   READY\nw1     3      blue    \n";
    assert_eq!(env.kubectl(&["get", "widgets"]).await, table);
    assert_eq!(env.kubectl(&["get", "wg"]).await, table);
    assert_eq!(env.kubectl(&["get", "mmf"]).await, table);
    // Re-applying an unchanged manifest is a no-op.
    assert_eq!(
        env.kubectl(&["apply", "-f", w.to_str().unwrap()]).await,
        "widget.e2e.mmf.dev/w1 unchanged\n"
    );
}

#[tokio::test]
async fn explain_shows_the_crd_schema() {
    if skip_without_kubectl("explain_shows_the_crd_schema") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    // kube-apiserver publishes a new CRD's OpenAPI a few seconds after it is Established.
    let mut tries = 0;
    let out = loop {
        let out = env.kubectl_output(&["explain", "widgets.spec"], None).await;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        tries += 1;
        assert!(
            tries < 120,
            "kubectl explain never found the CRD: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(out.contains("KIND:       Widget"), "{out}");
    assert!(out.contains("Desired state of the widget."), "{out}");
    assert!(out.contains("size\t<integer> -required-"), "{out}");
    assert!(out.contains("Paint colour."), "{out}");
}

#[tokio::test]
async fn merge_patch_changes_spec_and_bumps_generation_only_for_spec() {
    if skip_without_kubectl("merge_patch") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    env.kubectl(&[
        "apply",
        "-f",
        testdata("kubectl/widget.yaml").to_str().unwrap(),
    ])
    .await;
    let out = env
        .kubectl(&[
            "patch",
            "widget",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":5}}"#,
        ])
        .await;
    assert_eq!(out, "widget.e2e.mmf.dev/w1 patched\n");
    let jp = "-o=jsonpath={.spec.size} {.metadata.generation}";
    assert_eq!(env.kubectl(&["get", "widget", "w1", jp]).await, "5 2");
    env.kubectl(&["label", "widget", "w1", "team=a"]).await;
    env.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ])
    .await;
    assert_eq!(env.kubectl(&["get", "widget", "w1", jp]).await, "5 2");
    // The status subresource ignores spec changes.
    env.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":1}}"#,
    ])
    .await;
    assert_eq!(env.kubectl(&["get", "widget", "w1", jp]).await, "5 2");
}

#[tokio::test]
async fn server_side_apply_by_a_second_manager_conflicts_unless_forced() {
    if skip_without_kubectl("server_side_apply_conflict") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    let w = testdata("kubectl/widget.yaml");
    let out = env
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=alice",
            "-f",
            w.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out, "widget.e2e.mmf.dev/w1 serverside-applied\n");
    let err = env
        .kubectl_fails(
            &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
            Some(SECOND_MANAGER),
        )
        .await;
    assert!(
        err.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"alice\": .spec.size\n"
        ),
        "{err}"
    );
    let out = env
        .kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=bob",
                "--force-conflicts",
                "-f",
                "-",
            ],
            Some(SECOND_MANAGER),
        )
        .await;
    assert_eq!(out, "widget.e2e.mmf.dev/w1 serverside-applied\n");
    let managers = env
        .kubectl(&[
            "get",
            "widget",
            "w1",
            "--show-managed-fields",
            "-o=jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert_eq!(managers, "bob");
    assert_eq!(
        env.kubectl(&["get", "widget", "w1", "-o=jsonpath={.spec.size}"])
            .await,
        "9"
    );
}

#[tokio::test]
async fn invalid_values_and_unknown_fields_are_rejected_like_kube_apiserver() {
    if skip_without_kubectl("invalid_values") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    let bad =
        "apiVersion: e2e.mmf.dev/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: 0\n";
    let err = env.kubectl_fails(&["apply", "-f", "-"], Some(bad)).await;
    assert_eq!(
        err,
        "The Widget \"bad\" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1\n"
    );
    let unknown = "apiVersion: e2e.mmf.dev/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: 1\n  extra: x\n";
    let err = env
        .kubectl_fails(&["create", "-f", "-"], Some(unknown))
        .await;
    assert!(
        err.contains("strict decoding error: unknown field \"spec.extra\""),
        "{err}"
    );
}

#[tokio::test]
async fn wait_returns_once_the_ready_condition_is_set() {
    if skip_without_kubectl("wait_for_ready") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    env.kubectl(&[
        "apply",
        "-f",
        testdata("kubectl/widget.yaml").to_str().unwrap(),
    ])
    .await;
    let waiter = env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "widget/w1",
        "--timeout=20s",
    ]);
    let setter = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        env.kubectl(&[
            "patch",
            "widget",
            "w1",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
        ])
        .await
    };
    let (out, _) = tokio::join!(waiter, setter);
    assert_eq!(out, "widget.e2e.mmf.dev/w1 condition met\n");
    assert_eq!(
        env.kubectl(&["get", "wg"]).await,
        "NAME   SIZE   COLOR   READY\nw1     3      blue    True\n"
    );
}

fn owned_configmap(name: &str, owner_uid: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - apiVersion: e2e.mmf.dev/v1\n    kind: Widget\n    name: w1\n    uid: {owner_uid}\n    blockOwnerDeletion: true\ndata:\n  a: \"1\"\n"
    )
}

#[tokio::test]
async fn delete_cascades_to_owned_objects_in_background_and_foreground() {
    if skip_without_kubectl("delete_cascades") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    for cascade in ["background", "foreground"] {
        env.kubectl(&[
            "apply",
            "-f",
            testdata("kubectl/widget.yaml").to_str().unwrap(),
        ])
        .await;
        let uid = env
            .kubectl(&["get", "widget", "w1", "-o=jsonpath={.metadata.uid}"])
            .await;
        env.kubectl_stdin(&["apply", "-f", "-"], Some(&owned_configmap("child", &uid)))
            .await;
        env.kubectl_stdin(
            &["apply", "-f", "-"],
            Some(&owned_configmap("child2", &uid)),
        )
        .await;
        env.kubectl(&["create", "configmap", "unrelated"]).await;
        let out = env
            .kubectl(&["delete", "widget", "w1", &format!("--cascade={cascade}")])
            .await;
        assert_eq!(out, "widget.e2e.mmf.dev \"w1\" deleted\n");
        env.kubectl(&[
            "wait",
            "--for=delete",
            "configmap/child",
            "configmap/child2",
            "--timeout=60s",
        ])
        .await;
        assert_eq!(
            env.kubectl(&["get", "configmaps", "-o=name", NOT_ROOT_CA])
                .await,
            "configmap/unrelated\n"
        );
        env.kubectl(&["delete", "configmap", "unrelated"]).await;
    }
}

#[tokio::test]
async fn get_watch_prints_each_change() {
    if skip_without_kubectl("get_watch") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    env.kubectl(&[
        "apply",
        "-f",
        testdata("kubectl/widget.yaml").to_str().unwrap(),
    ])
    .await;
    let mut child = env
        .kubectl_command(&["get", "widgets", "--watch", "--request-timeout=10s"])
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    // The initial list is printed once the watch is established; change the object then.
    while seen.len() < 2 {
        seen.push(
            lines
                .next_line()
                .await
                .unwrap()
                .expect("kubectl exited early"),
        );
    }
    env.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":4,"color":"red"}}"#,
    ])
    .await;
    seen.push(
        lines
            .next_line()
            .await
            .unwrap()
            .expect("no line for the change"),
    );
    child.kill().await.unwrap();
    assert_eq!(
        seen,
        [
            "NAME   SIZE   COLOR   READY",
            "w1     3      blue    ",
            "w1     4      red     "
        ]
    );
}

#[tokio::test]
async fn deployments_use_strategic_merge_and_become_available() {
    if skip_without_kubectl("deployments") {
        return;
    }
    let env = Env::start().await;
    let deploy = |env_value: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1\n        env:\n        - name: MODE\n          value: {env_value}\n      - name: sidecar\n        image: busybox\n"
        )
    };
    env.kubectl_stdin(&["apply", "-f", "-"], Some(&deploy("a")))
        .await;
    let out = env
        .kubectl_output(&["apply", "-f", "-"], Some(&deploy("b")))
        .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deployment.apps/web configured\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no client-side patch warnings"
    );
    let images = env.kubectl(&["get", "deploy", "web", "-o=jsonpath={.spec.template.spec.containers[*].name} {.spec.template.spec.containers[0].env[0].value} {.metadata.generation}"]).await;
    assert_eq!(images, "web sidecar b 2");
    env.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    let out = env
        .kubectl(&[
            "get",
            "deployments",
            "-o=custom-columns=NAME:.metadata.name,READY:.status.readyReplicas",
        ])
        .await;
    assert_eq!(out, "NAME   READY\nweb    1\n");
    let out = env.kubectl(&["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#]).await;
    assert_eq!(out, "deployment.apps/web patched\n");
    let names = env
        .kubectl(&[
            "get",
            "deploy",
            "web",
            "-o=jsonpath={.spec.template.spec.containers[*].name}",
        ])
        .await;
    assert_eq!(names, "web");
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    if skip_without_kubectl("namespace_deletion") {
        return;
    }
    let env = Env::start().await;
    let team = format!("{}-team", env.namespace);
    let team = team.as_str();
    env.kubectl(&["create", "namespace", team]).await;
    env.kubectl(&[
        "-n",
        team,
        "create",
        "configmap",
        "c1",
        "--from-literal=a=b",
    ])
    .await;
    env.kubectl(&[
        "-n",
        team,
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=a=b",
    ])
    .await;
    assert_eq!(
        env.kubectl(&["delete", "namespace", team]).await,
        format!("namespace \"{team}\" deleted\n")
    );
    let err = env.kubectl_fails(&["get", "namespace", team], None).await;
    assert_eq!(
        err,
        format!("Error from server (NotFound): namespaces \"{team}\" not found\n")
    );
    assert_eq!(
        env.kubectl(&["-n", team, "get", "configmaps,secrets", "-o=name"])
            .await,
        ""
    );
}

#[tokio::test]
async fn imperative_create_and_scale_work_for_deployments() {
    if skip_without_kubectl("imperative_create_and_scale") {
        return;
    }
    let env = Env::start().await;
    let out = env
        .kubectl(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1",
            "--port=80",
        ])
        .await;
    assert_eq!(out, "deployment.apps/web created\n");
    assert_eq!(
        env.kubectl(&["scale", "deployment", "web", "--replicas=3"])
            .await,
        "deployment.apps/web scaled\n"
    );
    env.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    let out = env.kubectl(&["get", "deployment", "web", "-o=jsonpath={.spec.replicas} {.status.readyReplicas} {.spec.template.spec.containers[0].ports[0]}"]).await;
    assert_eq!(out, r#"3 3 {"containerPort":80,"protocol":"TCP"}"#);
    let out = env.kubectl(&["get", "deployments"]).await;
    assert!(
        out.starts_with(
            "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    3/3     3            3           "
        ),
        "{out}"
    );
}

#[tokio::test]
async fn cel_rules_and_transition_rules_are_enforced() {
    if skip_without_kubectl("cel_rules") {
        return;
    }
    let env = Env::start().await;
    env.install_widget_crd().await;
    let big =
        "apiVersion: e2e.mmf.dev/v1\nkind: Widget\nmetadata:\n  name: big\nspec:\n  size: 101\n";
    let err = env.kubectl_fails(&["apply", "-f", "-"], Some(big)).await;
    assert_eq!(
        err,
        "The Widget \"big\" is invalid: spec: Invalid value: size must be at most 100\n"
    );
    env.kubectl(&[
        "apply",
        "-f",
        testdata("kubectl/widget.yaml").to_str().unwrap(),
    ])
    .await;
    env.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"color":"red"}}"#,
    ])
    .await;
    let err = env
        .kubectl_fails(
            &[
                "patch",
                "widget",
                "w1",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"color":"green"}}"#,
            ],
            None,
        )
        .await;
    assert_eq!(
        err,
        "The Widget \"w1\" is invalid: spec.color: Invalid value: \"green\": color can only be changed from blue\n"
    );
}
