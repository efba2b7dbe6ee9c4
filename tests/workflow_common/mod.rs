//! Helpers shared by the runtime-contract and developer-workflow tests.
#![allow(clippy::unwrap_used, dead_code)]

use serde_json::Value;

/// The documents of a `mmf render` stream (`---` separated), as JSON.
pub fn documents(stream: &str) -> Vec<Value> {
    let mut documents = Vec::new();
    let mut current = String::new();
    for line in stream.lines().chain(std::iter::once("---")) {
        if line == "---" {
            if !current.trim().is_empty() {
                documents.push(
                    mmf_operator::core::manifest::parse_yaml_value("render", &current).unwrap(),
                );
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

/// The document of `kind`.
pub fn of_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

/// A row of RUNTIME.md's contract table: kind, name, value (backticks removed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub kind: String,
    pub name: String,
    pub value: String,
}

/// The rows between the runtime-contract markers of RUNTIME.md.
pub fn contract_rows(runtime_md: &str) -> Vec<Row> {
    let begin = runtime_md
        .find("<!-- runtime-contract:begin -->")
        .expect("RUNTIME.md has no runtime-contract:begin marker");
    let end = runtime_md
        .find("<!-- runtime-contract:end -->")
        .expect("RUNTIME.md has no runtime-contract:end marker");
    runtime_md[begin..end]
        .lines()
        .filter(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().trim_matches('`').to_owned())
                .collect();
            Row {
                kind: cells[0].clone(),
                name: cells[1].clone(),
                value: cells[2].clone(),
            }
        })
        .collect()
}
