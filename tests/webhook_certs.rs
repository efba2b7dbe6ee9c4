//! Self-managed certificates over their lifetime, with `now` moved forward instead of waiting:
//! issue, keep, renew the serving certificate, rotate the CA in two published steps.
#![allow(clippy::unwrap_used)]

use mmf_operator::webhook::certs::{
    CA_CERT, CertBundle, CertInfo, LifetimeError, Lifetimes, Renewal, TLS_CERT, issue_all, new_ca,
    new_leaf, renew, serving_names, should_serve,
};
use mmf_operator::webhook::configuration::{Endpoint, configuration, trusts};
use time::{Duration, OffsetDateTime};

fn names() -> Vec<String> {
    serving_names("mmf-operator", "mmf-system", None)
}

fn lifetimes() -> Lifetimes {
    Lifetimes::default()
}

fn renew_at(
    bundle: Option<&CertBundle>,
    names: &[String],
    now: OffsetDateTime,
    ca_published: bool,
) -> Option<(CertBundle, Renewal)> {
    renew(bundle, names, now, ca_published, lifetimes()).unwrap()
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
    let (bundle, why) = renew_at(None, &names(), start(), false).unwrap();
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
fn a_valid_bundle_is_kept_until_a_third_of_its_life_is_left() {
    let bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    // A year's third is 121.67 days: the serving certificate is due from day 243.33 on.
    let later = start() + Duration::days(243);
    assert_eq!(renew_at(Some(&bundle), &names(), later, true), None);
}

#[test]
fn the_serving_certificate_is_reissued_when_a_third_of_its_life_is_left_under_the_same_ca() {
    let bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    let later = start() + Duration::days(244);
    let (renewed, why) = renew_at(Some(&bundle), &names(), later, true).unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(renewed.ca_cert, bundle.ca_cert);
    assert_ne!(renewed.tls_cert, bundle.tls_cert);
    assert!(leaf(&renewed).not_after > leaf(&bundle).not_after);
}

#[test]
fn a_serving_certificate_never_outlives_its_ca() {
    let (ca_cert, ca_key) = new_ca(start(), Duration::days(100)).unwrap();
    let (tls_cert, _) =
        new_leaf(&ca_cert, &ca_key, &names(), start(), Duration::days(365)).unwrap();
    let ca = CertInfo::from_pem(&ca_cert, CA_CERT).unwrap();
    let leaf = CertInfo::from_pem(&tls_cert, TLS_CERT).unwrap();
    assert_eq!(leaf.not_after, ca.not_after);
    assert_eq!(
        leaf.not_after,
        (start() + Duration::days(100)).unix_timestamp()
    );
}

#[test]
fn lifetimes_that_cannot_rotate_safely_are_refused_naming_the_flags() {
    let second = Duration::seconds(1);
    assert_eq!(
        Lifetimes::new(second * 60, second * 11, second)
            .unwrap_err()
            .to_string(),
        "--webhook-cert-validity 11s is shorter than the 12s a serving certificate must last across a CA rotation"
    );
    assert_eq!(
        Lifetimes::new(second * 59, second * 12, second).unwrap_err(),
        LifetimeError::CaTooShort { ca: second * 59 }
    );
    assert_eq!(
        Lifetimes::new(second * 60, second * 21, second)
            .unwrap_err()
            .to_string(),
        "--webhook-ca-validity 1m must be at least three times --webhook-cert-validity 21s: a serving certificate must fit in the last third of its CA's life, when the next CA takes over"
    );
    assert_eq!(
        Lifetimes::new(second * 60, second * 17, second * 3)
            .unwrap_err()
            .to_string(),
        "--webhook-cert-validity 17s must be at least six times --webhook-cert-check-interval 3s: a certificate is renewed when a third of its life is left, and that must span two checks"
    );
    let fast = Lifetimes::new(second * 60, second * 20, second * 2).unwrap();
    assert_eq!(
        (fast.ca_renew_before(), fast.leaf_renew_before()),
        (second * 20, Duration::nanoseconds(6_666_666_666))
    );
}

#[test]
fn a_certificate_of_a_new_ca_is_served_only_once_that_ca_has_settled_in_ca_bundle() {
    let (old, new) = (b"old CA".as_slice(), b"new CA".as_slice());
    // Nothing served yet, or a re-issue under the same CA: at once.
    assert!(should_serve(None, new, None));
    assert!(should_serve(Some(old), old, None));
    // Another CA: only once it has settled.
    assert!(!should_serve(Some(old), new, None));
    assert!(!should_serve(Some(old), new, Some(old)));
    assert!(should_serve(Some(old), new, Some(new)));
}

#[test]
fn a_new_name_reissues_the_serving_certificate() {
    let bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    let wider = serving_names("mmf-operator", "mmf-system", Some("localhost"));
    let (renewed, why) = renew_at(Some(&bundle), &wider, start(), true).unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(leaf(&renewed).names, wider);
}

#[test]
fn the_ca_rotates_when_a_third_of_its_life_is_left_publishing_both_before_switching() {
    let mut bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    // Keep the serving certificate fresh until the CA nears expiry.
    let mut now = start();
    for _ in 0..3 {
        now += Duration::days(340);
        let (renewed, why) = renew_at(Some(&bundle), &names(), now, true).unwrap();
        assert_eq!(why, Renewal::LeafReissued);
        bundle = renewed;
    }
    let old_ca = bundle.ca_cert.clone();
    let old_leaf = bundle.tls_cert.clone();
    now += Duration::days(200); // Day 1,220: the CA has 605 of its 1,825 days left.

    // Step 1: a new CA, the old one kept beside it; the serving certificate re-issued by the
    // old CA, so it lasts a whole lifetime while the new CA is being published.
    let (rotated, why) = renew_at(Some(&bundle), &names(), now, true).unwrap();
    assert_eq!(why, Renewal::CaRotated);
    assert_ne!(rotated.ca_cert, old_ca);
    assert_eq!(rotated.previous_ca_cert.as_deref(), Some(old_ca.as_str()));
    assert_ne!(rotated.tls_cert, old_leaf);
    assert_eq!(leaf(&rotated).issuer, ca(&bundle).subject);
    assert_eq!(
        leaf(&rotated).not_after,
        (now + Duration::days(365)).unix_timestamp()
    );
    let bundle_text = rotated.ca_bundle();
    assert!(bundle_text.starts_with(rotated.ca_cert.trim_end()));
    assert!(bundle_text.contains(old_ca.trim_end()));

    // Until the new CA is published, the serving certificate stays on the old one.
    assert_eq!(renew_at(Some(&rotated), &names(), now, false), None);

    // Step 2: once published, the serving certificate moves to the new CA.
    let (switched, why) = renew_at(Some(&rotated), &names(), now, true).unwrap();
    assert_eq!(why, Renewal::LeafReissued);
    assert_eq!(leaf(&switched).issuer, ca(&switched).subject);
    assert_eq!(switched.previous_ca_cert.as_deref(), Some(old_ca.as_str()));

    // Step 3: renewals keep the old CA published while it is valid (it expires on day 1,825)...
    let mut renewed = switched;
    for day in [1_470, 1_714] {
        now = start() + Duration::days(day);
        let (next, why) = renew_at(Some(&renewed), &names(), now, true).unwrap();
        assert_eq!(why, Renewal::LeafReissued, "day {day}");
        assert_eq!(next.previous_ca_cert.as_deref(), Some(old_ca.as_str()));
        renewed = next;
    }

    // ...and drop it once it has expired.
    now = start() + Duration::days(1_826);
    let (dropped, why) = renew_at(Some(&renewed), &names(), now, true).unwrap();
    assert_eq!(why, Renewal::PreviousCaDropped);
    assert_eq!(dropped.previous_ca_cert, None);
    assert_eq!(dropped.tls_cert, renewed.tls_cert);
}

#[test]
fn garbage_in_the_secret_is_replaced() {
    let mut bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    bundle.tls_cert = "not a certificate".to_owned();
    let (_, why) = renew_at(Some(&bundle), &names(), start(), true).unwrap();
    assert_eq!(why, Renewal::Issued);
}

#[test]
fn secret_data_round_trips() {
    let bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    let data = bundle.to_secret_data();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    );
    assert_eq!(CertBundle::from_secret_data(&data), Some(bundle));
}

#[test]
fn readiness_compares_the_published_bundle_with_our_ca() {
    let bundle = issue_all(&names(), start(), lifetimes()).unwrap();
    let other = issue_all(&names(), start(), lifetimes()).unwrap();
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
