#![allow(clippy::unwrap_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::{MmfPlugin, MmfService, MmfServiceSpec, PluginRef};
use crate::core::config::ConfigSet;
use crate::core::policy::{evaluate_plugin, evaluate_service};
use crate::test_support;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

fn configs() -> ConfigSet {
    ConfigSet::from_files(&[
        ("strict.yaml", "plugins:\n  loading: strict\n  security: {require_signature: false, require_digest: true}\n"),
        ("lenient.yaml", "plugins:\n  loading: lenient\n  security: {require_signature: false, require_digest: true}\n"),
    ])
    .unwrap()
}

fn plugin(image: &str) -> MmfPlugin {
    let mut plugin = test_support::plugin("payments", image);
    plugin.metadata.generation = Some(3);
    plugin
}

const PINNED: &str =
    "r.example/p@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
    conditions.iter().find(|c| c.type_ == type_).unwrap()
}

/// MmfService "shop": two replicas loading the plugin "payments".
fn shop_service() -> MmfService {
    MmfService::new(
        "shop",
        MmfServiceSpec {
            image: "r.example/shop:1".into(),
            replicas: 2,
            service_type: Default::default(),
            port: 8080,
            plugins: vec![PluginRef {
                name: "payments".into(),
                version: None,
                enabled: true,
                priority: 100,
                config: None,
            }],
            resources: None,
            env: vec![],
            probes: Default::default(),
            metrics: Default::default(),
        },
    )
}

#[test]
fn a_compliant_plugin_is_ready_and_a_second_pass_changes_nothing() {
    let configs = configs();
    let environment = configs.environment("strict").unwrap();
    let plugin = plugin(PINNED);
    let evaluation = evaluate_plugin(&plugin, environment, &configs);
    let observation = PluginObservation::Evaluated {
        evaluation: &evaluation,
        mode: environment.plugins.loading,
    };
    let first = next_plugin_status(None, Some(3), "strict", observation, &at(100)).unwrap();
    assert_eq!(first.observed_generation, Some(3));
    let ready = condition(&first.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Ready")
    );
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(
        next_plugin_status(Some(&first), Some(3), "strict", observation, &at(200)),
        None
    );
}

#[test]
fn a_strict_violation_makes_the_plugin_not_ready_and_stalled_naming_the_reason() {
    let configs = configs();
    let environment = configs.environment("strict").unwrap();
    let plugin = plugin("r.example/p:latest");
    let evaluation = evaluate_plugin(&plugin, environment, &configs);
    let observation = PluginObservation::Evaluated {
        evaluation: &evaluation,
        mode: environment.plugins.loading,
    };
    let status = next_plugin_status(None, Some(3), "strict", observation, &at(100)).unwrap();
    let ready = condition(&status.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ImageNotPinned")
    );
    assert!(
        ready
            .message
            .contains("spec.image: image \"r.example/p:latest\" is not pinned by digest"),
        "{}",
        ready.message
    );
    assert_eq!(condition(&status.conditions, "Stalled").status, "True");
    assert_eq!(
        condition(&status.conditions, "PolicyCompliant").status,
        "False"
    );
}

#[test]
fn lenient_mode_keeps_the_plugin_ready_with_warnings() {
    let configs = configs();
    let environment = configs.environment("lenient").unwrap();
    let plugin = plugin("r.example/p:latest");
    let evaluation = evaluate_plugin(&plugin, environment, &configs);
    let observation = PluginObservation::Evaluated {
        evaluation: &evaluation,
        mode: environment.plugins.loading,
    };
    let status = next_plugin_status(None, Some(3), "lenient", observation, &at(100)).unwrap();
    let ready = condition(&status.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "CompliantWithWarnings")
    );
    assert_eq!(
        condition(&status.conditions, "PolicyCompliant").status,
        "False"
    );
    assert!(status.conditions.iter().all(|c| c.type_ != "Stalled"));
}

#[test]
fn last_transition_time_moves_only_when_a_condition_flips() {
    let configs = configs();
    let environment = configs.environment("strict").unwrap();
    let good = plugin(PINNED);
    let bad = plugin("r.example/p:latest");
    let good_eval = evaluate_plugin(&good, environment, &configs);
    let bad_eval = evaluate_plugin(&bad, environment, &configs);
    let mode = environment.plugins.loading;
    let first = next_plugin_status(
        None,
        Some(3),
        "strict",
        PluginObservation::Evaluated {
            evaluation: &good_eval,
            mode,
        },
        &at(100),
    )
    .unwrap();
    let second = next_plugin_status(
        Some(&first),
        Some(4),
        "strict",
        PluginObservation::Evaluated {
            evaluation: &bad_eval,
            mode,
        },
        &at(200),
    )
    .unwrap();
    assert_eq!(
        condition(&second.conditions, "Ready").last_transition_time,
        at(200)
    );
    // SignatureVerified stayed True: its timestamp is the original one, its generation the new.
    let signature = condition(&second.conditions, "SignatureVerified");
    assert_eq!(signature.last_transition_time, at(100));
    assert_eq!(signature.observed_generation, Some(4));
}

#[test]
fn a_service_is_ready_only_once_its_deployment_is_available() {
    let configs = configs();
    let environment = configs.environment("strict").unwrap();
    let plugin = plugin(PINNED);
    let service = shop_service();
    let evaluation = evaluate_service(&service, environment, &configs, &[&plugin]);
    let rolling = DeploymentState {
        desired: 2,
        ready: 1,
        updated: 2,
        available: false,
        observed: true,
    };
    let status = next_service_status(
        None,
        Some(1),
        "strict",
        2,
        ServiceObservation::Evaluated {
            evaluation: &evaluation,
            deployment: Some(rolling),
        },
        &at(100),
    )
    .unwrap();
    assert_eq!(condition(&status.conditions, "Ready").status, "Unknown");
    assert_eq!(condition(&status.conditions, "Reconciling").status, "True");
    assert_eq!(status.replica_summary.as_deref(), Some("1/2"));
    assert_eq!(status.loaded_plugins.as_deref(), Some("payments"));
    let done = DeploymentState {
        ready: 2,
        available: true,
        ..rolling
    };
    let status = next_service_status(
        Some(&status),
        Some(1),
        "strict",
        2,
        ServiceObservation::Evaluated {
            evaluation: &evaluation,
            deployment: Some(done),
        },
        &at(200),
    )
    .unwrap();
    let ready = condition(&status.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.last_transition_time.clone()),
        ("True", at(200))
    );
    assert!(status.conditions.iter().all(|c| c.type_ != "Reconciling"));
    assert_eq!(
        condition(&status.conditions, "PluginsResolved").status,
        "True"
    );
}

#[test]
fn a_blocked_service_is_stalled_and_reports_the_rejected_plugin() {
    let configs = configs();
    let environment = configs.environment("strict").unwrap();
    let bad = plugin("r.example/p:latest");
    let service = MmfService::new(
        "shop",
        MmfServiceSpec {
            image: "r.example/shop:1".into(),
            replicas: 1,
            service_type: Default::default(),
            port: 8080,
            plugins: vec![PluginRef {
                name: "payments".into(),
                version: None,
                enabled: true,
                priority: 100,
                config: None,
            }],
            resources: None,
            env: vec![],
            probes: Default::default(),
            metrics: Default::default(),
        },
    );
    let evaluation = evaluate_service(&service, environment, &configs, &[&bad]);
    let running = DeploymentState {
        desired: 1,
        ready: 1,
        updated: 1,
        available: true,
        observed: true,
    };
    let status = next_service_status(
        None,
        Some(1),
        "strict",
        1,
        ServiceObservation::Evaluated {
            evaluation: &evaluation,
            deployment: Some(running),
        },
        &at(100),
    )
    .unwrap();
    let ready = condition(&status.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "PluginRejected")
    );
    assert_eq!(condition(&status.conditions, "Stalled").status, "True");
    assert_eq!(
        condition(&status.conditions, "PluginsResolved").status,
        "False"
    );
    // The old Deployment keeps serving.
    assert_eq!(condition(&status.conditions, "Available").status, "True");
    assert_eq!(status.plugins[0].state, PluginLoadState::Rejected);
}

#[test]
fn rollout_steps_that_change_no_ready_count_write_no_status() {
    let configs = configs();
    let environment = configs.environment("strict").unwrap();
    let plugin = plugin(PINNED);
    let service = shop_service();
    let evaluation = evaluate_service(&service, environment, &configs, &[&plugin]);
    let observe = |old: Option<&MmfServiceStatus>, deployment: DeploymentState, second: i64| {
        next_service_status(
            old,
            Some(1),
            "strict",
            2,
            ServiceObservation::Evaluated {
                evaluation: &evaluation,
                deployment: Some(deployment),
            },
            &at(second),
        )
    };
    // As the apply returns it: nothing observed, nothing created yet.
    let applied = DeploymentState {
        desired: 2,
        ready: 0,
        updated: 0,
        available: false,
        observed: false,
    };
    let first = observe(None, applied, 100).unwrap();
    assert_eq!(
        condition(&first.conditions, "Available").message,
        "Rollout in progress: 0/2 replicas ready."
    );
    // The Deployment controller observed it and created both pods, none ready yet.
    let created = DeploymentState {
        updated: 2,
        observed: true,
        ..applied
    };
    assert_eq!(observe(Some(&first), created, 101), None);
    // One ready: a write, since readyReplicas changed.
    let one = DeploymentState {
        ready: 1,
        ..created
    };
    let second = observe(Some(&first), one, 102).unwrap();
    assert_eq!(second.ready_replicas, Some(1));
    assert_eq!(
        condition(&second.conditions, "Available").message,
        "Rollout in progress: 1/2 replicas ready."
    );
}
