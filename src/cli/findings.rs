//! What `mmf check` found, in its three forms: one line each (people), one JSON report
//! (pipelines) and SARIF 2.1.0 (code review tools, which show each result at its line).
//!
//! Pure: builds strings and JSON from findings; the command prints them.

use serde::Serialize;
use serde_json::{Value, json};

use crate::core::manifest::SourceLocation;
use crate::core::violation::Violation;

/// One problem at its place in a file.
#[derive(Debug, Clone)]
pub struct Finding {
    /// `error` (fails the check) or `warning`.
    pub severity: &'static str,
    /// The file position of the offending field.
    pub location: SourceLocation,
    /// What is wrong.
    pub violation: Violation,
}

impl Finding {
    /// `error: bad.yaml:7:3: MmfService/orders: spec.replicas: Invalid value: ...`.
    pub fn line(&self) -> String {
        format!("{}: {}: {}", self.severity, self.location, self.violation)
    }
}

#[derive(Serialize)]
struct Report<'a> {
    environment: &'a str,
    loading: &'a str,
    compliant: bool,
    objects: usize,
    violations: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    severity: &'a str,
    file: &'a str,
    line: u64,
    column: u64,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    field: &'a str,
    reason: &'a str,
    message: &'a str,
}

/// The `--output json` report, pretty-printed, keys in a fixed order.
pub fn json_report(
    environment: &str,
    loading: &str,
    objects: usize,
    found: &[Finding],
) -> Result<String, serde_json::Error> {
    let report = Report {
        environment,
        loading,
        compliant: found.is_empty(),
        objects,
        violations: found
            .iter()
            .map(|f| JsonFinding {
                severity: f.severity,
                file: &f.location.path,
                line: f.location.line,
                column: f.location.column,
                kind: f.violation.object.kind,
                namespace: f.violation.object.namespace.as_deref(),
                name: &f.violation.object.name,
                field: &f.violation.field,
                reason: f.violation.kind.reason(),
                message: &f.violation.message,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report)
}

/// The `--output sarif` log: one run of tool `mmf`, one rule per violation reason, one result
/// per finding with its file, line and column.
pub fn sarif_log(found: &[Finding]) -> Value {
    let mut rules: Vec<&str> = found.iter().map(|f| f.violation.kind.reason()).collect();
    rules.sort_unstable();
    rules.dedup();
    let results: Vec<Value> = found
        .iter()
        .map(|f| {
            let mut physical = json!({"artifactLocation": {"uri": f.location.path}});
            if f.location.line > 0 {
                let mut region = json!({"startLine": f.location.line});
                if f.location.column > 0 {
                    region["startColumn"] = json!(f.location.column);
                }
                physical["region"] = region;
            }
            json!({
                "ruleId": f.violation.kind.reason(),
                "level": f.severity,
                "message": {"text": f.violation.to_string()},
                "locations": [{"physicalLocation": physical}],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mmf",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/marty-framework/mmf-operator",
                "rules": rules.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::violation::{ObjectRef, ViolationKind};

    fn finding() -> Finding {
        Finding {
            severity: "error",
            location: SourceLocation {
                path: "bad.yaml".to_owned(),
                line: 7,
                column: 3,
            },
            violation: Violation {
                kind: ViolationKind::SchemaInvalid,
                object: ObjectRef {
                    kind: "MmfService",
                    namespace: None,
                    name: "orders".to_owned(),
                },
                field: "spec.replicas".to_owned(),
                message:
                    "Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
                        .to_owned(),
            },
        }
    }

    #[test]
    fn a_finding_reads_as_one_line_at_its_field() {
        assert_eq!(
            finding().line(),
            "error: bad.yaml:7:3: MmfService/orders: spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
        );
    }

    #[test]
    fn a_sarif_result_has_rule_level_message_and_region() {
        let log = sarif_log(&[finding()]);
        assert_eq!(log["version"], "2.1.0");
        let result = &log["runs"][0]["results"][0];
        assert_eq!(result["ruleId"], "SchemaInvalid");
        assert_eq!(result["level"], "error");
        let physical = &result["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "bad.yaml");
        assert_eq!(
            physical["region"],
            json!({"startLine": 7, "startColumn": 3})
        );
        assert_eq!(
            log["runs"][0]["tool"]["driver"]["rules"],
            json!([{"id": "SchemaInvalid"}])
        );
    }
}
