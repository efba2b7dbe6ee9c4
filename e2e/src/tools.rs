//! Test prerequisites: the one rule for a missing tool. Under CI (`CI` set and non-empty) a
//! missing tool fails the test with how to install it; elsewhere the test prints why it skips.

use std::path::Path;
use std::process::Command;

/// How to install each tool the tests run (`.ci/run` installs all of them).
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "kubectl" => {
            "install kubectl (https://kubernetes.io/docs/tasks/tools/) or run `bash .ci/run`"
        }
        "curl" | "openssl" | "jq" => {
            "install it with `apt-get install -y curl openssl jq` or run `bash .ci/run`"
        }
        _ => "run `bash .ci/test` once to create <repo>/.venv",
    }
}

/// Whether running under CI, where every prerequisite must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty())
}

/// Records that `what` is missing: panics under CI with `hint`, otherwise prints a skip
/// notice and returns false (so `if !missing(..) { return; }` reads as "skip").
pub fn missing(what: &str, hint: &str) -> bool {
    let message = format!("{what} is missing: {hint}");
    assert!(
        !in_ci(),
        "{message} (CI is set, so this fails instead of skipping)"
    );
    eprintln!("SKIPPED: {message}");
    false
}

/// True when `tool` (a command on PATH, or `$KUBECTL` for kubectl) runs. When it does not:
/// under CI the test panics naming the tool and how to install it; elsewhere it prints why the
/// test skips and returns false.
pub fn require_tool(tool: &str) -> bool {
    let program = tool_path(tool);
    let probe: &[&str] = match tool {
        "kubectl" => &["version", "--client"],
        "openssl" => &["version"],
        _ => &["--version"],
    };
    let runs = Command::new(&program)
        .args(probe)
        .output()
        .is_ok_and(|output| output.status.success());
    runs || missing(&format!("the `{tool}` command"), install_hint(tool))
}

/// True when the file at `path` (a tool in the venv) exists; otherwise as [`require_tool`].
pub fn require_file(path: &Path) -> bool {
    path.exists() || missing(&path.display().to_string(), install_hint(""))
}

/// The program to run for `tool`: `$KUBECTL` for kubectl when set, else the name itself.
pub fn tool_path(tool: &str) -> String {
    match (tool, std::env::var("KUBECTL")) {
        ("kubectl", Ok(path)) if !path.is_empty() => path,
        _ => tool.to_owned(),
    }
}
