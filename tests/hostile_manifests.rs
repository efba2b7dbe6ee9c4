//! Hostile manifests for `mmf check`/`mmf render` (the reader every CLI command shares): deep
//! YAML, alias bombs, document storms, wrong types, huge and unicode strings, unknown kinds.
//! Each generated file gets its precise refusal (file, line, field, reason) or is read, within a
//! time bound, without a panic.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mmf_operator::core::limits::{MAX_DEPTH, MAX_DOCUMENTS, MAX_MANIFEST_BYTES};
use mmf_operator::core::manifest::{Document, parse_documents};

/// Generous for a debug build on a loaded 2-CPU machine; a stall is unbounded.
const PER_FILE: Duration = Duration::from_secs(10);

const PLUGIN: &str = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: NAME\nspec:\n  version: 1.0.0\n  image: registry.example/p@sha256:0123\n";
const SERVICE: &str = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: NAME\nspec:\n  image: registry.example/s@sha256:0123\n";

#[derive(Debug)]
enum Expect {
    /// The file is refused: `h.yaml`, a location, then exactly this message.
    Error(String),
    /// The file is read; its first document is refused at this field, message containing text.
    Refused(String, String),
    /// The file is read with this many MMF documents and no refusal.
    Read(usize),
}

struct Case {
    family: &'static str,
    text: String,
    expect: Expect,
}

fn nested_flow(levels: usize) -> String {
    format!("{}1{}", "{a: ".repeat(levels), "}".repeat(levels))
}

fn error(text: &str) -> Expect {
    Expect::Error(text.to_owned())
}

fn refused(field: &str, text: &str) -> Expect {
    Expect::Refused(field.to_owned(), text.to_owned())
}

fn plugin(name: &str) -> String {
    PLUGIN.replace("NAME", name)
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |family, text: String, expect| {
        cases.push(Case {
            family,
            text,
            expect,
        })
    };
    let too_deep = format!(": YAML nested deeper than the {MAX_DEPTH} levels allowed");
    // The root and spec are two levels: config may nest 62 more.
    add(
        "deep YAML",
        format!(
            "{}  config: {}\n",
            plugin("deep"),
            nested_flow(MAX_DEPTH - 1)
        ),
        error(&too_deep),
    );
    add(
        "deep YAML",
        format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)),
        error(": a manifest must be a mapping with apiVersion and kind"),
    );
    let block: String = (0..MAX_DEPTH)
        .map(|level| format!("{}a:\n", " ".repeat(level)))
        .collect();
    add("deep YAML", block, Expect::Read(0));
    for levels in [MAX_DEPTH + 1, 100, 1000, 100_000] {
        add(
            "deep YAML",
            format!("{}  config: {}\n", plugin("deep"), nested_flow(levels)),
            error(&too_deep),
        );
        let block: String = (0..levels.min(1000))
            .map(|level| format!("{}a:\n", " ".repeat(level)))
            .collect();
        add("deep YAML", block, error(&too_deep));
        add(
            "deep YAML",
            format!("{}{}", "[".repeat(levels), "]".repeat(levels)),
            error(&too_deep),
        );
    }
    for levels in [1, 10, MAX_DEPTH - 2] {
        add(
            "deep YAML",
            format!("{}  config: {}\n", plugin("deep"), nested_flow(levels)),
            Expect::Read(1),
        );
    }
    // Alias expansion: the classic "billion laughs" and a wide fan-out.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        let list = vec![previous; 9].join(", ");
        laughs.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    add(
        "alias bomb",
        laughs,
        error(": YAML aliases expand to more than the 10000 events allowed"),
    );
    // Document storms: many empty or foreign documents are skipped quickly.
    let foreign = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
    for count in [1_000, 100_000] {
        add("document storm", "---\n".repeat(count), Expect::Read(0));
    }
    add("document storm", foreign.repeat(1_000), Expect::Read(0));
    let over = format!(":40001:1: more than the {MAX_DOCUMENTS} documents allowed in one file");
    add(
        "document storm",
        foreign.repeat(MAX_DOCUMENTS + 1),
        error(&over),
    );
    let many: String = (0..100)
        .map(|i| format!("---\n{}", plugin(&format!("p{i}"))))
        .collect();
    add("document storm", many, Expect::Read(100));
    // Over the size cap, however it is made up.
    add(
        "over the cap",
        format!("{}# {}\n", plugin("big"), "x".repeat(MAX_MANIFEST_BYTES)),
        error(&format!(
            ": file is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
            PLUGIN.len() - 4 + 3 + MAX_MANIFEST_BYTES + 3
        )),
    );
    // Wrong types, in the API server's words, at the field.
    let wrong = [
        (
            "replicas",
            "three",
            "spec.replicas",
            "must be of type integer",
        ),
        (
            "replicas",
            "[1]",
            "spec.replicas",
            "must be of type integer",
        ),
        (
            "replicas",
            "{a: 1}",
            "spec.replicas",
            "must be of type integer",
        ),
        (
            "replicas",
            "1.5",
            "spec.replicas",
            "must be of type integer",
        ),
        (
            "replicas",
            "-1",
            "spec.replicas",
            "should be greater than or equal to 0",
        ),
        (
            "replicas",
            "true",
            "spec.replicas",
            "must be of type integer",
        ),
        ("port", "http", "spec.port", "must be of type integer"),
        (
            "port",
            "70000",
            "spec.port",
            "Invalid value: 70000: port must be between 1 and 65535",
        ),
        (
            "plugins",
            "payments",
            "spec.plugins",
            "must be of type array",
        ),
        (
            "plugins",
            "[7]",
            "spec.plugins[0]",
            "must be of type object",
        ),
        ("env", "{A: b}", "spec.env", "must be of type array"),
        (
            "probes",
            "yes",
            "spec.probes",
            "Invalid value: \"boolean\": spec.probes in body must be of type object",
        ),
        (
            "unknownField",
            "1",
            "spec.unknownField",
            "unknown field \"spec.unknownField\"",
        ),
    ];
    for (field, value, path, message) in wrong {
        let text = format!("{}  {field}: {value}\n", SERVICE.replace("NAME", "typed"));
        add("wrong type", text, refused(path, message));
    }
    let wrong_plugin = [
        ("services", "api", "spec.services", "must be of type array"),
        ("tags", "{a: b}", "spec.tags", "must be of type array"),
        (
            "configSchema",
            "7",
            "spec.configSchema",
            "must be of type object",
        ),
    ];
    for (field, value, path, message) in wrong_plugin {
        let text = format!("{}  {field}: {value}\n", plugin("typed"));
        add("wrong type", text, refused(path, message));
    }
    // Huge strings: a description has no length limit but the file's; a key id has one.
    for size in [1025, 64 * 1024, 2 * 1024 * 1024] {
        let text = format!("{}  description: {}\n", plugin("huge"), "d".repeat(size));
        add("huge string", text, Expect::Read(1));
        let text = format!(
            "{}  signature: {{keyId: {}, algorithm: ed25519, value: AAAA}}\n",
            plugin("huge"),
            "k".repeat(size)
        );
        add(
            "huge string",
            text,
            refused("spec.signature.keyId", "may not be more than 253 bytes"),
        );
    }
    // A repeated key is refused where it repeats, not silently overwritten.
    for (field, value, line) in [("image", "[a]", 8), ("version", "2.0.0", 8)] {
        let text = format!("{}  {field}: {value}\n", plugin("twice"));
        let message = format!(":{line}:3: duplicate mapping key: {field}");
        add("duplicate key", text, error(&message));
    }
    // Unicode: read without a panic; names the API server refuses are refused at metadata.name.
    for name in [
        "zahlung-ü",
        "支付",
        "💸",
        "\u{202e}lap",
        "a\u{200b}b",
        "UPPER",
        "a_b",
    ] {
        let expect = refused("metadata.name", "a lowercase RFC 1123 subdomain");
        add("unicode name", plugin(&format!("\"{name}\"")), expect);
    }
    add(
        "unicode name",
        format!("{}  description: \"ünïcödé 支付 💸\"\n", plugin("ok")),
        Expect::Read(1),
    );
    // Not a manifest at all.
    let kinds = [
        (
            "kind: MmfWidget\napiVersion: mmf.marty.dev/v1alpha1\n",
            ":1:1: unknown kind \"MmfWidget\" in \"mmf.marty.dev/v1alpha1\": expected MmfPlugin, MmfService or MmfPluginRevision in mmf.marty.dev/v1alpha1",
        ),
        (
            "apiVersion: mmf.marty.dev/v2\nkind: MmfPlugin\n",
            ":1:1: unknown kind \"MmfPlugin\" in \"mmf.marty.dev/v2\": expected MmfPlugin, MmfService or MmfPluginRevision in mmf.marty.dev/v1alpha1",
        ),
        (
            "- 1\n- 2\n",
            ":1:1: a manifest must be a mapping with apiVersion and kind",
        ),
        (
            "just a string\n",
            ":1:1: a manifest must be a mapping with apiVersion and kind",
        ),
    ];
    for (text, message) in kinds {
        add("not a manifest", text.to_owned(), error(message));
    }
    cases
}

fn read(text: String) -> Result<Vec<Document>, String> {
    parse_documents("h.yaml", &text).map_err(|e| e.to_string())
}

fn check(case: &Case, outcome: &Result<Vec<Document>, String>) {
    let context = || {
        format!(
            "{} ({} bytes): {:.400}",
            case.family,
            case.text.len(),
            format!("{outcome:?}")
        )
    };
    match (&case.expect, outcome) {
        (Expect::Error(expected), Err(error)) => {
            let located = error.starts_with("h.yaml:") || error.starts_with("h.yaml: ");
            assert!(
                located && error.ends_with(expected.as_str()),
                "{}",
                context()
            );
        }
        (Expect::Refused(field, text), Ok(documents)) => {
            let first = documents.first().and_then(|d| d.refused.first());
            let first = first.unwrap_or_else(|| panic!("{}: nothing refused", context()));
            assert_eq!(&first.field, field, "{}", context());
            assert!(first.message.contains(text.as_str()), "{}", context());
            assert!(
                first.message.len() < 2048,
                "{}: message of {} bytes",
                context(),
                first.message.len()
            );
        }
        (Expect::Read(count), Ok(documents)) => {
            assert_eq!(documents.len(), *count, "{}", context());
            let refused: Vec<_> = documents.iter().flat_map(|d| &d.refused).collect();
            assert!(refused.is_empty(), "{}: {refused:?}", context());
        }
        _ => panic!("{}: expected {:?}", context(), case.expect),
    }
}

#[test]
fn every_hostile_manifest_gets_its_precise_refusal_in_time_without_a_panic() {
    let cases = cases();
    let started = Instant::now();
    let mut families: BTreeMap<&str, usize> = BTreeMap::new();
    let mut slowest = (Duration::ZERO, "");
    for case in &cases {
        let (send, receive) = mpsc::channel();
        let text = case.text.clone();
        let call = Instant::now();
        // The CLI's main thread has 8 MiB of stack (see tests/caps.rs, on_cli_stack).
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                let _ = send.send(read(text));
            })
            .unwrap();
        let outcome = match receive.recv_timeout(PER_FILE) {
            Ok(outcome) => outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{}: no answer within {PER_FILE:?}", case.family)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{}: the reader panicked", case.family)
            }
        };
        if call.elapsed() > slowest.0 {
            slowest = (call.elapsed(), case.family);
        }
        check(case, &outcome);
        *families.entry(case.family).or_default() += 1;
    }
    println!(
        "figure: {} hostile manifests read in {:.2?}; slowest {:.2?} ({}); bound {PER_FILE:?} each",
        cases.len(),
        started.elapsed(),
        slowest.0,
        slowest.1
    );
    println!("figure: cases by family {families:?}");
}
