//! The policy engine, one violation kind at a time, with the exact message a user sees.
#![allow(clippy::unwrap_used)]

use mmf_operator::api::{MmfPlugin, MmfService, PluginLoadState};
use mmf_operator::config::ConfigSet;
use mmf_operator::core::manifest::{Manifest, parse_manifests};
use mmf_operator::core::policy::{Decision, evaluate_plugin, evaluate_service};
use mmf_operator::core::violation::ViolationKind;

/// `strict` enforces digests and limits but not signatures (signatures have their own tests);
/// `lenient` is the same in lenient mode.
fn configs() -> ConfigSet {
    let strict = "plugins:\n  loading: strict\n  security:\n    require_signature: false\n    require_digest: true\n    sandboxing:\n      enabled: true\n      resource_limits: {memory_mb: 256, cpu_percent: 30}\n";
    ConfigSet::from_files(&[
        ("base.yaml", "plugins:\n  enabled: true\n"),
        ("strict.yaml", strict),
        (
            "lenient.yaml",
            &strict.replace("loading: strict", "loading: lenient"),
        ),
    ])
    .unwrap()
}

const DIGEST: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn plugin(name: &str, version: &str, extra_spec: &str) -> MmfPlugin {
    let yaml = format!(
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: {name}\nspec:\n  version: {version}\n  image: registry.example/{name}{DIGEST}\n{extra_spec}"
    );
    match parse_manifests("plugin.yaml", &yaml)
        .unwrap()
        .remove(0)
        .manifest
    {
        Manifest::Plugin(plugin) => *plugin,
        _ => unreachable!(),
    }
}

fn service(extra_spec: &str) -> MmfService {
    let yaml = format!(
        "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: shop\nspec:\n  image: registry.example/shop:1\n{extra_spec}"
    );
    match parse_manifests("service.yaml", &yaml)
        .unwrap()
        .remove(0)
        .manifest
    {
        Manifest::Service(service) => *service,
        _ => unreachable!(),
    }
}

fn plugins_spec(names: &[&str]) -> String {
    let mut spec = "  plugins:\n".to_owned();
    for name in names {
        spec.push_str(&format!("    - name: {name}\n"));
    }
    spec
}

fn messages(violations: &[mmf_operator::core::violation::Violation]) -> Vec<String> {
    violations.iter().map(ToString::to_string).collect()
}

#[test]
fn a_compliant_service_deploys_its_plugins_in_dependency_then_priority_order() {
    let configs = configs();
    let base = plugin("base", "1.4.0", "");
    let audit = plugin(
        "audit",
        "2.0.0",
        "  dependencies:\n    - {name: base, version: \"^1.2\"}\n",
    );
    let extra = plugin("extra", "1.0.0", "");
    let service = service(
        "  plugins:\n    - {name: audit, priority: 50}\n    - {name: extra, priority: 10}\n    - {name: base, priority: 1}\n",
    );
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&base, &audit, &extra],
    );
    assert_eq!(messages(&evaluation.violations), Vec::<String>::new());
    assert_eq!(evaluation.decision, Decision::Deploy);
    let order: Vec<&str> = evaluation.loaded().map(|p| p.name.as_str()).collect();
    // base must precede audit and inherits its urgency (50), so both load before extra (10).
    assert_eq!(order, ["base", "audit", "extra"]);
}

#[test]
fn an_image_tag_instead_of_a_digest_is_a_violation_naming_the_field() {
    let configs = configs();
    let mut tagged = plugin("payments", "1.0.0", "");
    tagged.spec.image = "registry.example/payments:1.0.0".into();
    let evaluation = evaluate_plugin(&tagged, configs.environment("strict").unwrap(), &configs);
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfPlugin/payments: spec.image: image \"registry.example/payments:1.0.0\" is not pinned by digest: environment strict requires references of the form name@sha256:<64 hex digits>"
        ]
    );
    assert_eq!(evaluation.violations[0].kind, ViolationKind::ImageNotPinned);
}

#[test]
fn limits_above_the_sandbox_are_violations_and_block_the_rollout_in_strict_mode() {
    let configs = configs();
    let service = service(
        "  resources:\n    limits: {memory: 1Gi, cpu: 250m}\n    requests: {cpu: \"0.5\"}\n",
    );
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.resources.limits.memory: 1Gi is above the 256Mi per-container limit of environment strict: lower it to at most 256Mi",
            "MmfService/shop: spec.resources.requests.cpu: 0.5 is above the 300m per-container limit of environment strict: lower it to at most 300m",
        ]
    );
    assert_eq!(evaluation.decision, Decision::Blocked);
}

#[test]
fn limits_exactly_at_the_ceiling_comply() {
    let configs = configs();
    let service = service("  resources:\n    limits: {memory: 256Mi, cpu: \"0.3\"}\n");
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[],
    );
    assert!(
        evaluation.violations.is_empty(),
        "{:?}",
        evaluation.violations
    );
}

#[test]
fn configuration_invalid_against_the_schema_names_the_service_field_and_the_json_path() {
    let configs = configs();
    let payments = plugin(
        "payments",
        "1.0.0",
        "  configSchema:\n    type: object\n    properties:\n      port: {type: integer, minimum: 1}\n  config:\n    port: 8080\n",
    );
    let service = service("  plugins:\n    - name: payments\n      config: {port: 0}\n");
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&payments],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.plugins[0].config: plugin \"payments\": merged configuration for environment strict does not match spec.configSchema: /port: 0 is less than the minimum of 1"
        ]
    );
    assert_eq!(evaluation.plugins[0].state, PluginLoadState::Rejected);
}

#[test]
fn a_plugin_default_config_that_breaks_its_own_schema_is_reported_on_the_plugin() {
    let configs = configs();
    let broken = plugin(
        "payments",
        "1.0.0",
        "  configSchema:\n    type: object\n    required: [provider]\n  config: {}\n",
    );
    let evaluation = evaluate_plugin(&broken, configs.environment("strict").unwrap(), &configs);
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfPlugin/payments: spec.config: merged configuration for environment strict does not match spec.configSchema: /: \"provider\" is a required property"
        ]
    );
}

#[test]
fn a_missing_dependency_names_the_plugin_the_range_and_the_fix() {
    let configs = configs();
    let audit = plugin(
        "audit",
        "2.0.0",
        "  dependencies:\n    - {name: base, version: \"^1.2\"}\n",
    );
    let service = service(&plugins_spec(&["audit"]));
    let base = plugin("base", "1.4.0", "");
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&audit, &base],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.plugins[0]: plugin \"audit\" requires plugin \"base\" at ^1.2, but the service does not enable it: add {name: base} to spec.plugins"
        ]
    );
    assert_eq!(
        evaluation.violations[0].kind,
        ViolationKind::DependencyMissing
    );
    assert_eq!(evaluation.decision, Decision::Blocked);
}

#[test]
fn a_dependency_at_a_non_matching_version_names_both_versions() {
    let configs = configs();
    let audit = plugin(
        "audit",
        "2.0.0",
        "  dependencies:\n    - {name: base, version: \"^1.2\"}\n",
    );
    let base = plugin("base", "2.0.0", "");
    let service = service(&plugins_spec(&["audit", "base"]));
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&audit, &base],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.plugins[0]: plugin \"audit\" requires plugin \"base\" at ^1.2, but version 2.0.0 is installed: apply a matching version of base or update audit's dependency"
        ]
    );
    assert_eq!(
        evaluation.violations[0].kind,
        ViolationKind::DependencyVersionMismatch
    );
}

#[test]
fn a_dependency_cycle_is_named_in_order() {
    let configs = configs();
    let a = plugin("a", "1.0.0", "  dependencies:\n    - {name: b}\n");
    let b = plugin("b", "1.0.0", "  dependencies:\n    - {name: c}\n");
    let c = plugin("c", "1.0.0", "  dependencies:\n    - {name: a}\n");
    let service = service(&plugins_spec(&["a", "b", "c"]));
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&a, &b, &c],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.plugins: plugins depend on each other in a cycle: a -> b -> c -> a (each requires the next); remove one of these dependencies"
        ]
    );
    assert_eq!(
        evaluation.violations[0].kind,
        ViolationKind::DependencyCycle
    );
}

#[test]
fn lenient_mode_skips_a_broken_plugin_and_its_dependents_but_keeps_the_rest() {
    let configs = configs();
    let mut broken = plugin("base", "1.0.0", "");
    broken.spec.image = "registry.example/base:latest".into();
    let audit = plugin("audit", "1.0.0", "  dependencies:\n    - {name: base}\n");
    let metrics = plugin("metrics", "1.0.0", "");
    let service = service(&plugins_spec(&["base", "audit", "metrics"]));
    let evaluation = evaluate_service(
        &service,
        configs.environment("lenient").unwrap(),
        &configs,
        &[&broken, &audit, &metrics],
    );
    assert_eq!(evaluation.decision, Decision::Deploy);
    let states: Vec<(&str, PluginLoadState)> = evaluation
        .plugins
        .iter()
        .map(|p| (p.name.as_str(), p.state))
        .collect();
    assert_eq!(
        states,
        [
            ("metrics", PluginLoadState::Loaded),
            ("base", PluginLoadState::Skipped),
            ("audit", PluginLoadState::Skipped),
        ]
    );
    assert!(
        evaluation.plugins[2].reason.as_deref().unwrap().starts_with(
            "plugin \"audit\" requires plugin \"base\" at *, but it is not loaded (plugin \"base\" violates the lenient policy"
        ),
        "{:?}",
        evaluation.plugins[2].reason
    );
}

#[test]
fn a_plugin_that_does_not_exist_is_reported_with_the_fix() {
    let configs = configs();
    let service = service(&plugins_spec(&["ghost"]));
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.plugins[0].name: plugin \"ghost\" does not exist in this namespace: apply its MmfPlugin manifest or remove it from spec.plugins[0]"
        ]
    );
    assert_eq!(evaluation.plugins[0].state, PluginLoadState::Rejected);
}

#[test]
fn environment_default_plugins_load_unless_the_service_disables_them() {
    let configs = ConfigSet::from_files(&[(
        "dev.yaml",
        "plugins:\n  loading: lenient\n  security: {require_signature: false, require_digest: false}\ndefault_plugins:\n  - {name: metrics, priority: 5}\n  - {name: tracing}\n",
    )])
    .unwrap();
    let metrics = plugin("metrics", "1.0.0", "");
    let tracing = plugin("tracing", "1.0.0", "");
    let service = service("  plugins:\n    - {name: tracing, enabled: false}\n");
    let evaluation = evaluate_service(
        &service,
        configs.environment("dev").unwrap(),
        &configs,
        &[&metrics, &tracing],
    );
    let order: Vec<&str> = evaluation.loaded().map(|p| p.name.as_str()).collect();
    assert_eq!(order, ["metrics"]);
    assert_eq!(evaluation.plugins.len(), 1);
}

#[test]
fn a_service_cannot_override_the_environment_variables_the_operator_sets() {
    let configs = configs();
    let service = service("  env:\n    - {name: MMF_ENVIRONMENT, value: development}\n");
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[],
    );
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.env[0].name: MMF_ENVIRONMENT is set by the operator from the namespace's environment and cannot be overridden"
        ]
    );
}

#[test]
fn configuration_layers_merge_in_the_documented_order() {
    let configs = ConfigSet::from_files(&[
        ("prod.yaml", "plugins:\n  security: {require_signature: false}\n"),
        (
            "plugins/p.yaml",
            "default:\n  a: settings-default\n  b: settings-default\n  c: settings-default\nprod:\n  b: settings-prod\n  c: settings-prod\n",
        ),
    ])
    .unwrap();
    let p = plugin(
        "p",
        "1.0.0",
        "  config: {a: spec, b: spec, c: spec, d: spec, e: spec}\n  environments:\n    prod: {d: spec-env}\n",
    );
    let service = service("  plugins:\n    - name: p\n      config: {c: service}\n");
    let evaluation = evaluate_service(
        &service,
        configs.environment("prod").unwrap(),
        &configs,
        &[&p],
    );
    assert_eq!(
        evaluation.plugins[0].config,
        serde_json::json!({"a": "settings-default", "b": "settings-prod", "c": "service", "d": "spec-env", "e": "spec"})
    );
}

/// The shipped production config and the shipped, signed payment plugin.
fn shipped() -> (ConfigSet, MmfPlugin) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let configs = mmf_operator::config::load_dir(&root.join("config")).unwrap();
    let text = std::fs::read_to_string(root.join("plugins/production_payment_service/plugin.yaml"))
        .unwrap();
    let plugin = match parse_manifests("plugin.yaml", &text)
        .unwrap()
        .remove(0)
        .manifest
    {
        Manifest::Plugin(plugin) => *plugin,
        _ => unreachable!(),
    };
    (configs, plugin)
}

fn production_violations(plugin: &MmfPlugin, configs: &ConfigSet) -> Vec<String> {
    messages(
        &evaluate_plugin(plugin, configs.environment("production").unwrap(), configs).violations,
    )
}

#[test]
fn the_shipped_signed_plugin_complies_with_production() {
    let (configs, plugin) = shipped();
    assert_eq!(
        production_violations(&plugin, &configs),
        Vec::<String>::new()
    );
}

#[test]
fn an_unsigned_plugin_is_a_violation_in_production_only() {
    let (configs, mut plugin) = shipped();
    plugin.spec.signature = None;
    assert_eq!(
        production_violations(&plugin, &configs),
        [
            "MmfPlugin/production-payment: spec.signature is missing: sign the plugin with `mmf sign --key KEY.pem --key-id ID -f FILE`"
        ]
    );
    let development = evaluate_plugin(
        &plugin,
        configs.environment("development").unwrap(),
        &configs,
    );
    assert_eq!(messages(&development.violations), Vec::<String>::new());
}

#[test]
fn a_tampered_spec_no_longer_verifies() {
    let (configs, mut plugin) = shipped();
    plugin.spec.config.as_mut().unwrap()["fraud_detection"]["enabled"] = serde_json::json!(false);
    assert_eq!(
        production_violations(&plugin, &configs),
        [
            "MmfPlugin/production-payment: spec.signature.value does not verify with key \"mmf-demo-2026\": the spec, the name or the key changed since signing"
        ]
    );
}

#[test]
fn a_signature_copied_onto_another_plugin_name_does_not_verify() {
    let (configs, mut plugin) = shipped();
    plugin.metadata.name = Some("evil-payment".into());
    assert_eq!(
        production_violations(&plugin, &configs),
        [
            "MmfPlugin/evil-payment: spec.signature.value does not verify with key \"mmf-demo-2026\": the spec, the name or the key changed since signing"
        ]
    );
}

#[test]
fn a_signature_by_an_untrusted_key_names_the_trusted_ones() {
    let (configs, mut plugin) = shipped();
    let key =
        mmf_operator::core::signature::generate(mmf_operator::api::SignatureAlgorithm::Ed25519)
            .unwrap();
    let key = mmf_operator::core::signature::SigningKey::from_pem(&key.private_pem).unwrap();
    plugin.spec.signature =
        Some(mmf_operator::core::signature::sign(&plugin, &key, "someone-else").unwrap());
    assert_eq!(
        production_violations(&plugin, &configs),
        [
            "MmfPlugin/production-payment: spec.signature.keyId \"someone-else\" is not one of the environment's trusted keys (mmf-demo-2026)"
        ]
    );
}

#[test]
fn a_newer_version_that_breaks_the_policy_leaves_a_follower_on_the_last_good_one_in_strict_mode() {
    let configs = configs();
    let old = plugin("payments", "1.0.0", "");
    let good = plugin("payments", "1.1.0", "");
    let mut unpinned = plugin("payments", "1.2.0", "");
    unpinned.spec.image = "registry.example/payments:1.2.0".into();
    let service = service(&plugins_spec(&["payments"]));
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&old, &unpinned, &good],
    );
    assert_eq!(evaluation.decision, Decision::Deploy);
    assert_eq!(messages(&evaluation.violations), Vec::<String>::new());
    let loaded = &evaluation.plugins[0];
    assert_eq!(
        (
            loaded.name.as_str(),
            loaded.state,
            loaded.plugin.map(|p| p.spec.version.as_str()),
            loaded.requested.as_str(),
            loaded.last_known_good.as_ref().map(ToString::to_string),
        ),
        (
            "payments",
            PluginLoadState::Loaded,
            Some("1.1.0"),
            "*",
            Some("payments 1.2.0 rejected: image \"registry.example/payments:1.2.0\" is not pinned by digest: environment strict requires references of the form name@sha256:<64 hex digits>; staying on 1.1.0".to_owned()),
        )
    );
}

#[test]
fn a_pin_on_the_broken_version_blocks_the_rollout_in_strict_mode() {
    let configs = configs();
    let good = plugin("payments", "1.1.0", "");
    let mut unpinned = plugin("payments", "1.2.0", "");
    unpinned.spec.image = "registry.example/payments:1.2.0".into();
    let service = service("  plugins:\n    - name: payments\n      version: \"=1.2.0\"\n");
    let evaluation = evaluate_service(
        &service,
        configs.environment("strict").unwrap(),
        &configs,
        &[&good, &unpinned],
    );
    assert_eq!(evaluation.decision, Decision::Blocked);
    assert_eq!(
        messages(&evaluation.violations),
        [
            "MmfService/shop: spec.plugins[0].name: payments 1.2.0 rejected: image \"registry.example/payments:1.2.0\" is not pinned by digest: environment strict requires references of the form name@sha256:<64 hex digits>"
        ]
    );
}
