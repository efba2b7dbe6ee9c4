//! Plugin signatures across tools: keys and signatures made by the OpenSSL CLI verify with
//! `mmf verify`, and signatures made by `mmf sign` verify with OpenSSL, for both algorithms.
//! This is the contract of DESIGN.md section 4 as a user would exercise it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

const PLUGIN: &str = "# Payments plugin, reviewed by the payments team.
apiVersion: mmf.marty.dev/v1alpha1
kind: MmfPlugin
metadata:
  name: payments   # Kubernetes name
spec:
  version: 1.2.0
  image: registry.example/payments@sha256:0123456789abcdef
  services:
    - name: api
      routes:
        - path: /pay
          methods: [POST]
  config: {retries: 3}
";

#[derive(Clone, Copy)]
enum Algorithm {
    Ecdsa,
    Ed25519,
}

impl Algorithm {
    const ALL: [Algorithm; 2] = [Algorithm::Ecdsa, Algorithm::Ed25519];

    fn name(self) -> &'static str {
        match self {
            Algorithm::Ecdsa => "ecdsa-p256-sha256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

fn openssl_missing() -> bool {
    !mmf_e2e::tools::require_tool("openssl")
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let output = Process::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn mmf(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("mmf").unwrap();
    command.current_dir(dir);
    command
}

/// A config directory whose environment `test` trusts `public_pem` under `key_id`.
fn config_dir(dir: &Path, key_id: &str, public_pem: &str) {
    let config = dir.join("config");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("base.yaml"),
        "plugins:\n  loading: strict\n  security:\n    require_signature: true\n",
    )
    .unwrap();
    let indented: String = public_pem
        .lines()
        .map(|line| format!("          {line}\n"))
        .collect();
    fs::write(
        config.join("test.yaml"),
        format!(
            "plugins:\n  security:\n    trusted_keys:\n      - id: {key_id}\n        public_key: |\n{indented}"
        ),
    )
    .unwrap();
}

fn payload(dir: &Path) -> Vec<u8> {
    let output = mmf(dir)
        .args(["payload", "-f", "plugin.yaml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

fn digest(payload: &[u8]) -> String {
    let hash = Sha256::digest(payload);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// The `spec.signature.value` of the (only) plugin in `plugin.yaml`, decoded.
fn signature_bytes(dir: &Path) -> Vec<u8> {
    let text = fs::read_to_string(dir.join("plugin.yaml")).unwrap();
    let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let encoded = value
        .pointer("/spec/signature/value")
        .and_then(serde_json::Value::as_str)
        .unwrap();
    BASE64.decode(encoded).unwrap()
}

#[test]
fn openssl_signatures_verify_with_mmf() {
    if openssl_missing() {
        return;
    }
    for algorithm in Algorithm::ALL {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        match algorithm {
            Algorithm::Ecdsa => openssl(
                dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    "key.pem",
                ],
            ),
            Algorithm::Ed25519 => openssl(
                dir,
                &["genpkey", "-algorithm", "ed25519", "-out", "key.pem"],
            ),
        };
        openssl(
            dir,
            &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
        );
        config_dir(
            dir,
            "release-2026",
            &fs::read_to_string(dir.join("pub.pem")).unwrap(),
        );
        fs::write(dir.join("plugin.yaml"), PLUGIN).unwrap();

        let payload = payload(dir);
        fs::write(dir.join("payload.json"), &payload).unwrap();
        match algorithm {
            Algorithm::Ecdsa => openssl(
                dir,
                &[
                    "dgst",
                    "-sha256",
                    "-sign",
                    "key.pem",
                    "-out",
                    "sig.bin",
                    "payload.json",
                ],
            ),
            Algorithm::Ed25519 => openssl(
                dir,
                &[
                    "pkeyutl",
                    "-sign",
                    "-rawin",
                    "-inkey",
                    "key.pem",
                    "-in",
                    "payload.json",
                    "-out",
                    "sig.bin",
                ],
            ),
        };
        let value = BASE64.encode(fs::read(dir.join("sig.bin")).unwrap());
        let signed = format!(
            "{PLUGIN}  signature:\n    keyId: release-2026\n    algorithm: {}\n    value: \"{value}\"\n",
            algorithm.name()
        );
        fs::write(dir.join("plugin.yaml"), signed).unwrap();

        mmf(dir)
            .args([
                "verify",
                "-f",
                "plugin.yaml",
                "--env",
                "test",
                "--config-dir",
                "config",
            ])
            .assert()
            .success()
            .stdout(format!(
                "verified payments ({}, key release-2026, {})\n",
                algorithm.name(),
                digest(&payload)
            ));
    }
}

#[test]
fn mmf_signatures_verify_with_openssl() {
    if openssl_missing() {
        return;
    }
    for algorithm in Algorithm::ALL {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        mmf(dir)
            .args(["keygen", "--algorithm", algorithm.name(), "--out", "keys"])
            .assert()
            .success();
        fs::write(dir.join("plugin.yaml"), PLUGIN).unwrap();
        let payload = payload(dir);
        mmf(dir)
            .args([
                "sign",
                "--key",
                "keys/signing-key.pem",
                "--key-id",
                "k1",
                "-f",
                "plugin.yaml",
            ])
            .assert()
            .success()
            .stdout(format!(
                "signed MmfPlugin/payments in plugin.yaml ({}, key k1, {})\n",
                algorithm.name(),
                digest(&payload)
            ));

        // Signed in place: the original text, comments included, plus the signature.
        let signed = fs::read_to_string(dir.join("plugin.yaml")).unwrap();
        assert!(signed.starts_with(PLUGIN), "{signed}");
        assert!(
            signed[PLUGIN.len()..].starts_with(&format!(
                "  signature:\n    keyId: k1\n    algorithm: {}\n    value: \"",
                algorithm.name()
            )),
            "{signed}"
        );
        // The payload does not depend on the signature.
        assert_eq!(self::payload(dir), payload);

        fs::write(dir.join("payload.json"), &payload).unwrap();
        fs::write(dir.join("sig.bin"), signature_bytes(dir)).unwrap();
        let stdout = match algorithm {
            Algorithm::Ecdsa => openssl(
                dir,
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    "keys/signing-key.pub.pem",
                    "-signature",
                    "sig.bin",
                    "payload.json",
                ],
            ),
            Algorithm::Ed25519 => openssl(
                dir,
                &[
                    "pkeyutl",
                    "-verify",
                    "-rawin",
                    "-pubin",
                    "-inkey",
                    "keys/signing-key.pub.pem",
                    "-in",
                    "payload.json",
                    "-sigfile",
                    "sig.bin",
                ],
            ),
        };
        assert!(stdout.contains("Verified"), "{stdout}");

        // OpenSSL reads the generated private key too (PKCS#8 v1 for Ed25519).
        openssl(dir, &["pkey", "-in", "keys/signing-key.pem", "-noout"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.join("keys/signing-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[test]
fn sec1_key_from_openssl_ecparam_signs() {
    if openssl_missing() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "key.pem",
        ],
    );
    openssl(dir, &["ec", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    config_dir(dir, "ec", &fs::read_to_string(dir.join("pub.pem")).unwrap());
    fs::write(dir.join("plugin.yaml"), PLUGIN).unwrap();
    mmf(dir)
        .args([
            "sign",
            "--key",
            "key.pem",
            "--key-id",
            "ec",
            "-f",
            "plugin.yaml",
        ])
        .assert()
        .success();
    mmf(dir)
        .args([
            "verify",
            "-f",
            "plugin.yaml",
            "--env",
            "test",
            "--config-dir",
            "config",
        ])
        .assert()
        .success();
}

/// A signed plugin whose file is then edited as `edit` says, verified against environment
/// `test`.
fn verify_after(edit: impl Fn(&str) -> String) -> assert_cmd::assert::Assert {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    mmf(dir)
        .args(["keygen", "--algorithm", "ed25519", "--out", "keys"])
        .assert()
        .success();
    config_dir(
        dir,
        "k1",
        &fs::read_to_string(dir.join("keys/signing-key.pub.pem")).unwrap(),
    );
    fs::write(dir.join("plugin.yaml"), PLUGIN).unwrap();
    mmf(dir)
        .args([
            "sign",
            "--key",
            "keys/signing-key.pem",
            "--key-id",
            "k1",
            "-f",
            "plugin.yaml",
        ])
        .assert()
        .success();
    let signed = fs::read_to_string(dir.join("plugin.yaml")).unwrap();
    fs::write(dir.join("plugin.yaml"), edit(&signed)).unwrap();
    mmf(dir)
        .args([
            "verify",
            "-f",
            "plugin.yaml",
            "--env",
            "test",
            "--config-dir",
            "config",
        ])
        .assert()
}

#[test]
fn tampered_renamed_or_untrusted_plugins_fail_with_exit_code_1() {
    verify_after(|text| text.replace("version: 1.2.0", "version: 1.2.1"))
        .code(1)
        .stdout("")
        .stderr(
            "plugin.yaml: MmfPlugin/payments: spec.signature.value does not verify with key \"k1\": the spec, the name or the key changed since signing\n",
        );
    verify_after(|text| text.replace("name: payments", "name: payments-copy"))
        .code(1)
        .stderr(
            "plugin.yaml: MmfPlugin/payments-copy: spec.signature.value does not verify with key \"k1\": the spec, the name or the key changed since signing\n",
        );
    verify_after(|text| text.replace("keyId: k1", "keyId: k2"))
        .code(1)
        .stderr(
            "plugin.yaml: MmfPlugin/payments: spec.signature.keyId \"k2\" is not one of the environment's trusted keys (k1)\n",
        );
    // Defaults written out change nothing: the payload is the typed, defaulted spec.
    verify_after(|text| {
        text.replace(
            "    - name: api\n",
            "    - name: api\n      healthCheckPath: /health\n      metricsEnabled: true\n",
        )
    })
    .success();
}

#[test]
fn payload_needs_exactly_one_plugin() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    fs::write(dir.join("plugin.yaml"), format!("{PLUGIN}---\n{PLUGIN}")).unwrap();
    mmf(dir)
        .args(["payload", "-f", "plugin.yaml"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "error: plugin.yaml: holds 2 MmfPlugins; mmf payload needs a file with exactly one\n",
        );
    mmf(dir)
        .args(["payload", "-f", "missing.yaml"])
        .assert()
        .code(1)
        .stderr(predicates::str::starts_with(
            "error: missing.yaml: cannot read: ",
        ));
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let keygen = |force: bool| {
        let mut command = mmf(dir);
        command.args([
            "keygen",
            "--algorithm",
            "ecdsa-p256-sha256",
            "--out",
            "keys",
        ]);
        if force {
            command.arg("--force");
        }
        command.assert()
    };
    keygen(false).success();
    let first = fs::read_to_string(dir.join("keys/signing-key.pem")).unwrap();
    keygen(false).code(1).stderr(
        "error: keys/signing-key.pem already exists: pass --force to overwrite it (a replaced private key can no longer sign)\n",
    );
    assert_eq!(
        fs::read_to_string(dir.join("keys/signing-key.pem")).unwrap(),
        first
    );
    keygen(true).success();
    assert_ne!(
        fs::read_to_string(dir.join("keys/signing-key.pem")).unwrap(),
        first
    );
}
