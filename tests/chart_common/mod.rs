//! Shared helpers of the `tests/chart_*.rs` suites: the real Helm v4 engine (PyPI
//! `helm-python-sdk`, driven by `tests/helm_engine.py`) and the tools `.ci/test` installs into
//! `<repo>/.venv`. Outside CI a missing tool skips a test with a printed message; with `CI` set
//! it fails, because `.ci/test` installs every tool.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    root().join("charts/mmf-operator")
}

/// A tool from `<repo>/.venv/bin`, or `None` (after printing why) when it is not installed.
pub fn venv_tool(name: &str, test: &str) -> Option<PathBuf> {
    let path = root().join(".venv/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !mmf_e2e::tools::in_ci(),
        "{} is missing: run `bash .ci/test` to create the virtual environment",
        path.display()
    );
    eprintln!(
        "SKIPPED {test}: {} not installed (run `bash .ci/test` once)",
        path.display()
    );
    None
}

/// The Python of `<repo>/.venv` when it can import `helm_python`.
pub fn helm_python(test: &str) -> Option<PathBuf> {
    let python = venv_tool("python", test)?;
    let importable = std::process::Command::new(&python)
        .args(["-c", "import helm_python"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if importable {
        return Some(python);
    }
    assert!(
        !mmf_e2e::tools::in_ci(),
        "helm_python is not importable from {}: run `bash .ci/test`",
        python.display()
    );
    eprintln!("SKIPPED {test}: helm-python-sdk not installed in .venv (run `bash .ci/test` once)");
    None
}

/// Values passed to the engine: files under the chart or `tests/data/chart`, then JSON
/// overrides, merged in order like `helm -f a.yaml -f b.yaml --set-json ...`.
#[derive(Debug, Default, Clone)]
pub struct Values {
    files: Vec<PathBuf>,
    json: Vec<Value>,
}

impl Values {
    pub fn defaults() -> Self {
        Self::default()
    }

    /// A values file shipped with the chart, e.g. `values-production.yaml`.
    pub fn chart_file(name: &str) -> Self {
        Self::default().file(chart_dir().join(name))
    }

    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.files.push(path.as_ref().to_path_buf());
        self
    }

    pub fn set(mut self, value: Value) -> Self {
        self.json.push(value);
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for f in &self.files {
            args.push("--values".to_string());
            args.push(f.display().to_string());
        }
        for j in &self.json {
            args.push("--set-json".to_string());
            args.push(j.to_string());
        }
        args
    }
}

/// Runs `tests/helm_engine.py`; `Ok` carries its JSON answer, `Err` Helm's error message.
pub fn engine(
    python: &Path,
    step: &str,
    values: &Values,
    namespace: &str,
) -> Result<Value, String> {
    let output = std::process::Command::new(python)
        .arg(root().join("tests/helm_engine.py"))
        .arg(step)
        .arg(chart_dir())
        .args(["--name", "mmf-operator", "--namespace", namespace])
        .args(values.args())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "helm_engine.py {step} printed no JSON ({e})\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    match answer.get("error") {
        Some(error) => {
            assert_eq!(output.status.code(), Some(2), "{answer}");
            Err(error.as_str().unwrap_or_default().to_string())
        }
        None => {
            assert!(output.status.success(), "{answer}");
            Ok(answer)
        }
    }
}

/// What `helm template` would print, split into objects.
#[derive(Debug)]
pub struct Rendered {
    /// Template path (`mmf-operator/templates/x.yaml`) to rendered text.
    pub manifests: serde_json::Map<String, Value>,
    /// Every object of every template except NOTES.txt, in template order.
    pub objects: Vec<Value>,
    /// The CRDs Helm installs from `crds/` (`{name, filename, data}`).
    pub crds: Vec<Value>,
}

impl Rendered {
    pub fn notes(&self) -> &str {
        self.manifests["mmf-operator/templates/NOTES.txt"]
            .as_str()
            .unwrap()
    }

    /// The object of this kind and name; panics when it is missing.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("{kind}/{name} not rendered; kinds: {:?}", self.kinds()))
    }

    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    pub fn kinds(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"]))
            .collect()
    }

    /// The rendered objects as one multi-document YAML stream (what `kubectl apply` reads).
    pub fn to_yaml(&self) -> String {
        self.manifests
            .iter()
            .filter(|(path, _)| !path.ends_with("NOTES.txt"))
            .map(|(_, text)| text.as_str().unwrap())
            .filter(|text| !text.trim().is_empty())
            .map(|text| format!("---\n{}\n", text.trim_end()))
            .collect()
    }
}

pub fn render(python: &Path, values: &Values) -> Result<Rendered, String> {
    render_in(python, values, "mmf-system")
}

pub fn render_in(python: &Path, values: &Values, namespace: &str) -> Result<Rendered, String> {
    let answer = engine(python, "render", values, namespace)?;
    let manifests = answer["manifests"].as_object().unwrap().clone();
    let mut objects = Vec::new();
    for (path, text) in &manifests {
        if path.ends_with("NOTES.txt") {
            continue;
        }
        let docs: Vec<Value> = serde_saphyr::from_multiple(text.as_str().unwrap())
            .unwrap_or_else(|e| panic!("{path} is not YAML: {e}\n{text}"));
        objects.extend(docs.into_iter().filter(|d| !d.is_null()));
    }
    let crds = answer["crds"].as_array().unwrap().clone();
    Ok(Rendered {
        manifests,
        objects,
        crds,
    })
}

/// `helm lint --strict` for Kubernetes 1.33: every message with severity warning (2) or error
/// (3), as text.
pub fn lint_problems(python: &Path, values: &Values) -> Vec<String> {
    let report = engine(python, "lint", values, "mmf-system").unwrap();
    let mut problems: Vec<String> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
        .map(|m| format!("{}: {}", m["path"], m["error"]))
        .collect();
    problems.extend(
        report["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e.to_string()),
    );
    problems
}

/// The named value sets every structural test runs over.
pub fn value_sets() -> Vec<(&'static str, Values)> {
    vec![
        ("default", Values::defaults()),
        ("production", Values::chart_file("values-production.yaml")),
        (
            "cert-manager",
            Values::chart_file("values-cert-manager.yaml"),
        ),
        (
            "everything on",
            Values::chart_file("values-production.yaml")
                .file(chart_dir().join("values-cert-manager.yaml"))
                .file(root().join("tests/data/chart/values-everything.yaml")),
        ),
        (
            "webhook off, one replica",
            Values::defaults().set(serde_json::json!({
                "replicaCount": 1,
                "leaderElection": false,
                "webhook": {"enabled": false},
                "networkPolicy": {"enabled": false},
                "podDisruptionBudget": {"enabled": false},
            })),
        ),
    ]
}

// === Reading rendered objects ===

pub fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

pub fn operator_container(rendered: &Rendered, name: &str) -> Value {
    let deployment = rendered.get("Deployment", name);
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{deployment}");
    containers[0].clone()
}

pub fn args(rendered: &Rendered, name: &str) -> Vec<String> {
    strings(&operator_container(rendered, name)["args"])
        .into_iter()
        .map(str::to_string)
        .collect()
}
