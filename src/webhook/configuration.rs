//! The ValidatingWebhookConfiguration `mmf-operator`: built by one pure function (the Helm chart
//! renders the same object, and a test compares them), and kept current in the cluster.
//!
//! Every field the API server would default is written out (argo-cd#17643: otherwise GitOps
//! tools report drift forever). Only our two kinds are matched and `kube-system` and the
//! operator's own namespace are excluded, so a broken webhook can never lock the cluster
//! (gatekeeper#3183); `failurePolicy: Fail` applies to the strict environments only.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

use super::WebhookError;
use crate::api::{ENVIRONMENT_LABEL, FIELD_MANAGER, GROUP, MANAGED_BY, MANAGED_BY_LABEL, VERSION};

/// Default name of the configuration (and of the chart's).
pub const CONFIGURATION_NAME: &str = "mmf-operator";
/// Webhook for namespaces of strict environments: fails closed.
pub const STRICT_WEBHOOK: &str = "strict.validate.mmf.marty.dev";
/// Webhook for every other namespace: fails open.
pub const LENIENT_WEBHOOK: &str = "lenient.validate.mmf.marty.dev";
/// Fail-closed webhook for namespaces without the environment label, present when the
/// operator's default environment is itself fail-closed (unlabelled namespaces then get the
/// strict policy, so they must not be admitted when the webhook is down).
pub const UNLABELLED_WEBHOOK: &str = "unlabelled.validate.mmf.marty.dev";
/// The path the webhook serves.
pub const VALIDATE_PATH: &str = "/validate";
/// Seconds the API server waits for an answer (the handler answers in milliseconds).
pub const TIMEOUT_SECONDS: i32 = 5;
/// Label every namespace carries with its own name (Kubernetes 1.21+).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the API server reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A URL (the operator running outside the cluster: `mmf dev`, tests).
    Url(String),
    /// The operator's Service, port 443, path `/validate`.
    Service {
        /// Namespace of the Service.
        namespace: String,
        /// Name of the Service.
        name: String,
    },
}

/// The whole configuration, every defaulted field written out. Without fail-closed
/// environments there is no strict webhook (an `In` selector needs at least one value).
pub fn configuration(
    name: &str,
    endpoint: &Endpoint,
    ca_bundle: &[u8],
    operator_namespace: &str,
    fail_closed_environments: &[String],
    unlabelled_fail_closed: bool,
) -> ValidatingWebhookConfiguration {
    let client_config = match endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(url.clone()),
            service: None,
            ca_bundle: Some(ByteString(ca_bundle.to_vec())),
        },
        Endpoint::Service { namespace, name } => WebhookClientConfig {
            url: None,
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(VALIDATE_PATH.to_owned()),
                port: Some(443),
            }),
            ca_bundle: Some(ByteString(ca_bundle.to_vec())),
        },
    };
    let excluded = LabelSelectorRequirement {
        key: NAMESPACE_NAME_LABEL.to_owned(),
        operator: "NotIn".to_owned(),
        values: Some(vec![
            "kube-system".to_owned(),
            operator_namespace.to_owned(),
        ]),
    };
    let environment = |operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
        key: ENVIRONMENT_LABEL.to_owned(),
        operator: operator.to_owned(),
        values,
    };
    let webhook = |webhook_name: &str,
                   mut expressions: Vec<LabelSelectorRequirement>,
                   failure_policy: &str| {
        expressions.push(excluded.clone());
        ValidatingWebhook {
            name: webhook_name.to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            client_config: client_config.clone(),
            failure_policy: Some(failure_policy.to_owned()),
            match_conditions: None,
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(expressions),
                match_labels: None,
            }),
            object_selector: Some(LabelSelector::default()),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![GROUP.to_owned()]),
                api_versions: Some(vec![VERSION.to_owned()]),
                operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
                resources: Some(vec!["mmfplugins".to_owned(), "mmfservices".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
        }
    };
    let fail_closed = Some(fail_closed_environments.to_vec());
    let mut webhooks = Vec::new();
    let mut lenient = Vec::new();
    if !fail_closed_environments.is_empty() {
        webhooks.push(webhook(
            STRICT_WEBHOOK,
            vec![environment("In", fail_closed.clone())],
            "Fail",
        ));
        lenient.push(environment("NotIn", fail_closed));
    }
    if unlabelled_fail_closed {
        webhooks.push(webhook(
            UNLABELLED_WEBHOOK,
            vec![environment("DoesNotExist", None)],
            "Fail",
        ));
        lenient.push(environment("Exists", None));
    }
    webhooks.push(webhook(LENIENT_WEBHOOK, lenient, "Ignore"));
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                ("app.kubernetes.io/part-of".to_owned(), "mmf".to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        webhooks: Some(webhooks),
    }
}

/// True when every webhook of `live` trusts `ca_pem` (its first certificate).
pub fn trusts(live: &ValidatingWebhookConfiguration, ca_pem: &[u8]) -> bool {
    let Ok(ours) = CertificateDer::from_pem_slice(ca_pem) else {
        return false;
    };
    let webhooks = live.webhooks.as_deref().unwrap_or_default();
    !webhooks.is_empty()
        && webhooks.iter().all(|webhook| {
            webhook
                .client_config
                .ca_bundle
                .as_ref()
                .is_some_and(|bundle| {
                    CertificateDer::pem_slice_iter(&bundle.0)
                        .filter_map(Result::ok)
                        .any(|cert| cert == ours)
                })
        })
}

/// What the cluster holds after a publishing pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The configuration exists and every webhook trusts our current CA.
    Current,
    /// There is no configuration of that name (the chart was not installed).
    Absent,
}

/// Creates or updates the whole configuration (server-side apply, field manager
/// `mmf-operator`). Used when the operator was given `--webhook-url`.
pub async fn apply(
    client: &Client,
    desired: &ValidatingWebhookConfiguration,
) -> Result<Published, WebhookError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = desired.metadata.name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(desired).map_err(|e| WebhookError::Tls(e.to_string()))?;
    body["apiVersion"] = json!("admissionregistration.k8s.io/v1");
    body["kind"] = json!("ValidatingWebhookConfiguration");
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| WebhookError::ApplyConfiguration {
        name: name.clone(),
        source,
    })?;
    Ok(Published::Current)
}

/// Keeps only the `caBundle` of every webhook of an existing configuration current (the chart
/// owns the rest). Patches only when something differs, guarded by `test` operations so a
/// concurrent reordering of the webhooks makes the patch fail instead of hitting the wrong one.
pub async fn sync_ca_bundle(
    client: &Client,
    name: &str,
    ca_bundle: &[u8],
) -> Result<Published, WebhookError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let live = api
        .get_opt(name)
        .await
        .map_err(|source| WebhookError::ReadConfiguration {
            name: name.to_owned(),
            source,
        })?;
    let Some(live) = live else {
        return Ok(Published::Absent);
    };
    let mut operations = Vec::new();
    for (index, webhook) in live.webhooks.iter().flatten().enumerate() {
        let current = webhook.client_config.ca_bundle.as_ref().map(|b| &b.0[..]);
        if current == Some(ca_bundle) {
            continue;
        }
        operations.push(
            json!({"op": "test", "path": format!("/webhooks/{index}/name"), "value": webhook.name}),
        );
        operations.push(json!({
            "op": "add",
            "path": format!("/webhooks/{index}/clientConfig/caBundle"),
            "value": ByteString(ca_bundle.to_vec()),
        }));
    }
    if operations.is_empty() {
        return Ok(Published::Current);
    }
    let patch: json_patch::Patch = serde_json::from_value(json!(operations))
        .map_err(|e| WebhookError::Tls(format!("building the caBundle patch: {e}")))?;
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map_err(|source| WebhookError::PatchCaBundle {
            name: name.to_owned(),
            source,
        })?;
    tracing::info!(configuration = name, "published the webhook CA in caBundle");
    Ok(Published::Current)
}
