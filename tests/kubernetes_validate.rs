//! What `mmf render` prints, and the CRDs, pass the official Kubernetes 1.33 schemas
//! (PyPI `kubernetes-validate`, installed into `.venv` by `.ci/test`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use assert_cmd::Command;

/// The validator from the repo's virtual environment. Outside CI a missing tool skips the
/// test with a message; in CI (`CI` set) it fails, because `.ci/test` installs it.
fn validator() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/kubernetes-validate");
    if path.exists() {
        return Some(path);
    }
    assert!(
        !mmf_e2e::tools::in_ci(),
        "{} is missing: run `bash .ci/test` to create the virtual environment",
        path.display()
    );
    eprintln!(
        "skipping: {} not installed (run `bash .ci/test` once)",
        path.display()
    );
    None
}

fn validate(file: &std::path::Path) {
    let Some(validator) = validator() else { return };
    let output = std::process::Command::new(validator)
        .args(["--kubernetes-version", "1.33.0", "--strict"])
        .arg(file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    assert!(
        !report.contains("ERROR") && !report.contains("WARN"),
        "{report}"
    );
}

#[test]
fn rendered_objects_pass_the_kubernetes_1_33_schemas_in_every_environment() {
    for environment in ["development", "production"] {
        let output = Command::cargo_bin("mmf")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["render", "-f", "plugins/", "--env", environment])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let rendered = String::from_utf8(output).unwrap();
        for kind in ["kind: ConfigMap", "kind: Deployment", "kind: Service"] {
            assert!(rendered.contains(kind), "{environment}: {kind} missing");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{environment}.yaml"));
        std::fs::write(&file, rendered).unwrap();
        validate(&file);
    }
}

#[test]
fn the_crds_pass_the_kubernetes_1_33_schemas() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    validate(&root.join("crds/mmfplugins.yaml"));
    validate(&root.join("crds/mmfservices.yaml"));
}
