//! `mmf dev`, the README's main command, on a machine with no cluster.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;

#[test]
fn mmf_dev_applies_the_example_and_reports_everything_ready() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    let output = Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "dev",
            "--exit-when-ready",
            "--probe-addr",
            &format!("127.0.0.1:{port}"),
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(output).unwrap();
    for line in [
        "applied 2 object(s) to namespace payments (environment production)",
        "MmfPlugin/production-payment 1.0.0",
        "  SignatureVerified=True (Verified)",
        "MmfService/payment-service replicas 2/2 plugins [production-payment]",
        "  Ready=True (Ready)",
        "  Available=True (DeploymentAvailable)",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    let kubeconfig_text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        kubeconfig_text.contains("certificate-authority-data"),
        "{kubeconfig_text}"
    );
}
