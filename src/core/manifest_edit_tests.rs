#![allow(clippy::unwrap_used)]

use super::*;
use crate::api::plugin::SignatureAlgorithm;

fn signature() -> PluginSignature {
    PluginSignature {
        key_id: "release-2026".to_owned(),
        algorithm: SignatureAlgorithm::Ed25519,
        value: "+/AB==".to_owned(),
    }
}

const SIGNATURE_2: &str =
    "  signature:\n    keyId: release-2026\n    algorithm: ed25519\n    value: \"+/AB==\"\n";

#[test]
fn appends_at_the_end_of_a_two_space_spec_keeping_comments() {
    let text = "# Payments plugin\napiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: payments # the name\nspec:\n  version: '1.0.0'   # quoted on purpose\n  image: \"reg/payments@sha256:00\"\n  tags:\n  - a\n  # last comment\n";
    let edited = set_plugin_signature(text, "payments", &signature()).unwrap();
    let expected = text.replace("  - a\n", &format!("  - a\n{SIGNATURE_2}"));
    assert_eq!(edited, expected);
}

#[test]
fn uses_the_spec_indentation_of_four_spaces() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n    name: p\nspec:\n    version: 1.0.0\n    image: img\n";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(
        edited,
        format!(
            "{text}    signature:\n        keyId: release-2026\n        algorithm: ed25519\n        value: \"+/AB==\"\n"
        )
    );
}

#[test]
fn inserts_before_a_following_top_level_key_and_without_final_newline() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nspec:\n  version: 1.0.0\n  image: img\nmetadata:\n  name: p";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(
        edited,
        text.replace("  image: img\n", &format!("  image: img\n{SIGNATURE_2}"))
    );
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n  image: img";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(edited, format!("{text}\n{SIGNATURE_2}"));
}

#[test]
fn replaces_a_block_signature_that_is_not_last() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n  signature:   # old one\n    keyId: old\n    algorithm: ecdsa-p256-sha256\n    value: |\n      MEUCIQ==\n\n  image: img  # after\n";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(
        edited,
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n  signature:\n    keyId: release-2026\n    algorithm: ed25519\n    value: \"+/AB==\"\n\n  image: img  # after\n"
    );
}

#[test]
fn replaces_a_flow_signature() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata: {name: p}\nspec:\n  signature: {keyId: old, algorithm: ed25519, value: \"AA==\"} # c\n  version: 1.0.0\n  image: img\n";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(
        edited,
        text.replace(
            "  signature: {keyId: old, algorithm: ed25519, value: \"AA==\"}",
            SIGNATURE_2.trim_end()
        )
    );
}

#[test]
fn keeps_crlf_line_endings() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\r\nkind: MmfPlugin\r\nmetadata:\r\n  name: p\r\nspec:\r\n  version: 1.0.0\r\n  image: img\r\n";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(
        edited,
        format!("{text}{}", SIGNATURE_2.replace('\n', "\r\n"))
    );
    assert!(!edited.replace("\r\n", "").contains('\n'));
}

#[test]
fn edits_only_the_named_plugin_of_a_stream() {
    let other = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: other\nspec:\n  version: 2.0.0\n  image: other\n";
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: p\n";
    let target = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n  image: img\n";
    let text = format!("---\n{other}---\n{namespace}---\n{target}...\n");
    let edited = set_plugin_signature(&text, "p", &signature()).unwrap();
    assert_eq!(
        edited,
        format!("---\n{other}---\n{namespace}---\n{target}{SIGNATURE_2}...\n")
    );
}

#[test]
fn keeps_a_trailing_keep_chomped_block_scalar_intact() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n  image: img\n  description: |+\n    line\n\n";
    let edited = set_plugin_signature(text, "p", &signature()).unwrap();
    assert_eq!(edited, format!("{text}{SIGNATURE_2}"));
}

#[test]
fn refuses_flow_spec_missing_plugin_and_duplicates() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec: {version: 1.0.0, image: img}\n";
    assert_eq!(
        set_plugin_signature(text, "p", &signature())
            .unwrap_err()
            .to_string(),
        "MmfPlugin \"p\": spec is written in flow style ({...}); write spec in block style (one key per line) to sign in place"
    );
    assert_eq!(
        set_plugin_signature(text, "q", &signature()).unwrap_err(),
        EditError::NotFound("q".to_owned())
    );
    let doubled = format!("{text}---\n{text}");
    assert_eq!(
        set_plugin_signature(&doubled, "p", &signature()).unwrap_err(),
        EditError::Ambiguous("p".to_owned())
    );
    assert!(matches!(
        set_plugin_signature("a: [", "p", &signature()),
        Err(EditError::Yaml(_))
    ));
}

#[test]
fn quotes_only_what_needs_quoting() {
    assert_eq!(yaml_string("release-2026"), "release-2026");
    assert_eq!(yaml_string("yes"), "\"yes\"");
    assert_eq!(yaml_string("2026"), "\"2026\"");
    assert_eq!(yaml_string("a: b"), "\"a: b\"");
    assert_eq!(yaml_string("MEUCIQ+/=="), "\"MEUCIQ+/==\"");
}

#[test]
fn check_rejects_edits_beyond_the_signature() {
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n  image: img\n";
    let before = serde_saphyr::from_multiple::<Value>(text).unwrap();
    let edited = format!("{}{SIGNATURE_2}", text.replace("img", "other"));
    assert_eq!(
        check(before, &edited, "p", &signature())
            .unwrap_err()
            .to_string(),
        "MmfPlugin \"p\": the edited file did not read back as intended (document 1 changed beyond spec.signature); the file was not changed"
    );
}

#[test]
fn a_signature_value_is_quoted_even_when_it_needs_no_quotes() {
    // About one ECDSA signature in twenty encodes without `+`, `/` or `=`.
    let plain = PluginSignature {
        value: "MEYCIQCVGQG8bIdUabhhdaW88YzG9dz7jnMsz".to_owned(),
        ..signature()
    };
    let text = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: p\nspec:\n  version: 1.0.0\n";
    assert_eq!(
        set_plugin_signature(text, "p", &plain).unwrap(),
        format!(
            "{text}  signature:\n    keyId: release-2026\n    algorithm: ed25519\n    value: \"MEYCIQCVGQG8bIdUabhhdaW88YzG9dz7jnMsz\"\n"
        )
    );
}
