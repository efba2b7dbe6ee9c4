//! Self-managed certificates over their lifetime, with `now` moved forward instead of waiting:
//! issue, keep, renew the serving certificate, rotate the CA in two published steps.
#![allow(clippy::unwrap_used)]

use mmf_operator::webhook::certs::{
    CA_CERT, CertBundle, CertInfo, Renewal, TLS_CERT, issue_all, renew, serving_names,
};
use mmf_operator::webhook::configuration::{Endpoint, configuration, trusts};
use time::{Duration, OffsetDateTime};

fn names() -> Vec<String> {
    serving_names("mmf-operator", "mmf-system", None)
}

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
}

fn leaf(bundle: &CertBundle) -> CertInfo {
    CertInfo::from_pem(&bundle.tls_cert, TLS_CERT).unwrap()
}

fn ca(bundle: &CertBundle) -> CertInfo {
    CertInfo::from_pem(&bundle.ca_cert, CA_CERT).unwrap()
}

#[test]
fn serving_names_cover_every_form_of_the_service_name_and_the_url_host() {
    assert_eq!(
        serving_names("mmf-operator", "mmf-system", Some("127.0.0.1")),
        [
            "mmf-operator",
            "mmf-operator.mmf-system",
            "mmf-operator.mmf-system.svc",
            "mmf-operator.mmf-system.svc.cluster.local",
            "127.0.0.1",
        ]
    );
}

#[test]
fn nothing_stored_issues_a_ca_and_a_serving_certificate_it_signed() {
    let (bundle, why) = renew(None, &names(), start(), false).unwrap().unwrap();
    assert_eq!(why, Renewal::Issued);
    assert_eq!(leaf(&bundle).issuer, ca(&bundle).subject);
    assert_eq!(leaf(&bundle).names, names());
    assert_eq!(bundle.previous_ca_cert, None);
    assert_eq!(
        bundle.ca_bundle(),
        format!("{}\n", bundle.ca_cert.trim_end())
    );
}

#[test]
fn a_valid_bundle_is_kept() {
    let bundle = issue_all(&names(), start()).unwrap();
    let later = start() + Duration::days(300);
    assert_eq!(renew(Some(&bundle), &names(), later, true).unwrap(), None);
}

#[test]
fn the_serving_certificate_is_reissued_30_days_before_expiry_under_the_same_ca() {
    let bundle = issue_all(&names(), start()).unwrap();
    let later = start() + Duration::days(336);
    let (renewed, why) = renew(Some(&bundle), &names(), later, true)
        .unwrap()
        .unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(renewed.ca_cert, bundle.ca_cert);
    assert_ne!(renewed.tls_cert, bundle.tls_cert);
    assert!(leaf(&renewed).not_after > leaf(&bundle).not_after);
}

#[test]
fn a_new_name_reissues_the_serving_certificate() {
    let bundle = issue_all(&names(), start()).unwrap();
    let wider = serving_names("mmf-operator", "mmf-system", Some("localhost"));
    let (renewed, why) = renew(Some(&bundle), &wider, start(), true)
        .unwrap()
        .unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(leaf(&renewed).names, wider);
}

#[test]
fn the_ca_rotates_a_year_before_expiry_publishing_both_before_switching() {
    let mut bundle = issue_all(&names(), start()).unwrap();
    // Keep the serving certificate fresh until the CA nears expiry.
    let mut now = start();
    for _ in 0..4 {
        now += Duration::days(340);
        let (renewed, why) = renew(Some(&bundle), &names(), now, true).unwrap().unwrap();
        assert_eq!(why, Renewal::LeafReissued);
        bundle = renewed;
    }
    let old_ca = bundle.ca_cert.clone();
    let old_leaf = bundle.tls_cert.clone();
    now += Duration::days(110); // 1,470 days in: the CA has a year left.

    // Step 1: a new CA, the old one kept beside it; the serving certificate unchanged.
    let (rotated, why) = renew(Some(&bundle), &names(), now, true).unwrap().unwrap();
    assert_eq!(why, Renewal::CaRotated);
    assert_ne!(rotated.ca_cert, old_ca);
    assert_eq!(rotated.previous_ca_cert.as_deref(), Some(old_ca.as_str()));
    assert_eq!(rotated.tls_cert, old_leaf);
    let bundle_text = rotated.ca_bundle();
    assert!(bundle_text.starts_with(rotated.ca_cert.trim_end()));
    assert!(bundle_text.contains(old_ca.trim_end()));

    // Until the new CA is published, the serving certificate stays on the old one.
    assert_eq!(renew(Some(&rotated), &names(), now, false).unwrap(), None);

    // Step 2: once published, the serving certificate moves to the new CA.
    let (switched, why) = renew(Some(&rotated), &names(), now, true).unwrap().unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(leaf(&switched).issuer, ca(&switched).subject);
    assert_eq!(switched.previous_ca_cert.as_deref(), Some(old_ca.as_str()));

    // Step 3: renewals keep the old CA published while it is valid...
    now += Duration::days(340);
    let (renewed, why) = renew(Some(&switched), &names(), now, true)
        .unwrap()
        .unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(renewed.previous_ca_cert.as_deref(), Some(old_ca.as_str()));

    // ...and drop it once it has expired.
    now += Duration::days(16);
    let (dropped, why) = renew(Some(&renewed), &names(), now, true).unwrap().unwrap();
    assert_eq!(why, Renewal::PreviousCaDropped);
    assert_eq!(dropped.previous_ca_cert, None);
    assert_eq!(dropped.tls_cert, renewed.tls_cert);
}

#[test]
fn garbage_in_the_secret_is_replaced() {
    let mut bundle = issue_all(&names(), start()).unwrap();
    bundle.tls_cert = "not a certificate".to_owned();
    let (_, why) = renew(Some(&bundle), &names(), start(), true)
        .unwrap()
        .unwrap();
    assert_eq!(why, Renewal::Issued);
}

#[test]
fn secret_data_round_trips() {
    let bundle = issue_all(&names(), start()).unwrap();
    let data = bundle.to_secret_data();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    );
    assert_eq!(CertBundle::from_secret_data(&data), Some(bundle));
}

#[test]
fn readiness_compares_the_published_bundle_with_our_ca() {
    let bundle = issue_all(&names(), start()).unwrap();
    let other = issue_all(&names(), start()).unwrap();
    let endpoint = Endpoint::Url("https://127.0.0.1:8443/validate".to_owned());
    let envs = ["production".to_owned()];
    let ours = configuration(
        "mmf-operator",
        &endpoint,
        bundle.ca_bundle().as_bytes(),
        "mmf-system",
        &envs,
        false,
    );
    assert!(trusts(&ours, bundle.ca_cert.as_bytes()));
    let theirs = configuration(
        "mmf-operator",
        &endpoint,
        other.ca_bundle().as_bytes(),
        "mmf-system",
        &envs,
        false,
    );
    assert!(!trusts(&theirs, bundle.ca_cert.as_bytes()));
}
