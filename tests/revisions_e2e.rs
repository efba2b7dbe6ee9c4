//! Plugin revisions end to end: the real `mmf run` against a cluster, driven with kubectl and
//! the `kubectl mmf` plugin as a user would. Versions coexist, a follower moves and a pin
//! stays, an unsigned version leaves followers on the last good one, a rollback is one patch,
//! and history is trimmed at the limit. Runs against the in-memory test API server, or
//! unchanged against a real cluster when `MMF_E2E_KUBECONFIG` is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, eventually, require_tool, sign};
use serde_json::Value;

const OPERATOR: &[&str] = &["--webhook-addr", "none", "--leader-election=false"];
const PLUGIN: &str = "production-payment";

/// The shipped plugin at `version`: signed with the demo key, or with its signature removed.
fn plugin_version(dir: &Path, version: &str, signed: bool, extra_spec: &str) -> PathBuf {
    let shipped = std::fs::read_to_string(
        common::repo().join("plugins/production_payment_service/plugin.yaml"),
    )
    .unwrap();
    let without_signature = shipped.split("  signature:\n").next().unwrap().to_owned();
    let text = without_signature.replacen(
        "  version: 1.0.0\n",
        &format!("  version: {version}\n{extra_spec}"),
        1,
    );
    let path = dir.join(format!("plugin-{version}.yaml"));
    std::fs::write(&path, text).unwrap();
    if signed {
        sign(&path);
    }
    path
}

/// The shipped service renamed to `name`, its plugin entry pinned to `version` when given.
fn service(dir: &Path, name: &str, version: Option<&str>) -> PathBuf {
    let shipped = std::fs::read_to_string(
        common::repo().join("plugins/production_payment_service/payment-service.yaml"),
    )
    .unwrap();
    let mut text = shipped.replace("name: payment-service", &format!("name: {name}"));
    if let Some(version) = version {
        text = text.replace(
            "    - name: production-payment\n",
            &format!("    - name: production-payment\n      version: \"{version}\"\n"),
        );
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn apply(cluster: &Cluster, namespace: &str, path: &Path) {
    cluster.kubectl_ok(&["apply", "-n", namespace, "-f", &path.display().to_string()]);
}

/// `(version, revision, requested, reason)` of the service's plugin entry.
fn loaded(cluster: &Cluster, namespace: &str, service: &str) -> (Value, Value, Value, Value) {
    let object = cluster
        .get_json(namespace, &format!("mmfservice/{service}"))
        .unwrap_or_default();
    let entry = &object["status"]["plugins"][0];
    (
        entry["version"].clone(),
        entry["revision"].clone(),
        entry["requested"].clone(),
        entry["reason"].clone(),
    )
}

fn revision_names(cluster: &Cluster, namespace: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "mmfpluginrevisions",
        "-n",
        namespace,
        "-o",
        "json",
    ]))
    .unwrap();
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// `kubectl mmf ...` through a `kubectl-mmf` symlink to the built binary on PATH.
fn kubectl_mmf(cluster: &Cluster, args: &[&str]) -> String {
    let bin = cluster.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("kubectl-mmf");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mmf"), &link).unwrap();
    }
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let output = std::process::Command::new("kubectl")
        .arg("mmf")
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl mmf {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    assert!(eventually(Duration::from_secs(60), &mut check), "{what}");
}

#[test]
fn versions_coexist_followers_move_pins_stay_bad_versions_fall_back_and_rollback_pins() {
    if !require_tool("kubectl") {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("revisions", "production");
    let _operator = cluster.operator(OPERATOR);
    let dir = cluster.dir.path().to_owned();
    let revision = |version: &str| Value::String(format!("{PLUGIN}-{version}"));
    let text = |s: &str| Value::String(s.to_owned());

    // 1.0.0 and two services: one follows the latest, one pins 1.0.0.
    apply(
        &cluster,
        &namespace,
        &plugin_version(&dir, "1.0.0", true, ""),
    );
    apply(&cluster, &namespace, &service(&dir, "follower", None));
    apply(
        &cluster,
        &namespace,
        &service(&dir, "pinned", Some("=1.0.0")),
    );
    wait_for("both services load 1.0.0 from its revision", || {
        loaded(&cluster, &namespace, "follower")
            == (text("1.0.0"), revision("1.0.0"), text("*"), Value::Null)
            && loaded(&cluster, &namespace, "pinned")
                == (
                    text("1.0.0"),
                    revision("1.0.0"),
                    text("=1.0.0"),
                    Value::Null,
                )
    });
    let recorded = cluster
        .get_json(&namespace, &format!("mmfpluginrevision/{PLUGIN}-1.0.0"))
        .unwrap();
    let plugin = cluster
        .get_json(&namespace, &format!("mmfplugin/{PLUGIN}"))
        .unwrap();
    assert_eq!(recorded["spec"]["digest"], plugin["status"]["digest"]);
    assert_eq!(recorded["status"]["verified"], true);
    let owner = &recorded["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"], &owner["controller"]),
        (&text("MmfPlugin"), &text(PLUGIN), &Value::Bool(true))
    );

    // A signed 1.1.0: the follower moves, the pin stays.
    apply(
        &cluster,
        &namespace,
        &plugin_version(&dir, "1.1.0", true, ""),
    );
    wait_for("the follower moves to 1.1.0", || {
        loaded(&cluster, &namespace, "follower")
            == (text("1.1.0"), revision("1.1.0"), text("*"), Value::Null)
    });
    assert_eq!(
        loaded(&cluster, &namespace, "pinned"),
        (
            text("1.0.0"),
            revision("1.0.0"),
            text("=1.0.0"),
            Value::Null
        )
    );

    // An unsigned 1.2.0 in production: the follower stays on 1.1.0 and says why, once.
    apply(
        &cluster,
        &namespace,
        &plugin_version(&dir, "1.2.0", false, ""),
    );
    let staying = format!(
        "{PLUGIN} 1.2.0 rejected: spec.signature is missing: sign the plugin with `mmf sign --key KEY.pem --key-id ID -f FILE`; staying on 1.1.0"
    );
    wait_for("the follower stays on the last known good 1.1.0", || {
        loaded(&cluster, &namespace, "follower")
            == (text("1.1.0"), revision("1.1.0"), text("*"), text(&staying))
    });
    let unverified = cluster
        .get_json(&namespace, &format!("mmfpluginrevision/{PLUGIN}-1.2.0"))
        .unwrap();
    assert_eq!(unverified["status"]["verified"], false);
    let follower = cluster.get_json(&namespace, "mmfservice/follower").unwrap();
    let resolved = common::condition(&follower, "PluginsResolved").unwrap();
    assert_eq!(
        (
            &resolved["status"],
            &resolved["reason"],
            &resolved["message"]
        ),
        (&text("True"), &text("LastKnownGood"), &text(&staying))
    );
    let warnings = || {
        let events: Value = serde_json::from_str(&cluster.kubectl_ok(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &namespace,
            "-o",
            "json",
        ]))
        .unwrap();
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == "LastKnownGood" && e["regarding"]["name"] == "follower")
            .map(|e| (e["type"].clone(), e["note"].clone()))
            .collect::<Vec<_>>()
    };
    wait_for("a LastKnownGood warning", || !warnings().is_empty());
    assert_eq!(warnings(), [(text("Warning"), text(&staying))]);

    // Rollback in one command: the pin is written, the follower loads 1.0.0.
    let out = kubectl_mmf(
        &cluster,
        &["rollback", "follower", PLUGIN, "1.0.0", "-n", &namespace],
    );
    assert_eq!(
        out,
        format!("mmfservice/follower pinned {PLUGIN} to =1.0.0\n")
    );
    let follower = cluster.get_json(&namespace, "mmfservice/follower").unwrap();
    assert_eq!(follower["spec"]["plugins"][0]["version"], "=1.0.0");
    wait_for("the rolled-back follower loads 1.0.0", || {
        loaded(&cluster, &namespace, "follower")
            == (
                text("1.0.0"),
                revision("1.0.0"),
                text("=1.0.0"),
                Value::Null,
            )
    });
    let history = kubectl_mmf(&cluster, &["history", PLUGIN, "-n", &namespace]);
    let rows: Vec<Vec<&str>> = history
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    fn columns<'a>(row: &[&'a str]) -> Vec<&'a str> {
        let mut picked = vec![row[0], row[1], row[2]];
        picked.extend(row.get(5));
        picked
    }
    assert_eq!(
        rows.iter().map(|row| columns(row)).collect::<Vec<_>>(),
        [
            vec!["REVISION", "VERSION", "VERIFIED", "SERVICES"],
            vec!["production-payment-1.2.0", "1.2.0", "false", "-"],
            vec!["production-payment-1.1.0", "1.1.0", "true", "-"],
            vec![
                "production-payment-1.0.0",
                "1.0.0",
                "true",
                "follower,pinned"
            ],
        ],
        "{history}"
    );

    // 1.3.0 with a history limit of 1: 1.1.0 goes, 1.0.0 stays while services load it.
    apply(
        &cluster,
        &namespace,
        &plugin_version(&dir, "1.3.0", true, "  revisionHistoryLimit: 1\n"),
    );
    let expected = [revision("1.0.0"), revision("1.2.0"), revision("1.3.0")]
        .map(|r| r.as_str().unwrap().to_owned());
    wait_for("history trimmed to the limit", || {
        revision_names(&cluster, &namespace) == expected
    });
}
