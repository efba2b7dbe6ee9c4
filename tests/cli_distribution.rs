//! The CLI as installed: `mmf version`, `mmf completion`, the man pages, the krew manifest.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use serde_json::Value;

fn mmf(args: &[&str]) -> String {
    let out = Command::cargo_bin("mmf")
        .unwrap()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn version_prints_the_package_version_the_git_revision_and_the_build_date() {
    let text = mmf(&["version"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("mmf {}", env!("CARGO_PKG_VERSION")));
    let revision = lines[1].strip_prefix("revision: ").unwrap();
    // Built in a git checkout: the 12-digit short hash of a commit git knows.
    let known = std::process::Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{revision}^{{commit}}"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map(|o| o.status.success());
    match known {
        Ok(true) => assert_eq!(revision.len(), 12, "{revision}"),
        _ => assert_eq!(
            revision, "unknown",
            "no git here, yet a revision: {revision}"
        ),
    }
    let date = lines[2].strip_prefix("built: ").unwrap();
    let parts: Vec<&str> = date.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [4, 2, 2],
        "{date}"
    );
    assert!(
        parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "{date}"
    );
}

#[test]
fn completion_scripts_name_every_command_for_bash_zsh_and_fish() {
    let bash = mmf(&["completion", "bash"]);
    assert!(bash.contains("complete -F _mmf"), "{bash}");
    let zsh = mmf(&["completion", "zsh"]);
    assert!(zsh.starts_with("#compdef mmf"), "{zsh}");
    let fish = mmf(&["completion", "fish"]);
    assert!(fish.contains("complete -c mmf"), "{fish}");
    for command in [
        "render",
        "check",
        "generate",
        "sign",
        "verify",
        "dev",
        "version",
        "completion",
    ] {
        for (shell, script) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
}

#[test]
fn man_pages_are_written_for_the_binary_and_every_visible_command() {
    let dir = tempfile::tempdir().unwrap();
    mmf(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "mmf.1",
        "mmf-render.1",
        "mmf-check.1",
        "mmf-version.1",
        "mmf-completion.1",
    ] {
        assert!(
            pages.iter().any(|p| p == page),
            "{page} missing from {pages:?}"
        );
    }
    assert!(!pages.iter().any(|p| p == "mmf-man.1"), "{pages:?}");
    let main = std::fs::read_to_string(dir.path().join("mmf.1")).unwrap();
    assert!(
        main.contains(&format!(".TH mmf 1  \"mmf {}\"", env!("CARGO_PKG_VERSION"))),
        "{main}"
    );
    let printed = mmf(&["man"]);
    assert_eq!(printed.lines().nth(2), main.lines().nth(2), "{printed}");
    assert!(
        !mmf(&["--help"]).contains("\n  man "),
        "man is listed in --help"
    );
}

#[test]
fn the_krew_manifest_installs_this_version_as_kubectl_mmf_on_every_platform() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/krew/mmf.yaml")).unwrap();
    let manifest: Value =
        mmf_operator::core::manifest::parse_yaml_value("krew/mmf.yaml", &text).unwrap();
    assert_eq!(
        manifest["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(manifest["kind"], "Plugin");
    // krew links kubectl-<name> to bin; invoked as kubectl-mmf, usage reads `kubectl mmf`.
    assert_eq!(manifest["metadata"]["name"], "mmf");
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["spec"]["version"], version.as_str());
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    let mut seen = Vec::new();
    for platform in platforms {
        let labels = &platform["selector"]["matchLabels"];
        let (os, arch) = (
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap(),
        );
        seen.push(format!("{os}/{arch}"));
        assert_eq!(
            platform["uri"],
            format!("https://github.com/marty-framework/mmf-operator/releases/download/{version}/mmf-{os}-{arch}.tar.gz").as_str()
        );
        let sha = platform["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{sha}"
        );
        assert_eq!(platform["bin"], "mmf");
        assert_eq!(
            platform["files"],
            serde_json::json!([{"from": "mmf", "to": "."}, {"from": "LICENSE", "to": "."}])
        );
    }
    assert_eq!(
        seen,
        ["linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"]
    );
}

const PLATFORMS: [&str; 4] = ["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"];

/// Runs scripts/krew-manifest.sh VERSION DIR; returns (success, stdout, stderr).
fn krew_manifest(version: &str, dir: &std::path::Path) -> (bool, String, String) {
    let out = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/krew-manifest.sh"
        ))
        .arg(version)
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_release_krew_manifest_carries_each_archives_sha256_and_the_release_version() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for platform in PLATFORMS {
        // Different bytes per platform, so a digest written for the wrong platform shows.
        let bytes = format!("archive of {platform}");
        std::fs::write(dir.path().join(format!("mmf-{platform}.tar.gz")), &bytes).unwrap();
        let digest: String = Sha256::digest(bytes.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        expected.push((platform, digest));
    }
    let (ok, text, stderr) = krew_manifest("2.3.4", dir.path());
    assert!(ok, "{stderr}");
    let manifest: Value =
        mmf_operator::core::manifest::parse_yaml_value("mmf.yaml", &text).unwrap();
    assert_eq!(manifest["spec"]["version"], "v2.3.4");
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), PLATFORMS.len());
    for (platform, (name, digest)) in platforms.iter().zip(&expected) {
        assert_eq!(
            platform["uri"],
            format!("https://github.com/marty-framework/mmf-operator/releases/download/v2.3.4/mmf-{name}.tar.gz").as_str()
        );
        assert_eq!(platform["sha256"], digest.as_str(), "{name}");
    }
    assert!(!text.contains(&"0".repeat(64)), "{text}");
}

#[test]
fn the_release_krew_manifest_refuses_a_missing_archive_and_a_v_prefixed_version() {
    let dir = tempfile::tempdir().unwrap();
    for platform in &PLATFORMS[..3] {
        std::fs::write(dir.path().join(format!("mmf-{platform}.tar.gz")), "x").unwrap();
    }
    let (ok, text, stderr) = krew_manifest("2.3.4", dir.path());
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        format!(
            "krew-manifest.sh: {}/mmf-darwin-arm64.tar.gz is missing (every platform of krew/mmf.yaml needs its archive)",
            dir.path().display()
        )
    );
    assert!(!text.contains("sha256"), "{text}");
    let (ok, _, stderr) = krew_manifest("v2.3.4", dir.path());
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "krew-manifest.sh: VERSION is given without the v (0.1.0, not v2.3.4)"
    );
}
