//! Shared helpers of `tests/image.rs` and `tests/real_image.rs`: build the operator image with
//! `scripts/build-image.sh` and drive it with buildah (vfs storage, chroot isolation: no daemon,
//! no registry, no user namespaces).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `buildah --storage-driver vfs ARGS`.
pub fn buildah(args: &[&str]) -> Command {
    let mut command = Command::new("buildah");
    command.args(["--storage-driver", "vfs"]).args(args);
    command
}

/// Runs buildah and returns stdout; fails the test with buildah's stderr otherwise.
pub fn buildah_ok(args: &[&str]) -> String {
    let output = buildah(args).output().unwrap();
    assert!(
        output.status.success(),
        "buildah {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The operator image under test: `$MMF_TEST_IMAGE` when set (`.ci/test` builds it once with
/// the `dev` cargo profile before the tests), else `localhost/mmf-operator:test` built here by
/// `scripts/build-image.sh` (release profile). Never a dev-profile build from inside a test: it
/// would overwrite `target/debug/mmf`, the binary with `mmf dev` that other suites run.
pub struct Image {
    pub name: String,
    pub id: String,
}

impl Image {
    pub fn under_test() -> Image {
        if let Some(name) = std::env::var("MMF_TEST_IMAGE")
            .ok()
            .filter(|n| !n.is_empty())
        {
            let id = buildah_ok(&[
                "inspect",
                "--type",
                "image",
                "--format",
                "{{.FromImageID}}",
                &name,
            ]);
            return Image {
                name,
                id: format!("sha256:{}", id.trim()),
            };
        }
        // Tests run in parallel processes: one builds, the others wait and reuse its image.
        let lock = std::fs::File::create(std::env::temp_dir().join("mmf-image-test.lock")).unwrap();
        lock.lock().unwrap();
        Image::build("test")
    }

    /// Runs `scripts/build-image.sh TAG` and checks it printed the image ID last.
    pub fn build(tag: &str) -> Image {
        let output = Command::new("bash")
            .arg(root().join("scripts/build-image.sh"))
            .arg(tag)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "build-image.sh {tag} failed:\n{stderr}"
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let id = stdout.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            id.starts_with("sha256:") && id.len() == 71,
            "no image ID printed: {stdout:?}\n{stderr}"
        );
        Image {
            name: format!("localhost/mmf-operator:{tag}"),
            id,
        }
    }

    /// The image's config (`buildah inspect`'s OCI config section).
    pub fn config(&self) -> serde_json::Value {
        let text = buildah_ok(&["inspect", "--type", "image", &self.name]);
        let inspect: serde_json::Value = serde_json::from_str(&text).unwrap();
        inspect["OCIv1"]["config"].clone()
    }

    /// A working container from the image, removed when dropped.
    pub fn container(&self) -> Container {
        let name = buildah_ok(&["from", "--quiet", &self.name])
            .trim()
            .to_owned();
        Container { name }
    }
}

/// A buildah working container.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `buildah run --isolation chroot [OPTIONS] CONTAINER -- COMMAND...`.
    pub fn run_command(&self, options: &[&str], command: &[&str]) -> Command {
        let mut run = buildah(&["run", "--isolation", "chroot"]);
        run.args(options).arg(&self.name).arg("--").args(command);
        run
    }

    pub fn run(&self, command: &[&str]) -> Output {
        self.run_command(&[], command).output().unwrap()
    }

    /// The container's root file system, mounted on the host.
    pub fn mount(&self) -> PathBuf {
        PathBuf::from(buildah_ok(&["mount", &self.name]).trim())
    }

    /// The file at `path` inside the container.
    pub fn read(&self, path: &str) -> Vec<u8> {
        let root = self.mount();
        std::fs::read(root.join(path.trim_start_matches('/'))).unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = buildah(&["rm", &self.name]).output();
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Bytes of a host file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
