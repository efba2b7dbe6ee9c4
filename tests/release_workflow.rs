//! The GitHub workflows (`.github/workflows/`): `actionlint` accepts them (built from its Go
//! module by `e2e/tools/build.sh`), the release publishes the image the chart installs by
//! default, and the release's version check really runs.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn release() -> Value {
    yaml(&root().join(".github/workflows/release.yaml"))
}

fn step<'a>(workflow: &'a Value, job: &str, id_or_name: &str) -> &'a Value {
    workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["id"] == id_or_name
                || s["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(id_or_name))
        })
        .unwrap_or_else(|| panic!("no step {id_or_name} in job {job}"))
}

#[test]
fn actionlint_accepts_every_workflow() {
    let output = Command::new("bash")
        .arg(root().join("e2e/tools/build.sh"))
        .args(["actionlint", "--print"])
        .output()
        .unwrap();
    let actionlint = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    if !mmf_e2e::tools::require_file(&actionlint) {
        return;
    }
    let workflows: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(workflows.len(), 2, "{workflows:?}");
    let lint = Command::new(&actionlint)
        .args(["-color=false"])
        .args(&workflows)
        .current_dir(root())
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&lint.stdout).to_string() + &String::from_utf8_lossy(&lint.stderr);
    assert!(lint.status.success(), "actionlint:\n{report}");
    assert_eq!(report.trim(), "");
}

#[test]
fn the_release_publishes_the_image_the_chart_installs_by_default() {
    let workflow = release();
    let values = yaml(&root().join("charts/mmf-operator/values.yaml"));
    let chart = yaml(&root().join("charts/mmf-operator/Chart.yaml"));
    assert_eq!(workflow["env"]["IMAGE"], values["image"]["repository"]);
    assert_eq!(
        values["image"]["tag"], "",
        "the chart's default tag is its appVersion"
    );
    let build = step(&workflow, "image", "build");
    assert_eq!(build["with"]["file"], "Containerfile");
    assert_eq!(build["with"]["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(
        build["with"]["tags"].as_str().unwrap().trim(),
        "${{ env.IMAGE }}:${{ steps.version.outputs.version }}"
    );
    // The version step (below) makes the tag equal appVersion, so IMAGE:appVersion is pushed.
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    // Both artifacts are signed and the SBOM is attested.
    let runs: String = ["image", "chart"]
        .iter()
        .flat_map(|job| workflow["jobs"][*job]["steps"].as_array().unwrap().clone())
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n");
    for command in [
        "cosign sign --yes \"${IMAGE}@${DIGEST}\"",
        "cosign attest --yes --type spdxjson --predicate mmf-operator.spdx.json",
        "helm push \"dist/mmf-operator-${VERSION}.tgz\" \"oci://${CHART_REPOSITORY}\"",
        "cosign sign --yes \"${CHART_REPOSITORY}/mmf-operator@${digest}\"",
    ] {
        assert!(runs.contains(command), "release.yaml lacks `{command}`");
    }
    // Keyless signing needs the OIDC token in both jobs.
    for job in ["image", "chart"] {
        assert_eq!(
            workflow["jobs"][job]["permissions"]["id-token"], "write",
            "{job}"
        );
    }
    // The Containerfile takes the build arguments the workflow passes.
    let containerfile = std::fs::read_to_string(root().join("Containerfile")).unwrap();
    for arg in ["ARG VERSION", "ARG REVISION"] {
        assert!(containerfile.contains(arg), "Containerfile lacks {arg}");
    }
}

/// Runs the release's version step as GitHub would, with `TAG`; returns (success, output file).
fn run_version_step(tag: &str) -> (bool, String) {
    let workflow = release();
    let script = step(&workflow, "image", "version")["run"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("output");
    std::fs::write(&output_file, "").unwrap();
    let status = Command::new("bash")
        .args(["-e", "-c", &script])
        .env("TAG", tag)
        .env("GITHUB_OUTPUT", &output_file)
        .current_dir(root())
        .output()
        .unwrap();
    (
        status.status.success(),
        std::fs::read_to_string(&output_file).unwrap(),
    )
}

#[test]
fn the_release_version_step_accepts_the_crate_version_tag_and_rejects_another() {
    let version = env!("CARGO_PKG_VERSION");
    let (ok, output) = run_version_step(&format!("v{version}"));
    assert!(ok);
    assert_eq!(output, format!("version={version}\n"));
    let (ok, output) = run_version_step("v99.0.0");
    assert!(!ok);
    assert_eq!(output, "");
}

#[test]
fn the_release_publishes_the_cli_archives_and_the_krew_manifest_that_installs_them() {
    let workflow = release();
    let matrix = workflow["jobs"]["cli"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap();
    let platforms: Vec<String> = matrix
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["os"].as_str().unwrap(),
                m["arch"].as_str().unwrap()
            )
        })
        .collect();
    // Exactly the platforms the krew manifest offers, in its order.
    let krew = yaml(&root().join("krew/mmf.yaml"));
    let offered: Vec<String> = krew["spec"]["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let labels = &p["selector"]["matchLabels"];
            format!(
                "{}/{}",
                labels["os"].as_str().unwrap(),
                labels["arch"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, offered);
    // The CLI is built without the test API server, and archived under krew's file names.
    let build = step(&workflow, "cli", "Build mmf")["run"].as_str().unwrap();
    assert!(
        build.contains("cargo build --release --locked --no-default-features --bin mmf"),
        "{build}"
    );
    let archive = step(&workflow, "cli", "Archive");
    assert_eq!(
        archive["env"]["ARCHIVE"],
        "mmf-${{ matrix.os }}-${{ matrix.arch }}.tar.gz"
    );
    assert!(
        archive["run"]
            .as_str()
            .unwrap()
            .contains("tar -C stage -czf \"dist/$ARCHIVE\" mmf LICENSE")
    );
    // The published krew manifest is the script's, with the real digests, and is a release asset.
    let checksums = step(&workflow, "cli-release", "Checksums")["run"]
        .as_str()
        .unwrap();
    assert!(checksums.contains("scripts/krew-manifest.sh \"$VERSION\" dist > dist/mmf.yaml"));
    assert!(checksums.contains("cosign sign-blob --yes --bundle"));
    let publish = step(&workflow, "cli-release", "Publish")["run"]
        .as_str()
        .unwrap();
    for asset in ["dist/mmf-*.tar.gz", "dist/checksums.txt", "dist/mmf.yaml"] {
        assert!(publish.contains(asset), "{publish} lacks {asset}");
    }
    assert_eq!(
        workflow["jobs"]["cli-release"]["permissions"]["contents"],
        "write"
    );
}
