//! Installed as `kubectl-mmf` anywhere on PATH, the `mmf` binary is a kubectl plugin:
//! `kubectl mmf render|check|sign|verify` work offline, and usage reads `kubectl mmf ...`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// `$KUBECTL`, else `/usr/bin/kubectl`, else `kubectl` on PATH.
fn kubectl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from("/usr/bin/kubectl");
    if default.is_file() {
        return Some(default);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

struct Plugin {
    kubectl: PathBuf,
    dir: tempfile::TempDir,
}

impl Plugin {
    /// A temp dir holding `bin/kubectl-mmf` (a symlink to the built `mmf`), put first on PATH.
    fn install() -> Option<Plugin> {
        let Some(kubectl) = kubectl() else {
            mmf_e2e::tools::missing(
                "the `kubectl` command (kubectl plugin test)",
                "install kubectl (https://kubernetes.io/docs/tasks/tools/), set KUBECTL, or run `bash .ci/run`",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let mmf = assert_cmd::cargo::cargo_bin("mmf");
        std::os::unix::fs::symlink(&mmf, dir.path().join("bin/kubectl-mmf")).unwrap();
        Some(Plugin { kubectl, dir })
    }

    fn run(&self, args: &[&str]) -> Output {
        let path = std::env::join_paths(std::iter::once(self.dir.path().join("bin")).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        std::process::Command::new(&self.kubectl)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", self.dir.path().join("no-kubeconfig"))
            .env_remove("MMF_ENVIRONMENT")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

#[test]
fn kubectl_mmf_check_render_sign_and_verify() {
    let Some(plugin) = Plugin::install() else {
        return;
    };

    let list = plugin.ok(&["plugin", "list", "--name-only"]);
    assert!(list.lines().any(|l| l.trim() == "kubectl-mmf"), "{list}");

    plugin.ok(&["mmf", "check", "-f", "plugins/", "--env", "production"]);

    let rendered = plugin.ok(&["mmf", "render", "-f", "plugins/", "--env", "production"]);
    for kind in ["kind: ConfigMap", "kind: Deployment", "kind: Service"] {
        assert!(rendered.contains(kind), "{kind} missing:\n{rendered}");
    }
    // The plugin prints the same bytes as the binary called directly.
    let direct = assert_cmd::Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["render", "-f", "plugins/", "--env", "production"])
        .env_remove("MMF_ENVIRONMENT")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(rendered.as_bytes(), direct.as_slice());

    // Sign a copy with the demonstration key, then verify it against production's keys.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = plugin.dir.path().join("plugin.yaml");
    std::fs::copy(
        root.join("plugins/production_payment_service/plugin.yaml"),
        &manifest,
    )
    .unwrap();
    let key = root.join("plugins/production_payment_service/demo-signing-key.pem");
    plugin.ok(&[
        "mmf",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--key-id",
        "mmf-demo-2026",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    plugin.ok(&[
        "mmf",
        "verify",
        "-f",
        manifest.to_str().unwrap(),
        "--env",
        "production",
    ]);

    // A violation still fails through kubectl, with the plugin's exit code.
    let tampered =
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replacen("version: ", "version: 9", 1);
    std::fs::write(&manifest, tampered).unwrap();
    let out = plugin.run(&[
        "mmf",
        "verify",
        "-f",
        manifest.to_str().unwrap(),
        "--env",
        "production",
    ]);
    assert!(!out.status.success(), "a tampered plugin verified");
}

#[test]
fn usage_names_the_kubectl_plugin() {
    let Some(plugin) = Plugin::install() else {
        return;
    };
    let help = plugin.ok(&["mmf", "render", "--help"]);
    assert!(help.contains("Usage: kubectl mmf render"), "{help}");
    let out = plugin.run(&["mmf", "rendr"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kubectl mmf"), "{stderr}");
    // Called as `mmf`, usage stays `mmf`.
    let help = assert_cmd::Command::cargo_bin("mmf")
        .unwrap()
        .args(["render", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&help).contains("Usage: mmf render"));
}
