#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use semver::Version;

use super::*;

fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

fn request(name: &str, requirement: &str, index: usize) -> Request {
    Request {
        name: name.to_owned(),
        requirement: requirement.to_owned(),
        field: format!("spec.plugins[{index}]"),
    }
}

fn good(version: &str, dependencies: &[(&str, &str)]) -> Candidate {
    Candidate {
        version: v(version),
        dependencies: dependencies
            .iter()
            .map(|(name, requirement)| Dependency {
                name: (*name).to_owned(),
                requirement: (*requirement).to_owned(),
            })
            .collect(),
        rejection: None,
    }
}

fn rejected(version: &str, reason: &str) -> Candidate {
    Candidate {
        rejection: Some(reason.to_owned()),
        ..good(version, &[])
    }
}

fn chosen(version: &str) -> Resolution {
    Resolution::Chosen {
        version: v(version),
        last_known_good: None,
    }
}

fn catalog(entries: Vec<(&str, Vec<Candidate>)>) -> BTreeMap<String, Vec<Candidate>> {
    entries
        .into_iter()
        .map(|(name, candidates)| (name.to_owned(), candidates))
        .collect()
}

fn solved(
    requests: &[Request],
    candidates: &BTreeMap<String, Vec<Candidate>>,
) -> Vec<(String, Resolution)> {
    solve(requests, candidates, &BTreeMap::new())
        .into_iter()
        .collect()
}

#[test]
fn two_versions_coexist_for_two_services_pinned_to_each() {
    let candidates = catalog(vec![(
        "payment",
        vec![good("1.0.0", &[]), good("1.1.0", &[])],
    )]);
    assert_eq!(
        solved(&[request("payment", "=1.0.0", 0)], &candidates),
        vec![("payment".to_owned(), chosen("1.0.0"))]
    );
    assert_eq!(
        solved(&[request("payment", "=1.1.0", 0)], &candidates),
        vec![("payment".to_owned(), chosen("1.1.0"))]
    );
}

#[test]
fn follow_latest_picks_the_newest_good_version() {
    let mut candidates = catalog(vec![("payment", vec![good("1.0.0", &[])])]);
    let follower = [request("payment", "*", 0)];
    assert_eq!(
        solved(&follower, &candidates),
        vec![("payment".to_owned(), chosen("1.0.0"))]
    );
    candidates
        .get_mut("payment")
        .unwrap()
        .push(good("1.1.0", &[]));
    assert_eq!(
        solved(&follower, &candidates),
        vec![("payment".to_owned(), chosen("1.1.0"))]
    );
}

#[test]
fn caret_follows_minor_releases_but_not_the_next_major() {
    let candidates = catalog(vec![(
        "payment",
        vec![good("1.0.0", &[]), good("1.3.0", &[]), good("2.0.0", &[])],
    )]);
    assert_eq!(
        solved(&[request("payment", "^1", 0)], &candidates),
        vec![("payment".to_owned(), chosen("1.3.0"))]
    );
}

#[test]
fn an_exact_pin_stays_on_its_version_when_newer_ones_exist() {
    let candidates = catalog(vec![(
        "payment",
        vec![good("1.0.0", &[]), good("1.1.0", &[]), good("2.0.0", &[])],
    )]);
    assert_eq!(
        solved(&[request("payment", "=1.0.0", 0)], &candidates),
        vec![("payment".to_owned(), chosen("1.0.0"))]
    );
}

#[test]
fn a_rejected_newer_version_leaves_followers_on_the_last_known_good_one() {
    let candidates = catalog(vec![(
        "production-payment",
        vec![
            good("1.0.0", &[]),
            good("1.1.0", &[]),
            rejected("1.2.0", "signature by an untrusted key"),
        ],
    )]);
    let outcome = solved(&[request("production-payment", "*", 0)], &candidates);
    let Resolution::Chosen {
        version,
        last_known_good: Some(last_known_good),
    } = &outcome[0].1
    else {
        panic!("expected last-known-good, got {outcome:?}");
    };
    assert_eq!(version, &v("1.1.0"));
    assert_eq!(
        last_known_good.to_string(),
        "production-payment 1.2.0 rejected: signature by an untrusted key; staying on 1.1.0"
    );
}

#[test]
fn a_pin_on_a_rejected_version_is_a_problem_not_a_fallback() {
    let candidates = catalog(vec![(
        "payment",
        vec![
            good("1.1.0", &[]),
            rejected("1.2.0", "spec.signature is missing"),
        ],
    )]);
    assert_eq!(
        solved(&[request("payment", "=1.2.0", 0)], &candidates),
        vec![(
            "payment".to_owned(),
            Resolution::Unresolved(Problem {
                kind: ProblemKind::Rejected,
                message: "payment 1.2.0 rejected: spec.signature is missing".to_owned(),
            })
        )]
    );
}

#[test]
fn a_pin_matching_nothing_names_the_versions_that_exist() {
    let candidates = catalog(vec![(
        "payment",
        vec![good("1.0.0", &[]), good("1.1.0", &[])],
    )]);
    assert_eq!(
        solved(&[request("payment", "=3.0.0", 2)], &candidates),
        vec![(
            "payment".to_owned(),
            Resolution::Unresolved(Problem {
                kind: ProblemKind::NoMatchingVersion,
                message: "no version of plugin \"payment\" matches =3.0.0; versions: 1.0.0, 1.1.0; change the requirement or apply a matching version".to_owned(),
            })
        )]
    );
}

#[test]
fn conflicting_requirements_of_two_plugins_are_explained_and_only_they_are_removed() {
    let candidates = catalog(vec![
        (
            "payment",
            vec![
                good("1.0.0", &[("ledger", "^1")]),
                good("2.0.0", &[("ledger", "^2")]),
            ],
        ),
        ("audit", vec![good("1.0.0", &[("ledger", "^1")])]),
        ("ledger", vec![good("1.4.0", &[]), good("2.0.0", &[])]),
        ("metrics", vec![good("1.0.0", &[])]),
    ]);
    let requests = [
        request("payment", "^2", 0),
        request("audit", "*", 1),
        request("ledger", "*", 2),
        request("metrics", "*", 3),
    ];
    let conflict = Resolution::Unresolved(Problem {
        kind: ProblemKind::DependencyConflict,
        message: "payment ^2 (spec.plugins[0]) needs ledger ^2, but audit 1.0.0 needs ledger ^1; versions of ledger: 1.4.0, 2.0.0; relax one requirement or publish a compatible version".to_owned(),
    });
    let outcome = solved(&requests, &candidates);
    // The sides read in the order the service lists the plugins; ledger and metrics still load.
    assert_eq!(
        outcome,
        vec![
            ("audit".to_owned(), conflict.clone()),
            ("ledger".to_owned(), chosen("2.0.0")),
            ("metrics".to_owned(), chosen("1.0.0")),
            ("payment".to_owned(), conflict),
        ]
    );
}

#[test]
fn a_dependency_the_service_does_not_enable_is_named_with_the_fix() {
    let candidates = catalog(vec![
        ("audit", vec![good("1.0.0", &[("base", "^1.2")])]),
        ("base", vec![good("1.2.0", &[])]),
    ]);
    assert_eq!(
        solved(&[request("audit", "*", 0)], &candidates),
        vec![(
            "audit".to_owned(),
            Resolution::Unresolved(Problem {
                kind: ProblemKind::DependencyMissing,
                message: "plugin \"audit\" requires plugin \"base\" at ^1.2, but the service does not enable it: add {name: base} to spec.plugins".to_owned(),
            })
        )]
    );
}

#[test]
fn a_dependency_without_a_matching_version_names_what_is_installed() {
    let candidates = catalog(vec![
        ("audit", vec![good("1.0.0", &[("base", "^1.2")])]),
        ("base", vec![good("2.0.0", &[])]),
    ]);
    assert_eq!(
        solved(&[request("audit", "*", 0), request("base", "*", 1)], &candidates),
        vec![
            (
                "audit".to_owned(),
                Resolution::Unresolved(Problem {
                    kind: ProblemKind::DependencyConflict,
                    message: "plugin \"audit\" requires plugin \"base\" at ^1.2, but version 2.0.0 is installed: apply a matching version of base or update audit's dependency".to_owned(),
                })
            ),
            ("base".to_owned(), chosen("2.0.0")),
        ]
    );
}

#[test]
fn the_solver_steps_back_to_an_older_dependency_that_satisfies_everyone() {
    let candidates = catalog(vec![
        ("payment", vec![good("1.0.0", &[("ledger", "^1")])]),
        ("ledger", vec![good("1.4.0", &[]), good("2.0.0", &[])]),
    ]);
    assert_eq!(
        solved(
            &[request("payment", "*", 0), request("ledger", "*", 1)],
            &candidates
        ),
        vec![
            ("ledger".to_owned(), chosen("1.4.0")),
            ("payment".to_owned(), chosen("1.0.0")),
        ]
    );
}

#[test]
fn a_plugin_whose_dependency_was_ruled_out_says_why() {
    let candidates = catalog(vec![("audit", vec![good("1.0.0", &[("base", "*")])])]);
    let unavailable = BTreeMap::from([("base".to_owned(), "it is disabled".to_owned())]);
    assert_eq!(
        solve(&[request("audit", "*", 0), request("base", "*", 1)], &candidates, &unavailable)
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(
            "audit".to_owned(),
            Resolution::Unresolved(Problem {
                kind: ProblemKind::DependencyMissing,
                message: "plugin \"audit\" requires plugin \"base\" at *, but it is not loaded (it is disabled)".to_owned(),
            })
        )]
    );
}

#[test]
fn an_invalid_requirement_is_reported_on_its_field() {
    let candidates = catalog(vec![("payment", vec![good("1.0.0", &[])])]);
    let outcome = solved(&[request("payment", "one", 0)], &candidates);
    let Resolution::Unresolved(problem) = &outcome[0].1 else {
        panic!("{outcome:?}");
    };
    assert_eq!(problem.kind, ProblemKind::InvalidRequirement);
    assert_eq!(
        problem.message,
        "spec.plugins[0].version \"one\" is not a semver requirement (unexpected character 'o' while parsing major version number): use for example =1.0.0 or ^1"
    );
}
