//! Which plugins a service loads, and in what order.
//!
//! Load order: dependencies first (topological), then higher `priority` first, then name.
//! Resolution is per service and per plugin: a broken plugin removes itself and whatever needs
//! it, never the rest.

use std::collections::{BTreeMap, BTreeSet};

use semver::{Version, VersionReq};

use crate::api::MmfPlugin;

/// A plugin a service asked for, after default plugins and service entries are combined.
#[derive(Debug, Clone, PartialEq)]
pub struct Requested<'a> {
    /// Plugin name.
    pub name: String,
    /// Load-order tie breaker: higher first.
    pub priority: i32,
    /// Field that asked for it, for messages (`spec.plugins[1]` or `default_plugins[0]`).
    pub field: String,
    /// The plugin, when it exists.
    pub plugin: Option<&'a MmfPlugin>,
}

/// Why a dependency edge is unsatisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyProblem {
    /// The dependency is not enabled (or not loadable) in the service.
    Missing {
        plugin: String,
        dependency: String,
        requirement: String,
    },
    /// The dependency is enabled at a version outside the range.
    VersionMismatch {
        plugin: String,
        dependency: String,
        requirement: String,
        found: String,
    },
}

/// Checks `plugin`'s required dependencies against the plugins loadable in the service.
pub fn dependency_problems(
    plugin: &MmfPlugin,
    plugin_name: &str,
    loadable: &BTreeMap<String, &MmfPlugin>,
) -> Vec<DependencyProblem> {
    let mut problems = Vec::new();
    for dependency in &plugin.spec.dependencies {
        // `evaluate_plugin` rejects a plugin whose requirements do not parse (InvalidSpec)
        // before resolution, so only loadable plugins with valid requirements get here.
        let Ok(requirement) = VersionReq::parse(&dependency.version) else {
            continue;
        };
        match loadable.get(&dependency.name) {
            None => problems.push(DependencyProblem::Missing {
                plugin: plugin_name.to_owned(),
                dependency: dependency.name.clone(),
                requirement: dependency.version.clone(),
            }),
            Some(found) => {
                let matches = Version::parse(&found.spec.version)
                    .map(|version| requirement.matches(&version))
                    .unwrap_or(false);
                if !matches {
                    problems.push(DependencyProblem::VersionMismatch {
                        plugin: plugin_name.to_owned(),
                        dependency: dependency.name.clone(),
                        requirement: dependency.version.clone(),
                        found: found.spec.version.clone(),
                    });
                }
            }
        }
    }
    problems
}

/// Orders `loadable` plugins: every (optional) dependency before its dependents, ties broken
/// by higher priority, then name. On a cycle, returns the cycle as a path `a -> b -> a`.
pub fn load_order(
    loadable: &BTreeMap<String, &MmfPlugin>,
    priorities: &BTreeMap<String, i32>,
) -> Result<Vec<String>, Vec<String>> {
    // Edges: dependency -> dependent, only between loadable plugins.
    let mut dependencies: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, plugin) in loadable {
        let entry = dependencies.entry(name.as_str()).or_default();
        for dependency in plugin
            .spec
            .dependencies
            .iter()
            .chain(&plugin.spec.optional_dependencies)
        {
            if loadable.contains_key(&dependency.name) && dependency.name != *name {
                entry.insert(dependency.name.as_str());
            } else if dependency.name == *name {
                return Err(vec![name.clone(), name.clone()]);
            }
        }
    }
    // A plugin loads as early as its most urgent dependent needs: its effective priority is
    // the highest among itself and everything that (transitively) depends on it.
    let mut effective: BTreeMap<&str, i32> = dependencies
        .keys()
        .map(|name| (*name, priorities.get(*name).copied().unwrap_or(100)))
        .collect();
    for _ in 0..dependencies.len() {
        let mut changed = false;
        for (dependent, deps) in &dependencies {
            let urgency = effective.get(dependent).copied().unwrap_or(100);
            for dependency in deps {
                if let Some(current) = effective.get_mut(dependency)
                    && *current < urgency
                {
                    *current = urgency;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let priority = |name: &str| effective.get(name).copied().unwrap_or(100);
    let mut order = Vec::with_capacity(loadable.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while placed.len() < dependencies.len() {
        // Kahn's algorithm, choosing among ready plugins by priority then name.
        let next = dependencies
            .iter()
            .filter(|(name, deps)| {
                !placed.contains(*name) && deps.iter().all(|d| placed.contains(d))
            })
            .map(|(name, _)| *name)
            .min_by(|a, b| priority(b).cmp(&priority(a)).then_with(|| a.cmp(b)));
        match next {
            Some(name) => {
                placed.insert(name);
                order.push(name.to_owned());
            }
            None => return Err(find_cycle(&dependencies, &placed)),
        }
    }
    Ok(order)
}

/// Walks unplaced plugins along dependency edges until a name repeats.
fn find_cycle(
    dependencies: &BTreeMap<&str, BTreeSet<&str>>,
    placed: &BTreeSet<&str>,
) -> Vec<String> {
    let Some(start) = dependencies.keys().find(|name| !placed.contains(*name)) else {
        return Vec::new();
    };
    let mut path: Vec<&str> = vec![start];
    let mut current = *start;
    loop {
        let Some(next) = dependencies
            .get(current)
            .and_then(|deps| deps.iter().find(|d| !placed.contains(*d)))
        else {
            return path.into_iter().map(str::to_owned).collect();
        };
        if let Some(position) = path.iter().position(|p| p == next) {
            let mut cycle: Vec<String> = path[position..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push((*next).to_owned());
            return cycle;
        }
        path.push(next);
        current = next;
    }
}
