//! `mmf dev`, the README's main command, on a machine with no cluster.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;

use assert_cmd::Command;

/// What one `mmf dev --exit-when-ready` run printed.
struct Run {
    stdout: String,
    stderr: String,
}

/// Runs `mmf dev --exit-when-ready` from the repository root with the kubeconfig and the log
/// file in `dir`, plus `args`; asserts it succeeded.
fn dev(dir: &Path, args: &[&str]) -> Run {
    let output = Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["dev", "--exit-when-ready", "--kubeconfig"])
        .arg(dir.join("kubeconfig"))
        .arg("--log-file")
        .arg(dir.join("operator.log"))
        .args(args)
        .env_remove("RUST_LOG")
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .get_output()
        .clone();
    Run {
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_everything_ready(stdout: &str) {
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
}

/// The port of the `http(s)://127.0.0.1:PORT/...` URL on the stdout line starting with `prefix`.
fn port_on_line(stdout: &str, prefix: &str) -> (u16, String) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"));
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no 127.0.0.1 port in {line:?}"));
    (port, line.to_owned())
}

#[test]
fn mmf_dev_applies_the_example_and_reports_everything_ready() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let run = dev(
        dir.path(),
        &[
            "--probe-addr",
            &format!("127.0.0.1:{port}"),
            "--webhook-addr",
            "none",
        ],
    );
    assert_everything_ready(&run.stdout);
    let kubeconfig_text = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    assert!(
        kubeconfig_text.contains("certificate-authority-data"),
        "{kubeconfig_text}"
    );
}

#[test]
fn mmf_dev_falls_back_to_free_ports_when_8081_and_9443_are_taken_and_still_works() {
    // Held by this test, or by someone else already: either way taken for mmf dev.
    let _probe = TcpListener::bind("127.0.0.1:8081");
    let _webhook = TcpListener::bind("127.0.0.1:9443");
    assert!(TcpListener::bind("127.0.0.1:8081").is_err());
    assert!(TcpListener::bind("127.0.0.1:9443").is_err());
    let dir = tempfile::tempdir().unwrap();
    let run = dev(dir.path(), &[]);

    let (probe, line) = port_on_line(&run.stdout, "operator probes and metrics: ");
    assert_ne!(probe, 8081);
    assert_eq!(
        line,
        format!(
            "operator probes and metrics: http://127.0.0.1:{probe}/metrics (port 8081 is taken)"
        )
    );
    let (webhook, line) = port_on_line(&run.stdout, "admission webhook: ");
    assert_ne!(webhook, 9443);
    assert_eq!(
        line,
        format!("admission webhook: https://127.0.0.1:{webhook}/validate (port 9443 is taken)")
    );
    // Production fails closed: the example was admitted, so the API server reached the webhook
    // on the port it fell back to, and the operator served its probes on the other.
    assert_everything_ready(&run.stdout);
    let log = std::fs::read_to_string(dir.path().join("operator.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("serving /healthz, /readyz and /metrics")
                && l.contains(&format!("addr=127.0.0.1:{probe}"))),
        "{log}"
    );
}

#[test]
fn mmf_dev_writes_the_operator_logs_to_a_file_and_keeps_the_terminal_for_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let run = dev(
        dir.path(),
        &[
            "--probe-addr",
            &format!("127.0.0.1:{port}"),
            "--webhook-addr",
            "none",
        ],
    );
    let log_path = dir.path().join("operator.log");
    assert_eq!(
        run.stdout.lines().next(),
        Some(
            format!(
                "operator logs: {} (--verbose shows them here)",
                log_path.display()
            )
            .as_str()
        )
    );
    assert_eq!(
        run.stdout
            .lines()
            .find(|l| l.starts_with("operator probes")),
        Some(format!("operator probes and metrics: http://127.0.0.1:{port}/metrics").as_str())
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    for message in [
        "serving /healthz, /readyz and /metrics",
        "watch caches synced",
        "leading: reconciling",
    ] {
        assert!(
            log.contains(message),
            "{message:?} not in the log file:\n{log}"
        );
        assert!(
            !run.stdout.contains(message),
            "{message:?} on stdout:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(message),
            "{message:?} on stderr:\n{}",
            run.stderr
        );
    }
    assert!(!log.contains('\u{1b}'), "colour codes in the log file");
    assert_eq!(run.stderr, "", "stderr is not empty");
    assert_everything_ready(&run.stdout);
}

#[test]
fn mmf_dev_verbose_shows_the_operator_logs_on_stderr_too() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let run = dev(
        dir.path(),
        &[
            "--verbose",
            "--probe-addr",
            &format!("127.0.0.1:{port}"),
            "--webhook-addr",
            "none",
        ],
    );
    assert_eq!(
        run.stdout.lines().next(),
        Some(
            format!(
                "operator logs: {} (and stderr)",
                dir.path().join("operator.log").display()
            )
            .as_str()
        )
    );
    let log = std::fs::read_to_string(dir.path().join("operator.log")).unwrap();
    for message in [
        "serving /healthz, /readyz and /metrics",
        "watch caches synced",
    ] {
        assert!(
            run.stderr.contains(message),
            "{message:?} not on stderr:\n{}",
            run.stderr
        );
        assert!(
            log.contains(message),
            "{message:?} not in the log file:\n{log}"
        );
        assert!(!run.stdout.contains(message), "{message:?} on stdout");
    }
}
