//! Version solving: one revision of every plugin a service loads, such that the service's
//! requirements and every chosen revision's `dependencies` hold.
//!
//! The search is `pubgrub`'s; this module feeds it the service's requests and the candidate
//! revisions of each plugin, and turns a failure into one sentence a person can act on.
//! Candidates rejected in the environment (signature, policy) are never chosen: a service that
//! follows a plugin stays on the highest good revision and says so ([`LastKnownGood`]).
//! A conflict removes only the plugins it involves; the rest of the service is solved again
//! without them, so the plugins that depended on a removed one report it in turn.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fmt;

use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, DerivationTree, External,
    PackageResolutionStatistics, PubGrubError, Ranges,
};
use semver::{Version, VersionReq};

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
                "no version of plugin {:?} matches {} ({}.version); versions: {}; change the requirement or apply a matching version",
                request.name,
                request.requirement,
                request.field,
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

/// A node of the problem: the service itself (the root) or a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Package {
    Service,
    Plugin(String),
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Package::Service => f.write_str("the service"),
            Package::Plugin(name) => f.write_str(name),
        }
    }
}

/// Why a candidate cannot be used although the solver never saw a conflict for it: a required
/// dependency is absent from the service, or no good version of it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Gap(String);

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Set = Ranges<Version>;

/// Feeds pubgrub the good candidates of the active requests.
struct Provider<'a> {
    requests: BTreeMap<&'a str, (&'a Request, &'a VersionReq)>,
    /// Position of each request in the service, so explanations list sides in that order.
    rank: BTreeMap<&'a str, usize>,
    /// Good candidates per active plugin, highest first.
    good: BTreeMap<&'a str, Vec<&'a Candidate>>,
    ruled_out: &'a BTreeMap<String, String>,
}

impl<'a> Provider<'a> {
    fn new(
        active: &'a [(&'a Request, VersionReq)],
        candidates: &'a BTreeMap<String, Vec<Candidate>>,
        ruled_out: &'a BTreeMap<String, String>,
    ) -> Self {
        let requests: BTreeMap<&str, (&Request, &VersionReq)> = active
            .iter()
            .map(|(r, req)| (r.name.as_str(), (*r, req)))
            .collect();
        let good = requests
            .keys()
            .map(|name| {
                let mut good: Vec<&Candidate> = candidates
                    .get(*name)
                    .map(|c| c.iter().filter(|c| c.rejection.is_none()).collect())
                    .unwrap_or_default();
                good.sort_by(|a, b| b.version.cmp(&a.version));
                (*name, good)
            })
            .collect();
        let rank = active
            .iter()
            .enumerate()
            .map(|(index, (r, _))| (r.name.as_str(), index + 1))
            .collect();
        Provider {
            requests,
            rank,
            good,
            ruled_out,
        }
    }

    /// The good versions of `name` matching `requirement`, as a pubgrub set.
    fn matching(&self, name: &str, requirement: &VersionReq) -> Set {
        self.good
            .get(name)
            .into_iter()
            .flatten()
            .filter(|c| requirement.matches(&c.version))
            .fold(Set::empty(), |set, c| {
                set.union(&Set::singleton(c.version.clone()))
            })
    }

    fn candidate(&self, name: &str, version: &Version) -> Option<&Candidate> {
        self.good
            .get(name)?
            .iter()
            .copied()
            .find(|c| c.version == *version)
    }

    fn good_versions(&self, name: &str) -> String {
        version_list(
            self.good
                .get(name)
                .into_iter()
                .flatten()
                .map(|c| &c.version),
        )
    }

    /// One sentence for the conflict, and the requested plugins to remove.
    fn explain(&self, tree: &DerivationTree<Package, Set, Gap>) -> (Problem, BTreeSet<String>) {
        let mut leaves = Vec::new();
        collect_leaves(tree, &mut leaves);
        // Two requirements on the same plugin that no version satisfies together.
        for (i, first) in leaves.iter().enumerate() {
            let External::FromDependencyOf(a, a_set, target, a_needs) = first else {
                continue;
            };
            for second in &leaves[i + 1..] {
                let External::FromDependencyOf(b, b_set, other, b_needs) = second else {
                    continue;
                };
                if other != target || a == b || !a_needs.is_disjoint(b_needs) {
                    continue;
                }
                let Package::Plugin(target_name) = target else {
                    continue;
                };
                let ((a, a_set), (b, b_set)) = if self.rank_of(b) < self.rank_of(a) {
                    ((b, b_set), (a, a_set))
                } else {
                    ((a, a_set), (b, b_set))
                };
                let message = format!(
                    "{} needs {target_name} {}, but {} needs {target_name} {}; versions of {target_name}: {}; relax one requirement or publish a compatible version",
                    self.describe(a, a_set),
                    self.requirement_text(a, a_set, target_name),
                    self.describe(b, b_set),
                    self.requirement_text(b, b_set, target_name),
                    self.good_versions(target_name),
                );
                let involved = [a, b]
                    .into_iter()
                    .filter_map(|p| match p {
                        Package::Plugin(name) => Some(name.clone()),
                        Package::Service => None,
                    })
                    .collect();
                return (
                    Problem {
                        kind: ProblemKind::DependencyConflict,
                        message,
                    },
                    involved,
                );
            }
        }
        // A candidate unusable on its own: a dependency absent or without a matching version.
        for leaf in &leaves {
            if let External::Custom(Package::Plugin(name), _, gap) = leaf {
                let kind = if gap.0.contains(" is installed") || gap.0.contains(" are installed") {
                    ProblemKind::DependencyConflict
                } else {
                    ProblemKind::DependencyMissing
                };
                return (
                    Problem {
                        kind,
                        message: gap.0.clone(),
                    },
                    BTreeSet::from([name.clone()]),
                );
            }
        }
        let involved = tree
            .packages()
            .into_iter()
            .filter_map(|p| match p {
                Package::Plugin(name) => Some(name.clone()),
                Package::Service => None,
            })
            .collect();
        let message = <pubgrub::DefaultStringReporter as pubgrub::Reporter<_, _, _>>::report(tree)
            .replace('\n', " ");
        (
            Problem {
                kind: ProblemKind::DependencyConflict,
                message,
            },
            involved,
        )
    }

    /// The service first, then requests in the order the service lists them.
    fn rank_of(&self, package: &Package) -> usize {
        match package {
            Package::Service => 0,
            Package::Plugin(name) => self.rank.get(name.as_str()).copied().unwrap_or(usize::MAX),
        }
    }

    /// `payment ^2 (spec.plugins[0])` when the service constrains the plugin, otherwise the
    /// plugin's versions in `set`: `audit 1.0.0`.
    fn describe(&self, package: &Package, set: &Set) -> String {
        match package {
            Package::Service => "the service".to_owned(),
            Package::Plugin(name) => match self.requests.get(name.as_str()) {
                Some((request, _)) if request.requirement.trim() != "*" => {
                    format!("{name} {} ({})", request.requirement, request.field)
                }
                _ => format!(
                    "{name} {}",
                    version_list(
                        self.good
                            .get(name.as_str())
                            .into_iter()
                            .flatten()
                            .map(|c| &c.version)
                            .filter(|v| set.contains(*v))
                    )
                ),
            },
        }
    }

    /// The requirement text `package` (at versions in `set`) places on `target`.
    fn requirement_text(&self, package: &Package, set: &Set, target: &str) -> String {
        match package {
            Package::Service => self
                .requests
                .get(target)
                .map(|(r, _)| format!("{} ({})", r.requirement, r.field))
                .unwrap_or_else(|| "*".to_owned()),
            Package::Plugin(name) => self
                .good
                .get(name.as_str())
                .into_iter()
                .flatten()
                .filter(|c| set.contains(&c.version))
                .flat_map(|c| &c.dependencies)
                .find(|d| d.name == target)
                .map(|d| d.requirement.clone())
                .unwrap_or_else(|| "*".to_owned()),
        }
    }
}

fn collect_leaves<'t>(
    tree: &'t DerivationTree<Package, Set, Gap>,
    leaves: &mut Vec<&'t External<Package, Set, Gap>>,
) {
    match tree {
        DerivationTree::External(external) => leaves.push(external),
        DerivationTree::Derived(derived) => {
            collect_leaves(&derived.cause1, leaves);
            collect_leaves(&derived.cause2, leaves);
        }
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Package;
    type V = Version;
    type VS = Set;
    type M = Gap;
    type Err = Infallible;
    type Priority = (u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Package,
        range: &Set,
        statistics: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let count = match package {
            Package::Service => 1,
            Package::Plugin(name) => self
                .good
                .get(name.as_str())
                .map(|c| c.iter().filter(|c| range.contains(&c.version)).count())
                .unwrap_or(0),
        };
        if count == 0 {
            return (u32::MAX, Reverse(0));
        }
        (statistics.conflict_count(), Reverse(count))
    }

    fn choose_version(
        &self,
        package: &Package,
        range: &Set,
    ) -> Result<Option<Version>, Infallible> {
        Ok(match package {
            Package::Service => Some(Version::new(0, 0, 0)).filter(|v| range.contains(v)),
            // Highest first: follow-latest, and the newest revision a pin range allows.
            Package::Plugin(name) => self
                .good
                .get(name.as_str())
                .and_then(|c| c.iter().find(|c| range.contains(&c.version)))
                .map(|c| c.version.clone()),
        })
    }

    fn get_dependencies(
        &self,
        package: &Package,
        version: &Version,
    ) -> Result<Dependencies<Package, Set, Gap>, Infallible> {
        let Package::Plugin(name) = package else {
            let constraints: DependencyConstraints<Package, Set> = self
                .requests
                .iter()
                .map(|(name, (_, requirement))| {
                    (
                        Package::Plugin((*name).to_owned()),
                        self.matching(name, requirement),
                    )
                })
                .collect();
            return Ok(Dependencies::Available(constraints));
        };
        let Some(candidate) = self.candidate(name, version) else {
            return Ok(Dependencies::Unavailable(Gap(format!(
                "{name} {version} is not a known revision"
            ))));
        };
        let mut constraints = Vec::new();
        for dependency in &candidate.dependencies {
            let prefix = format!(
                "plugin {name:?} requires plugin {:?} at {}, but",
                dependency.name, dependency.requirement
            );
            if !self.requests.contains_key(dependency.name.as_str()) {
                let why = match self.ruled_out.get(&dependency.name) {
                    Some(reason) => format!("it is not loaded ({reason})"),
                    None => format!(
                        "the service does not enable it: add {{name: {}}} to spec.plugins",
                        dependency.name
                    ),
                };
                return Ok(Dependencies::Unavailable(Gap(format!("{prefix} {why}"))));
            }
            // `evaluate_plugin` rejects plugins whose requirements do not parse, so a bad one
            // here matches nothing.
            let set = VersionReq::parse(&dependency.requirement)
                .map(|req| self.matching(&dependency.name, &req))
                .unwrap_or_else(|_| Set::empty());
            if set.is_empty() {
                let versions: Vec<&Version> = self
                    .good
                    .get(dependency.name.as_str())
                    .into_iter()
                    .flatten()
                    .map(|c| &c.version)
                    .collect();
                let installed = match versions.len() {
                    1 => format!("version {} is installed", versions[0]),
                    _ => format!(
                        "versions {} are installed",
                        version_list(versions.into_iter())
                    ),
                };
                return Ok(Dependencies::Unavailable(Gap(format!(
                    "{prefix} {installed}: apply a matching version of {} or update {name}'s dependency",
                    dependency.name
                ))));
            }
            constraints.push((Package::Plugin(dependency.name.clone()), set));
        }
        Ok(Dependencies::Available(constraints.into_iter().collect()))
    }
}

#[cfg(test)]
#[path = "solve_tests.rs"]
mod tests;
