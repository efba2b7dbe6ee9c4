//! The operator image (`scripts/build-image.sh`, the layout of the `Containerfile`): it runs the
//! CLI as UID 65532 without a shell, its config names the entrypoint and the OCI labels, and its
//! binary is the `--no-default-features` build, without `mmf dev` and the test API server.
//! Needs `buildah` (`.ci/run` installs it); runs as root with vfs storage and chroot isolation.
#![allow(clippy::unwrap_used)]

mod image_common;

use image_common::{Image, contains, read};
use mmf_e2e::tools::require_tool;

/// A message only the in-memory test API server (`e2e/src/server.rs`) has.
const TEST_SERVER_ONLY: &str = "injected: too old resource version";

#[test]
fn the_image_runs_mmf_version_and_run_help() {
    if !require_tool("buildah") {
        return;
    }
    let image = Image::under_test();
    let container = image.container();
    let version = container.run(&["/usr/local/bin/mmf", "--version"]);
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("mmf {}", env!("CARGO_PKG_VERSION"))
    );
    let help = container.run(&["/usr/local/bin/mmf", "run", "--help"]);
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.starts_with("Run the operator"), "{help}");
    for flag in ["--config-dir", "--probe-addr", "--webhook-addr"] {
        assert!(help.contains(flag), "mmf run --help lacks {flag}:\n{help}");
    }
}

#[test]
fn the_image_config_runs_mmf_run_as_uid_65532_with_the_oci_labels() {
    if !require_tool("buildah") {
        return;
    }
    let image = Image::under_test();
    let config = image.config();
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/mmf"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/marty-framework/mmf-operator"
    );
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap();
    assert!(
        revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "revision label is not a git commit: {revision:?}"
    );
    // The user the pods run as exists in the image, and the image ID printed is the image's.
    let container = image.container();
    let passwd = String::from_utf8(container.read("/etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    let id = image_common::buildah_ok(&[
        "inspect",
        "--type",
        "image",
        "--format",
        "{{.FromImageID}}",
        &image.name,
    ]);
    assert_eq!(image.id, format!("sha256:{}", id.trim()));
}

#[test]
fn the_image_has_no_shell_and_its_binary_no_dev_subcommand_and_no_test_server() {
    if !require_tool("buildah") {
        return;
    }
    let image = Image::under_test();
    let container = image.container();
    let shell = container.run(&["/bin/sh", "-c", "true"]);
    assert!(!shell.status.success(), "the image has a shell: {shell:?}");
    assert!(!container.mount().join("bin/sh").exists());

    let dev = container.run(&["/usr/local/bin/mmf", "dev", "--help"]);
    assert!(!dev.status.success(), "{dev:?}");
    // clap's usage error. Its text can reach `buildah run`'s stderr cut after the quote (seen
    // on a loaded machine), so the check stops there; a binary with `dev` would succeed above.
    let stderr = String::from_utf8_lossy(&dev.stderr);
    assert!(
        stderr.starts_with("error: unrecognized subcommand '"),
        "{stderr}"
    );

    // The marker is in the default build (so this check can fail) and not in the image's.
    assert!(
        contains(&read(env!("CARGO_BIN_EXE_mmf").as_ref()), TEST_SERVER_ONLY),
        "the default-features binary lacks the marker: pick another string of e2e/src/server.rs"
    );
    let binary = container.read("/usr/local/bin/mmf");
    assert!(binary.len() > 1_000_000, "{} bytes", binary.len());
    assert!(
        !contains(&binary, TEST_SERVER_ONLY),
        "the image's mmf contains the test API server (built without --no-default-features?)"
    );
}
