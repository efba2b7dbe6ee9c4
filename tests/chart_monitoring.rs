//! The chart's alerts (PrometheusRule) and Grafana dashboard (ConfigMap): off by default, one
//! value each; `promtool check rules` accepts the rules; and every metric they use is in the
//! contract (`docs/metrics-contract.md`) and in a real scrape of the operator's `/metrics`. The
//! names come from the rendered objects, so a new panel or alert is checked without a list here.
#![allow(clippy::unwrap_used)]

mod chart_common;
mod common;

use std::collections::{BTreeMap, BTreeSet};

use chart_common::{Rendered, Values, helm_python, render, root};
use serde_json::{Value, json};

const ALERTS: [&str; 5] = [
    "MmfOperatorDown",
    "MmfReconcileErrors",
    "MmfWebhookLatencyHigh",
    "MmfWebhookCertificateExpiring",
    "MmfPluginRejected",
];

fn monitoring_on() -> Values {
    Values::defaults().set(json!({"metrics": {
        "prometheusRule": {"enabled": true},
        "dashboard": {"enabled": true},
    }}))
}

fn rules(rendered: &Rendered) -> Vec<Value> {
    let rule = rendered.get("PrometheusRule", "mmf-operator");
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

fn dashboard(rendered: &Rendered) -> Value {
    let map = rendered.get("ConfigMap", "mmf-operator-dashboard");
    serde_json::from_str(map["data"]["mmf-operator.json"].as_str().unwrap()).unwrap()
}

/// Every PromQL expression: the alerts' `expr` and the dashboard's targets and variables.
fn expressions(rendered: &Rendered) -> Vec<String> {
    let mut exprs: Vec<String> = rules(rendered)
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect();
    let dashboard = dashboard(rendered);
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            exprs.push(query.to_owned());
        }
    }
    exprs
}

/// `name -> label matchers` of every `mmf_*` series an expression selects.
fn used_metrics(exprs: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for expr in exprs {
        let bytes = expr.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
            let boundary = i == 0 || !word(bytes[i - 1]);
            if !(boundary && expr[i..].starts_with("mmf_")) {
                i += 1;
                continue;
            }
            let end = i + expr[i..].bytes().take_while(|b| word(*b)).count();
            let labels = used.entry(expr[i..end].to_owned()).or_default();
            if expr[end..].starts_with('{') {
                let close = end + expr[end..].find('}').unwrap();
                for matcher in expr[end + 1..close]
                    .split(',')
                    .filter(|m| !m.trim().is_empty())
                {
                    let key = matcher.split(['=', '!', '~']).next().unwrap().trim();
                    labels.insert(key.to_owned());
                }
            }
            i = end;
        }
    }
    used
}

/// The contract: each sample name (`_total` counters; a histogram's `_bucket`, `_sum` and
/// `_count`) with the labels it carries.
fn contract() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("docs/metrics-contract.md")).unwrap();
    let mut names = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("- mmf_")) {
        let line = format!("mmf_{line}");
        let (declared, description) = line.split_once("  ").unwrap_or((&line, ""));
        let histogram = description.contains("histogram");
        for metric in declared.split(", ") {
            let (name, labels) = metric.split_once('{').unwrap_or((metric, "}"));
            let labels: BTreeSet<String> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            if histogram {
                for suffix in ["_bucket", "_sum", "_count"] {
                    let mut labels = labels.clone();
                    if suffix == "_bucket" {
                        labels.insert("le".to_owned());
                    }
                    names.insert(format!("{name}{suffix}"), labels);
                }
            } else {
                names.insert(name.trim().to_owned(), labels);
            }
        }
    }
    assert!(names.len() >= 20, "contract parsed to {names:?}");
    names
}

/// Sample names of a scrape: every series' name (a family without series prints nothing).
fn scraped_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Counters with no series until the operator fails: nothing in this test makes a
/// reconciliation fail, so these are checked in the contract only.
const FIRST_FAILURE_ONLY: [&str; 1] = ["mmf_reconcile_errors_total"];

#[test]
fn alerts_and_dashboard_are_off_by_default_and_on_with_one_value_each() {
    let Some(python) = helm_python("chart monitoring defaults") else {
        return;
    };
    let off = render(&python, &Values::defaults()).unwrap();
    assert!(
        off.objects.iter().all(|o| o["kind"] != "PrometheusRule"),
        "{:?}",
        off.kinds()
    );
    assert!(
        off.find("ConfigMap", "mmf-operator-dashboard").is_none(),
        "{:?}",
        off.kinds()
    );
    for (value, kind, name) in [
        ("prometheusRule", "PrometheusRule", "mmf-operator"),
        ("dashboard", "ConfigMap", "mmf-operator-dashboard"),
    ] {
        let on = render(
            &python,
            &Values::defaults().set(json!({"metrics": {value: {"enabled": true}}})),
        )
        .unwrap();
        assert_eq!(
            on.objects.len(),
            off.objects.len() + 1,
            "{value}: {:?}",
            on.kinds()
        );
        assert!(on.find(kind, name).is_some(), "{value}: {:?}", on.kinds());
    }
}

#[test]
fn the_rules_hold_the_five_alerts_scoped_to_the_release_job() {
    let Some(python) = helm_python("chart monitoring rules") else {
        return;
    };
    let rendered = render(&python, &monitoring_on()).unwrap();
    let rules = rules(&rendered);
    let alerts: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(alerts, ALERTS);
    let by_name = |name: &str| rules.iter().find(|r| r["alert"] == name).unwrap().clone();
    for rule in &rules {
        let expr = rule["expr"].as_str().unwrap();
        assert!(expr.contains(r#"job="mmf-operator-metrics""#), "{expr}");
        assert!(!rule["labels"]["severity"].is_null(), "{rule}");
    }
    assert!(
        by_name("MmfOperatorDown")["expr"]
            .as_str()
            .unwrap()
            .contains("absent(up{")
    );
    let latency = by_name("MmfWebhookLatencyHigh");
    assert_eq!(latency["for"], "5m");
    assert!(
        latency["expr"]
            .as_str()
            .unwrap()
            .starts_with("histogram_quantile(0.99,")
    );
    assert!(latency["expr"].as_str().unwrap().ends_with(") > 1"));
    let certificate = by_name("MmfWebhookCertificateExpiring")["expr"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(certificate.ends_with("< 7 * 24 * 3600"), "{certificate}");
    let rejected = by_name("MmfPluginRejected")["expr"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        rejected.contains(r#"environment=~"production""#),
        "{rejected}"
    );
    // The dashboard ConfigMap carries the sidecar's label and a dashboard with panels.
    let map = rendered.get("ConfigMap", "mmf-operator-dashboard");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard = dashboard(&rendered);
    assert_eq!(dashboard["uid"], "mmf-operator");
    assert!(dashboard["panels"].as_array().unwrap().len() >= 6);
}

#[test]
fn promtool_accepts_the_rendered_rules() {
    let Some(python) = helm_python("chart monitoring promtool") else {
        return;
    };
    let output = std::process::Command::new("bash")
        .arg(root().join("e2e/tools/build.sh"))
        .args(["promtool", "--print"])
        .output()
        .unwrap();
    let promtool = std::path::PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    if !mmf_e2e::tools::require_file(&promtool) {
        return;
    }
    let rendered = render(&python, &monitoring_on()).unwrap();
    let spec = &rendered.get("PrometheusRule", "mmf-operator")["spec"];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(spec).unwrap()).unwrap();
    let check = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{report}"
    );
}

#[test]
fn every_metric_of_the_alerts_and_dashboard_is_in_the_contract_with_its_labels() {
    let Some(python) = helm_python("chart monitoring contract") else {
        return;
    };
    let rendered = render(&python, &monitoring_on()).unwrap();
    let used = used_metrics(&expressions(&rendered));
    assert!(used.len() >= 10, "{used:?}");
    let contract = contract();
    for (name, labels) in &used {
        let declared = contract
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in docs/metrics-contract.md"));
        // `job` is the scrape target's label, not the operator's.
        let unknown: Vec<_> = labels
            .iter()
            .filter(|l| *l != "job" && !declared.contains(*l))
            .collect();
        assert!(
            unknown.is_empty(),
            "{name} has no labels {unknown:?} (contract: {declared:?})"
        );
    }
}

#[test]
fn every_metric_of_the_alerts_and_dashboard_is_on_the_operators_metrics_endpoint() {
    let Some(python) = helm_python("chart monitoring scrape") else {
        return;
    };
    if !(common::require_tool("kubectl") && common::require_tool("curl")) {
        return;
    }
    let rendered = render(&python, &monitoring_on()).unwrap();
    let used = used_metrics(&expressions(&rendered));

    let cluster = common::Cluster::start();
    let port = common::free_port();
    let operator = cluster.operator(&[
        "--leader-election=false",
        "--webhook-addr",
        &format!("127.0.0.1:{port}"),
        "--webhook-url",
        &format!("https://127.0.0.1:{port}/validate"),
        "--webhook-configuration",
        &format!("mmf-monitoring-{}", std::process::id()),
    ]);
    // Give every family series: the example reconciled and admitted in a development
    // namespace, and an unsigned plugin denied in a production one.
    let development = cluster.namespace("monitoring-dev", "development");
    let example = common::repo().join("plugins/production_payment_service");
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &development,
        "-f",
        &example.display().to_string(),
    ]);
    let production = cluster.namespace("monitoring-prod", "production");
    let signed = std::fs::read_to_string(example.join("plugin.yaml")).unwrap();
    let unsigned = signed[..signed.find("  signature:").unwrap()]
        .replace("name: production-payment", "name: unsigned-payment");
    let (admitted, _, _) =
        cluster.kubectl_input(&["apply", "-n", &production, "-f", "-"], &unsigned);
    assert!(!admitted, "an unsigned plugin was admitted in production");

    let mut missing = Vec::new();
    let mut body = String::new();
    let complete = common::eventually(std::time::Duration::from_secs(60), || {
        body = operator.get("/metrics").map(|(_, b)| b).unwrap_or_default();
        let scraped = scraped_names(&body);
        missing = used
            .keys()
            .filter(|n| !FIRST_FAILURE_ONLY.contains(&n.as_str()) && !scraped.contains(*n))
            .cloned()
            .collect();
        scraped.contains("mmf_reconciles_total") && missing.is_empty()
    });
    assert!(complete, "not on /metrics: {missing:?}\nscrape:\n{body}");
}
