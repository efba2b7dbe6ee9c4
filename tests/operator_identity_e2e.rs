//! How `mmf run` presents itself: the User-Agent it sends, and its errors on one line with
//! the fix. The real binary against the test API server.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Cluster, free_port, repo, require_tool};

#[test]
fn the_operator_sends_its_name_and_version_as_user_agent() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let _operator = cluster.operator(&["--webhook-addr", "none", "--leader-election=false"]);
    let Some(agents) = cluster.user_agents() else {
        return; // a real cluster does not tell
    };
    let ours = format!("mmf-operator/{}", env!("CARGO_PKG_VERSION"));
    println!("figure: user agents seen: {agents:?}");
    assert!(agents.contains(&ours), "{agents:?}");
    assert!(
        !agents
            .iter()
            .any(|a| a.is_empty() || a.starts_with("kube-rs")),
        "a request without our User-Agent: {agents:?}"
    );
}

#[test]
fn a_missing_operator_namespace_is_one_line_with_the_fix() {
    if !require_tool("kubectl") {
        return;
    }
    let cluster = Cluster::start();
    if cluster.server.is_none() {
        return; // mmf-system may well exist on a real cluster
    }
    let output = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .args(["run", "--config-dir"])
        .arg(repo().join("config"))
        .args(["--webhook-addr", "none"])
        .args(["--probe-addr", &format!("127.0.0.1:{}", free_port())])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: the operator namespace \"mmf-system\" does not exist: \
         create namespace mmf-system or pass --namespace"
    );
}
