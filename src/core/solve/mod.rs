//! Version solving: one revision of every plugin a service loads, such that the service's
//! requirements and every chosen revision's `dependencies` hold.
//!
//! The search is `pubgrub`'s; this module feeds it the service's requests and the candidate
//! revisions of each plugin, and turns a failure into one sentence a person can act on.
//! Candidates rejected in the environment (signature, policy) are never chosen: a service that
//! follows a plugin stays on the highest good revision and says so ([`LastKnownGood`]).
//! A conflict removes only the plugins it involves; the rest of the service is solved again
//! without them, so the plugins that depended on a removed one report it in turn.

mod provider;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use pubgrub::PubGrubError;
use semver::{Version, VersionReq};

use provider::{Package, Provider};

/// A plugin the service asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Plugin name.
    pub name: String,
    /// Semver requirement text (`*` when the service sets none).
    pub requirement: String,
    /// Field that asked for it, for messages (`spec.plugins[0]`).
    pub field: String,
}

/// A required dependency of a candidate revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Plugin name.
    pub name: String,
    /// Semver requirement text.
    pub requirement: String,
}

/// One version of a plugin the service could load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The revision's version.
    pub version: Version,
    /// Its required dependencies (optional ones only order loading and are not solved).
    pub dependencies: Vec<Dependency>,
    /// Why the environment rejects it (signature, policy), when it does.
    pub rejection: Option<String>,
}

/// A followed plugin whose newest matching revision was rejected, so an older good one loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastKnownGood {
    /// Plugin name.
    pub plugin: String,
    /// The highest matching revision, rejected.
    pub rejected_version: Version,
    /// Why it was rejected.
    pub reason: String,
    /// The revision loaded instead.
    pub staying_on: Version,
}

impl fmt::Display for LastKnownGood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} rejected: {}; staying on {}",
            self.plugin, self.rejected_version, self.reason, self.staying_on
        )
    }
}

/// What kind of problem keeps a requested plugin out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The requirement is not valid semver.
    InvalidRequirement,
    /// No revision matches the service's requirement.
    NoMatchingVersion,
    /// Every matching revision is rejected by the environment.
    Rejected,
    /// A required dependency is not enabled or not loaded in the service.
    DependencyMissing,
    /// Requirements on a dependency cannot all hold.
    DependencyConflict,
}

/// Why a requested plugin is not loaded, as one actionable sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The kind, for violation reasons.
    pub kind: ProblemKind,
    /// The sentence.
    pub message: String,
}

/// The solver's answer for one requested plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Load this version.
    Chosen {
        /// The chosen version.
        version: Version,
        /// Set when a newer matching revision was rejected.
        last_known_good: Option<LastKnownGood>,
    },
    /// Not loaded.
    Unresolved(Problem),
}

/// Chooses one candidate per request. `candidates` holds every known revision per plugin name;
/// `unavailable` names plugins the caller already ruled out (not found, disabled, invalid
/// configuration) with the reason, so their dependents say why.
pub fn solve(
    requests: &[Request],
    candidates: &BTreeMap<String, Vec<Candidate>>,
    unavailable: &BTreeMap<String, String>,
) -> BTreeMap<String, Resolution> {
    let mut outcomes = BTreeMap::new();
    let mut ruled_out = unavailable.clone();
    let mut active: Vec<(&Request, VersionReq)> = Vec::new();
    for request in requests {
        if unavailable.contains_key(&request.name) {
            continue;
        }
        match admit(request, candidates.get(&request.name).map(Vec::as_slice)) {
            Ok(requirement) => active.push((request, requirement)),
            Err(problem) => {
                ruled_out.insert(request.name.clone(), problem.message.clone());
                outcomes.insert(request.name.clone(), Resolution::Unresolved(problem));
            }
        }
    }
    while !active.is_empty() {
        let step = {
            let provider = Provider::new(&active, candidates, &ruled_out);
            match pubgrub::resolve(&provider, Package::Service, Version::new(0, 0, 0)) {
                Ok(solution) => Step::Solved(solution.into_iter().collect()),
                Err(PubGrubError::NoSolution(mut tree)) => {
                    tree.collapse_no_versions();
                    Step::Conflict(provider.explain(&tree))
                }
                Err(other) => Step::Conflict((
                    Problem {
                        kind: ProblemKind::DependencyConflict,
                        message: other.to_string(),
                    },
                    BTreeSet::new(),
                )),
            }
        };
        match step {
            Step::Solved(solution) => {
                for (request, _) in &active {
                    let resolution = match solution.get(&Package::Plugin(request.name.clone())) {
                        Some(version) => Resolution::Chosen {
                            last_known_good: last_known_good(request, &active, candidates, version),
                            version: version.clone(),
                        },
                        None => Resolution::Unresolved(Problem {
                            kind: ProblemKind::DependencyConflict,
                            message: format!("{} was left out of the solution", request.name),
                        }),
                    };
                    outcomes.insert(request.name.clone(), resolution);
                }
                break;
            }
            Step::Conflict((problem, involved)) => {
                let before = active.len();
                active.retain(|(request, _)| {
                    let hit = involved.contains(&request.name);
                    if hit {
                        ruled_out.insert(request.name.clone(), problem.message.clone());
                        outcomes.insert(
                            request.name.clone(),
                            Resolution::Unresolved(problem.clone()),
                        );
                    }
                    !hit
                });
                // Nothing attributable: no request of this service can be trusted to solve.
                if active.len() == before {
                    fail_all(&mut active, &mut outcomes, problem);
                }
            }
        }
    }
    outcomes
}

/// One round of solving.
enum Step {
    Solved(BTreeMap<Package, Version>),
    Conflict((Problem, BTreeSet<String>)),
}

fn fail_all(
    active: &mut Vec<(&Request, VersionReq)>,
    outcomes: &mut BTreeMap<String, Resolution>,
    problem: Problem,
) {
    for (request, _) in active.drain(..) {
        outcomes.insert(
            request.name.clone(),
            Resolution::Unresolved(problem.clone()),
        );
    }
}

/// Checks a request against its candidates before solving: the requirement parses, something
/// matches it, and something matching is good.
fn admit(request: &Request, candidates: Option<&[Candidate]>) -> Result<VersionReq, Problem> {
    let requirement = VersionReq::parse(&request.requirement).map_err(|error| Problem {
        kind: ProblemKind::InvalidRequirement,
        message: format!(
            "{}.version {:?} is not a semver requirement ({error}): use for example =1.0.0 or ^1",
            request.field, request.requirement
        ),
    })?;
    let candidates = candidates.unwrap_or_default();
    let mut matching: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| requirement.matches(&c.version))
        .collect();
    matching.sort_by(|a, b| b.version.cmp(&a.version));
    let Some(highest) = matching.first() else {
        return Err(Problem {
            kind: ProblemKind::NoMatchingVersion,
            message: format!(
                "no version of plugin {:?} matches {}; versions: {}; change the requirement or apply a matching version",
                request.name,
                request.requirement,
                version_list(candidates.iter().map(|c| &c.version))
            ),
        });
    };
    if matching.iter().all(|c| c.rejection.is_some()) {
        return Err(Problem {
            kind: ProblemKind::Rejected,
            message: format!(
                "{} {} rejected: {}",
                request.name,
                highest.version,
                highest.rejection.as_deref().unwrap_or_default()
            ),
        });
    }
    Ok(requirement)
}

fn last_known_good(
    request: &Request,
    active: &[(&Request, VersionReq)],
    candidates: &BTreeMap<String, Vec<Candidate>>,
    chosen: &Version,
) -> Option<LastKnownGood> {
    let requirement = active
        .iter()
        .find(|(r, _)| r.name == request.name)
        .map(|(_, req)| req)?;
    let highest = candidates
        .get(&request.name)?
        .iter()
        .filter(|c| requirement.matches(&c.version))
        .max_by(|a, b| a.version.cmp(&b.version))?;
    let reason = highest.rejection.as_ref()?;
    (highest.version > *chosen).then(|| LastKnownGood {
        plugin: request.name.clone(),
        rejected_version: highest.version.clone(),
        reason: reason.clone(),
        staying_on: chosen.clone(),
    })
}

/// Versions ascending, comma-separated; `none` when there are none.
fn version_list<'v>(versions: impl Iterator<Item = &'v Version>) -> String {
    let sorted: BTreeSet<&Version> = versions.collect();
    if sorted.is_empty() {
        return "none".to_owned();
    }
    sorted
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "../solve_tests.rs"]
mod tests;
