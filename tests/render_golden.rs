//! Golden files: what `mmf render` prints for the shipped plugin and service in each
//! environment. Review changes to `tests/snapshots/` like code (`cargo insta review`).
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;

fn render(environment: &str) -> String {
    let output = Command::cargo_bin("mmf")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MMF_ENVIRONMENT")
        .args(["render", "-f", "plugins/", "--env", environment])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "no warnings expected"
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn development_render_is_unsandboxed_and_lenient() {
    insta::assert_snapshot!("development", render("development"));
}

#[test]
fn production_render_is_sandboxed_signed_and_limited() {
    insta::assert_snapshot!("production", render("production"));
}

#[test]
fn rendering_is_byte_identical_across_runs() {
    assert_eq!(render("development"), render("development"));
}
