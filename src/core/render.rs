//! Rendering an MmfService into the objects the operator applies (DESIGN.md section 3).
//!
//! Deterministic: the same input gives byte-identical output, so `mmf render` shows exactly
//! what the controller applies and a steady-state reconcile changes nothing. The controller
//! adds the ownerReference; offline there is no live object to point at.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, GRPCAction, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;

use super::hash::{hex, sha256_hex_prefix, sha256_of_parts};
use super::policy::PluginOutcome;
use crate::api::{CONFIG_HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL, MmfService, ServiceType};
use crate::core::config::EnvironmentPolicy;

/// Where plugin code is copied in the pod.
pub const PLUGIN_DIR: &str = "/opt/mmf/plugins";
/// Where the ConfigMap is mounted in the pod.
pub const CONFIG_DIR: &str = "/etc/mmf";
/// User and group sandboxed pods run as.
pub const SANDBOX_UID: i64 = 65532;
/// Name of the service container.
pub const SERVICE_CONTAINER: &str = "service";

/// The objects one MmfService owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// `<service>-mmf`: `mmf.yaml` and one `<plugin>.yaml` per loaded plugin.
    pub config_map: ConfigMap,
    /// `<service>`.
    pub deployment: Deployment,
    /// `<service>`, ClusterIP.
    pub service: Service,
}

/// A rendering failure (input the policy engine should already have refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The MmfService has no `metadata.name`.
    #[error("MmfService has no metadata.name")]
    MissingName,
    /// A value could not be serialized to YAML.
    #[error("could not serialize {what}: {message}")]
    Serialize { what: String, message: String },
}

/// Labels every owned object carries; `selector_labels` is the stable subset used to select pods.
pub fn labels(service_name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(service_name);
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels.insert("app.kubernetes.io/part-of".into(), "mmf".into());
    labels
}

/// Pod selector labels (immutable in a Deployment, so never extended).
pub fn selector_labels(service_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), service_name.to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            service_name.to_owned(),
        ),
    ])
}

/// Name of the ConfigMap of a service.
pub fn config_map_name(service_name: &str) -> String {
    format!("{service_name}-mmf")
}

/// Renders `service` with `loaded` plugins (in load order) for `environment`.
pub fn render(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    loaded: &[&PluginOutcome<'_>],
) -> Result<Rendered, RenderError> {
    let name = service
        .metadata
        .name
        .clone()
        .ok_or(RenderError::MissingName)?;
    let namespace = service.metadata.namespace.clone();
    let meta = |object_name: String| ObjectMeta {
        name: Some(object_name),
        namespace: namespace.clone(),
        labels: Some(labels(&name)),
        ..ObjectMeta::default()
    };

    let mut data = BTreeMap::new();
    data.insert(
        "mmf.yaml".to_owned(),
        framework_config(service, environment, loaded)?,
    );
    for plugin in loaded {
        data.insert(
            format!("{}.yaml", plugin.name),
            to_yaml(&plugin.config, &plugin.name)?,
        );
    }
    let config_hash = config_hash(&data);
    let config_map = ConfigMap {
        metadata: meta(config_map_name(&name)),
        data: Some(data),
        ..ConfigMap::default()
    };

    let deployment = Deployment {
        metadata: meta(name.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(service.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: pod_template(service, environment, loaded, &name, &config_hash),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };

    let port_name = port_name(service.spec.service_type);
    let kube_service = Service {
        metadata: meta(name.clone()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some(port_name.into()),
                port: service.spec.port,
                target_port: Some(IntOrString::String(port_name.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };

    Ok(Rendered {
        config_map,
        deployment,
        service: kube_service,
    })
}

fn port_name(service_type: ServiceType) -> &'static str {
    match service_type {
        ServiceType::Grpc => "grpc",
        _ => "http",
    }
}

/// `sha256:` over the ConfigMap data, in key order; a change rolls the pods.
pub fn config_hash(data: &BTreeMap<String, String>) -> String {
    let parts = data
        .iter()
        .flat_map(|(key, value)| [key.as_bytes(), value.as_bytes()]);
    format!("sha256:{}", hex(&sha256_of_parts(parts)))
}

fn to_yaml<T: Serialize>(value: &T, what: &str) -> Result<String, RenderError> {
    crate::core::manifest::to_yaml(value).map_err(|e| RenderError::Serialize {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// The effective framework configuration in MMF's spelling, with the pod's own paths.
fn framework_config(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    loaded: &[&PluginOutcome<'_>],
) -> Result<String, RenderError> {
    let mut plugins = environment.plugins.clone();
    plugins.discovery_paths = vec![PLUGIN_DIR.to_owned()];
    plugins.config_dir = CONFIG_DIR.to_owned();
    plugins.auto_discovery = false;
    #[derive(Serialize)]
    struct FrameworkConfig<'a> {
        environment: &'a str,
        service: ServiceSection<'a>,
        plugins: crate::core::config::PluginsPolicy,
        load_order: Vec<&'a str>,
    }
    #[derive(Serialize)]
    struct ServiceSection<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        service_type: &'a str,
        port: i32,
        metrics: &'a crate::api::MetricsSpec,
    }
    let config = FrameworkConfig {
        environment: &environment.name,
        service: ServiceSection {
            name: service.metadata.name.as_deref().unwrap_or_default(),
            service_type: service.spec.service_type.as_str(),
            port: service.spec.port,
            metrics: &service.spec.metrics,
        },
        plugins,
        load_order: loaded.iter().map(|p| p.name.as_str()).collect(),
    };
    to_yaml(&config, "mmf.yaml")
}

fn pod_template(
    service: &MmfService,
    environment: &EnvironmentPolicy,
    loaded: &[&PluginOutcome<'_>],
    name: &str,
    config_hash: &str,
) -> PodTemplateSpec {
    let sandboxing = &environment.plugins.security.sandboxing;
    let sandboxed = sandboxing.enabled;
    let resources = container_resources(service.spec.resources.as_ref(), environment);
    let container_security = sandboxed.then(restricted_container_security);

    let init_containers: Vec<Container> = loaded
        .iter()
        .filter_map(|outcome| outcome.plugin.map(|plugin| (outcome, plugin)))
        .map(|(outcome, plugin)| Container {
            name: init_container_name(&outcome.name),
            image: Some(plugin.spec.image.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(vec![
                "cp".into(),
                "-R".into(),
                "/plugin/.".into(),
                format!("{PLUGIN_DIR}/{}/", outcome.name),
            ]),
            volume_mounts: Some(vec![VolumeMount {
                name: "plugins".into(),
                mount_path: format!("{PLUGIN_DIR}/{}", outcome.name),
                sub_path: Some(outcome.name.clone()),
                ..VolumeMount::default()
            }]),
            resources: resources.clone(),
            security_context: container_security.clone(),
            ..Container::default()
        })
        .collect();

    let load_order: Vec<&str> = loaded.iter().map(|p| p.name.as_str()).collect();
    let mut env = vec![
        env_var("MMF_ENVIRONMENT", &environment.name),
        env_var("MMF_PLUGINS", &load_order.join(",")),
        env_var("MMF_CONFIG_DIR", CONFIG_DIR),
        env_var("MMF_PLUGIN_DIR", PLUGIN_DIR),
    ];
    env.extend(service.spec.env.iter().cloned());

    let port_name = port_name(service.spec.service_type);
    let probe = |path: &str, period: i32, failure_threshold: i32| Probe {
        http_get: (service.spec.service_type != ServiceType::Grpc).then(|| HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port_name.into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        grpc: (service.spec.service_type == ServiceType::Grpc).then_some(GRPCAction {
            port: service.spec.port,
            service: None,
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    };
    let probes = &service.spec.probes;
    let container = Container {
        name: SERVICE_CONTAINER.into(),
        image: Some(service.spec.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        ports: Some(vec![ContainerPort {
            name: Some(port_name.into()),
            container_port: service.spec.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env),
        liveness_probe: Some(probe(&probes.liveness_path, 10, 3)),
        readiness_probe: Some(probe(&probes.readiness_path, 5, 3)),
        startup_probe: Some(probe(&probes.startup_path, 2, 30)),
        resources,
        security_context: container_security,
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "plugins".into(),
                mount_path: PLUGIN_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };

    let mut annotations =
        BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), config_hash.to_owned())]);
    if service.spec.metrics.enabled {
        annotations.insert("prometheus.io/scrape".into(), "true".into());
        annotations.insert(
            "prometheus.io/path".into(),
            service.spec.metrics.path.clone(),
        );
        annotations.insert("prometheus.io/port".into(), service.spec.port.to_string());
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(name)),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: sandboxed.then(|| PodSecurityContext {
                run_as_non_root: Some(true),
                // A fixed high UID/GID (the distroless "nonroot" one) keeps pods clear of host
                // users; fsGroup keeps the plugin emptyDir writable for the init containers.
                run_as_user: Some(SANDBOX_UID),
                run_as_group: Some(SANDBOX_UID),
                fs_group: Some(SANDBOX_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            init_containers: (!init_containers.is_empty()).then_some(init_containers),
            containers: vec![container],
            volumes: Some(vec![
                Volume {
                    name: "config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: config_map_name(name),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "plugins".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                },
                Volume {
                    name: "tmp".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                },
            ]),
            ..PodSpec::default()
        }),
    }
}

/// Init container names are DNS labels (63 characters at most); plugin names may be longer.
fn init_container_name(plugin: &str) -> String {
    let name = format!("plugin-{plugin}");
    if name.len() <= 63 {
        return name;
    }
    let suffix = sha256_hex_prefix(plugin, 8);
    let mut end = 54;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut prefix = name[..end].to_owned();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    format!("{prefix}-{suffix}")
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

/// The PSS `restricted` container profile.
fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// With sandboxing, unset limits default to the environment's ceiling and unset requests to
/// the limits; without it, the service's resources pass through unchanged.
fn container_resources(
    requested: Option<&ResourceRequirements>,
    environment: &EnvironmentPolicy,
) -> Option<ResourceRequirements> {
    let sandboxing = &environment.plugins.security.sandboxing;
    if !sandboxing.enabled {
        return requested.cloned();
    }
    let ceiling = &sandboxing.resource_limits;
    let mut limits = requested.and_then(|r| r.limits.clone()).unwrap_or_default();
    limits
        .entry("memory".into())
        .or_insert_with(|| Quantity(format!("{}Mi", ceiling.memory_mb)));
    limits
        .entry("cpu".into())
        .or_insert_with(|| Quantity(format!("{}m", ceiling.cpu_millis())));
    let mut requests = requested
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    for (resource, limit) in &limits {
        requests
            .entry(resource.clone())
            .or_insert_with(|| limit.clone());
    }
    Some(ResourceRequirements {
        limits: Some(limits),
        requests: Some(requests),
        claims: requested.and_then(|r| r.claims.clone()),
    })
}

/// Renders the three objects as one multi-document YAML stream, in apply order.
pub fn to_manifest_yaml(rendered: &Rendered) -> Result<String, RenderError> {
    let documents: [(Value, &str); 3] = [
        (json(&rendered.config_map)?, "ConfigMap"),
        (json(&rendered.deployment)?, "Deployment"),
        (json(&rendered.service)?, "Service"),
    ];
    let mut out = String::new();
    for (document, what) in documents {
        out.push_str("---\n");
        out.push_str(&to_yaml(&document, what)?);
    }
    Ok(out)
}

fn json<T: Serialize>(object: &T) -> Result<Value, RenderError> {
    serde_json::to_value(object).map_err(|e| RenderError::Serialize {
        what: "object".into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod name_tests {
    use super::init_container_name;

    #[test]
    fn a_long_multi_byte_plugin_name_is_cut_on_a_character_boundary() {
        // "plugin-" is 7 bytes, so byte 54 falls inside a 2-byte 'é'.
        let plugin = "é".repeat(40);
        let name = init_container_name(&plugin);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("plugin-éé"), "{name}");
        let three_byte = init_container_name(&"日".repeat(30));
        assert!(three_byte.len() <= 63, "{three_byte}");
    }

    #[test]
    fn a_short_name_is_kept_whole() {
        assert_eq!(init_container_name("payment"), "plugin-payment");
    }
}
