//! The ValidatingWebhookConfiguration as the operator and the chart must both render it, every
//! field the API server would default written out (a GitOps tool compares it field by field).
#![allow(clippy::unwrap_used)]

use mmf_operator::webhook::configuration::{Endpoint, configuration};

#[test]
fn the_in_cluster_configuration_is_exactly_this() {
    let endpoint = Endpoint::Service {
        namespace: "mmf-system".to_owned(),
        name: "mmf-operator".to_owned(),
    };
    let object = configuration(
        "mmf-operator",
        &endpoint,
        b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
        "mmf-system",
        &["production".to_owned()],
        false,
    );
    insta::assert_yaml_snapshot!(object);
}

#[test]
fn without_fail_closed_environments_there_is_only_the_lenient_webhook() {
    let endpoint = Endpoint::Url("https://127.0.0.1:8443/validate".to_owned());
    let object = configuration("mmf-operator", &endpoint, b"CA", "mmf-system", &[], false);
    insta::assert_yaml_snapshot!(object);
}
