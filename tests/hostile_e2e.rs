//! Hostile objects through the API server: each one `kubectl` sends to a production namespace
//! is refused with a message naming the field and the reason (by the API server's schema and
//! limits, or by the operator's webhook behind it), and the operator neither panics nor stalls:
//! the shipped signed example is admitted and becomes Ready afterwards. Runs on the in-memory
//! server and unchanged on the real control plane (`MMF_E2E_KUBECONFIG`), where kube-apiserver
//! itself refuses what its schema and its 3 MiB request cap catch before the webhook.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::real::DeleteOnDrop;
use common::{Cluster, eventually, repo, require_tool};

/// The shipped signed plugin, edited by `edit`.
fn plugin(edit: impl FnOnce(String) -> String) -> String {
    let signed =
        std::fs::read_to_string(repo().join("plugins/production_payment_service/plugin.yaml"))
            .unwrap();
    edit(signed)
}

/// A value nested `levels` deep under `spec.plugins[0].config` of the shipped service.
fn deep_service(levels: usize) -> String {
    let service = std::fs::read_to_string(
        repo().join("plugins/production_payment_service/payment-service.yaml"),
    )
    .unwrap();
    let deep = format!("{}1{}", "{\"a\": ".repeat(levels), "}".repeat(levels));
    service.replace(
        "        currency: EUR",
        &format!("        currency: EUR\n        deep: {deep}"),
    )
}

/// One hostile object and what its refusal must say: every part of `says` appears in it, and
/// of `real_says` too on kube-apiserver (whose validation runs before the webhook; the
/// in-memory server has none, so the webhook refuses those objects there).
struct Hostile {
    what: &'static str,
    manifest: String,
    says: Vec<&'static str>,
    real_says: Vec<&'static str>,
}

fn hostile_objects() -> Vec<Hostile> {
    let flip = |text: String| text.replacen("MEQCIF4re4X1", "MEQCIF4se4X1", 1);
    vec![
        Hostile {
            what: "a signature with one byte flipped",
            manifest: plugin(flip),
            says: vec!["spec.signature", "does not verify"],
            real_says: vec![],
        },
        Hostile {
            what: "a signature moved to another plugin",
            manifest: plugin(|t| t.replace("name: production-payment", "name: copied-payment")),
            says: vec!["spec.signature", "does not verify"],
            real_says: vec![],
        },
        Hostile {
            what: "an ECDSA signature claimed as Ed25519",
            manifest: plugin(|t| t.replace("algorithm: ecdsa-p256-sha256", "algorithm: ed25519")),
            says: vec!["spec.signature", "ed25519"],
            real_says: vec![],
        },
        Hostile {
            what: "a version of the wrong type",
            manifest: plugin(|t| t.replace("  version: 1.0.0", "  version: [1, 0, 0]")),
            says: vec!["spec.version", "must be of type string"],
            real_says: vec![],
        },
        Hostile {
            what: "a unicode name",
            manifest: plugin(|t| {
                t.replace(
                    "name: production-payment",
                    "name: produ\u{0441}tion-payment",
                )
            }),
            says: vec!["produ\u{0441}tion-payment"],
            real_says: vec!["metadata.name", "RFC 1123"],
        },
        Hostile {
            what: "plugin configuration nested 70 levels",
            manifest: deep_service(70),
            says: vec![
                "spec.plugins[0].config",
                "nested deeper than the 64 levels allowed",
            ],
            real_says: vec![],
        },
        Hostile {
            what: "a 3.5 MiB description",
            manifest: plugin(|t| {
                t.replacen(
                    "  description: Payment processing with fraud detection and audit logging",
                    &format!("  description: {}", "x".repeat(3_500_000)),
                    1,
                )
            }),
            says: vec![],
            real_says: vec!["Request entity too large"],
        },
    ]
}

#[test]
fn every_hostile_object_is_refused_naming_its_field_and_the_operator_carries_on() {
    if !(require_tool("kubectl") && require_tool("curl")) {
        return;
    }
    let cluster = Cluster::start();
    let namespace = cluster.namespace("hostile", "production");
    let port = common::free_port();
    let configuration = format!("mmf-hostile-{}", std::process::id());
    // Before the operator, so it is deleted after the operator stopped (see observability_e2e).
    let _cleanup = DeleteOnDrop {
        cluster: &cluster,
        objects: vec![format!("validatingwebhookconfiguration/{configuration}")],
    };
    let mut args = common::operator_args(&["--leader-election=false"]);
    args.extend([
        "--webhook-addr".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-url".into(),
        format!("https://127.0.0.1:{port}/validate"),
        "--webhook-configuration".into(),
        configuration,
    ]);
    let operator = cluster.operator_with(&args, &[]);

    let mut report = Vec::new();
    for hostile in hostile_objects() {
        let started = Instant::now();
        let (ok, _, stderr) =
            cluster.kubectl_input(&["create", "-n", &namespace, "-f", "-"], &hostile.manifest);
        report.push(format!(
            "{}: refused in {} ms: {}",
            hostile.what,
            started.elapsed().as_millis(),
            stderr
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect::<String>()
        ));
        assert!(!ok, "{} was admitted", hostile.what);
        let real = cluster.server.is_none();
        let real_says = hostile.real_says.iter().filter(|_| real);
        for part in hostile.says.iter().chain(real_says) {
            assert!(
                stderr.contains(part),
                "{}: no {part:?} in {stderr}",
                hostile.what
            );
        }
    }
    eprintln!("{}", report.join("\n"));

    let ready = operator.get("/readyz").map(|(code, _)| code);
    assert_eq!(
        ready,
        Some(200),
        "the operator is not ready: {}",
        operator.log_text()
    );
    let example = cluster.payment_example();
    cluster.kubectl_ok(&[
        "apply",
        "-n",
        &namespace,
        "-f",
        &example.display().to_string(),
    ]);
    let ready = eventually(Duration::from_secs(90), || {
        cluster
            .get_json(&namespace, "mmfservice/payment-service")
            .is_some_and(|s| common::condition_status(&s, "Ready") == "True")
    });
    assert!(
        ready,
        "the example never became Ready: {}",
        operator.log_text()
    );
    assert!(
        !operator.log_text().contains("panicked"),
        "{}",
        operator.log_text()
    );
}
