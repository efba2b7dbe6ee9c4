//! The benchmark command keeps working: a short run of every scenario (N = 50) on the in-memory
//! server prints every table with its ratio line. Figures are never asserted: they belong to
//! BENCHMARKS.md, measured with a release build on a quiet machine.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn every_scenario_prints_its_table_and_ratio_at_fifty_services() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["all", "--services", "50", "--quiet-seconds", "3"])
        .args(["--rates", "100", "--seconds", "1", "--creates", "50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let titles: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|title| title.split(':').next().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "convergence",
            "requests",
            "quiet",
            "memory",
            "startup",
            "render",
            "webhook through the API server",
            "webhook direct"
        ],
        "{stdout}"
    );
    for ratio in [
        "operator/raw: ",
        "plugin change: ",
        "object writes per minute: ",
        "RSS/cached JSON: ",
        "ready after ",
        "render: ",
        "ratio webhook/no webhook: ",
        "ratio webhook/echo at 100/s: ",
    ] {
        assert!(
            stdout.lines().any(|line| line.starts_with(ratio)),
            "no line starting {ratio:?} in:\n{stdout}"
        );
    }
    // The convergence table has one row per run, with the writes per service counted.
    let operator_row = stdout
        .lines()
        .find(|line| line.starts_with("operator "))
        .unwrap();
    let writes_per_service: f64 = operator_row
        .rsplit('|')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(writes_per_service > 0.0, "{operator_row}");
}
