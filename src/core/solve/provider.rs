//! The pubgrub side of the solver: the dependency provider over the good candidates of a
//! service's requests, and the explanation of a failure in one sentence.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fmt;

use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, DerivationTree, External,
    PackageResolutionStatistics, Ranges,
};
use semver::{Version, VersionReq};

use super::{Candidate, Problem, ProblemKind, Request, version_list};

/// A node of the problem: the service itself (the root) or a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Package {
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
pub(super) struct Gap(String);

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) type Set = Ranges<Version>;

/// Feeds pubgrub the good candidates of the active requests.
pub(super) struct Provider<'a> {
    requests: BTreeMap<&'a str, (&'a Request, &'a VersionReq)>,
    /// Position of each request in the service, so explanations list sides in that order.
    rank: BTreeMap<&'a str, usize>,
    /// Good candidates per active plugin, highest first.
    good: BTreeMap<&'a str, Vec<&'a Candidate>>,
    ruled_out: &'a BTreeMap<String, String>,
}

impl<'a> Provider<'a> {
    pub(super) fn new(
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
    pub(super) fn explain(
        &self,
        tree: &DerivationTree<Package, Set, Gap>,
    ) -> (Problem, BTreeSet<String>) {
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
