#![allow(clippy::unwrap_used)]

use prometheus_client::encoding::text::encode;

use super::*;

fn registered() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry, Gauge::default());
    (registry, metrics)
}

/// The scrape's sample lines of the metrics whose names start with `prefix`.
fn samples(registry: &Registry, prefix: &str) -> Vec<String> {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_plugin_has_one_info_series_and_one_state_set_to_one() {
    let (registry, metrics) = registered();
    metrics.plugin_observed(
        "prod",
        "pay",
        "1.0.0",
        "production",
        PluginState::RejectedDigest,
    );
    assert_eq!(
        samples(&registry, "mmf_plugin_"),
        vec![
            r#"mmf_plugin_info{namespace="prod",plugin="pay",version="1.0.0"} 1"#,
            r#"mmf_plugin_services{namespace="prod",plugin="pay"} 0"#,
            r#"mmf_plugin_state{namespace="prod",environment="production",plugin="pay",state="rejected_digest"} 1"#,
            r#"mmf_plugin_state{namespace="prod",environment="production",plugin="pay",state="rejected_policy"} 0"#,
            r#"mmf_plugin_state{namespace="prod",environment="production",plugin="pay",state="rejected_schema"} 0"#,
            r#"mmf_plugin_state{namespace="prod",environment="production",plugin="pay",state="rejected_signature"} 0"#,
            r#"mmf_plugin_state{namespace="prod",environment="production",plugin="pay",state="verified"} 0"#,
        ]
    );
}

#[test]
fn a_new_version_replaces_the_info_series_instead_of_adding_one() {
    let (registry, metrics) = registered();
    metrics.plugin_observed("prod", "pay", "1.0.0", "production", PluginState::Verified);
    metrics.plugin_observed("prod", "pay", "1.1.0", "production", PluginState::Verified);
    assert_eq!(
        samples(&registry, "mmf_plugin_info"),
        vec![r#"mmf_plugin_info{namespace="prod",plugin="pay",version="1.1.0"} 1"#]
    );
}

#[test]
fn services_count_the_plugins_they_load_and_deleted_objects_lose_their_series() {
    let (registry, metrics) = registered();
    metrics.plugin_observed("prod", "pay", "1.0.0", "production", PluginState::Verified);
    metrics.service_observed("prod", "a", [("pay".to_owned(), PluginLoadState::Loaded)]);
    metrics.service_observed("prod", "b", [("pay".to_owned(), PluginLoadState::Loaded)]);
    metrics.service_observed("prod", "c", [("pay".to_owned(), PluginLoadState::Skipped)]);
    assert_eq!(
        samples(&registry, "mmf_plugin_services"),
        vec![r#"mmf_plugin_services{namespace="prod",plugin="pay"} 2"#]
    );
    assert_eq!(
        samples(
            &registry,
            "mmf_service_plugins{namespace=\"prod\",service=\"c\""
        ),
        vec![
            r#"mmf_service_plugins{namespace="prod",service="c",plugin="pay",state="loaded"} 0"#,
            r#"mmf_service_plugins{namespace="prod",service="c",plugin="pay",state="rejected"} 0"#,
            r#"mmf_service_plugins{namespace="prod",service="c",plugin="pay",state="skipped"} 1"#,
        ]
    );

    metrics.forget_deleted(|_, _| true, |_, name| name != "a");
    assert_eq!(
        samples(&registry, "mmf_plugin_services"),
        vec![r#"mmf_plugin_services{namespace="prod",plugin="pay"} 1"#]
    );
    assert_eq!(
        samples(
            &registry,
            "mmf_service_plugins{namespace=\"prod\",service=\"a\""
        ),
        Vec::<String>::new()
    );

    metrics.forget_deleted(|_, _| false, |_, _| false);
    assert_eq!(samples(&registry, "mmf_plugin_"), Vec::<String>::new());
    assert_eq!(
        samples(&registry, "mmf_service_plugins"),
        Vec::<String>::new()
    );
}

#[test]
fn a_plugin_a_service_stops_requesting_loses_that_services_series() {
    let (registry, metrics) = registered();
    metrics.service_observed("prod", "a", [("pay".to_owned(), PluginLoadState::Loaded)]);
    metrics.service_observed("prod", "a", []);
    assert_eq!(
        samples(&registry, "mmf_service_plugins"),
        Vec::<String>::new()
    );
    assert_eq!(
        samples(&registry, "mmf_plugin_services"),
        Vec::<String>::new()
    );
}
