//! Which plugins a service loads, and in what order.
//!
//! Which versions load is version solving (`core::solve`); this module orders what was chosen.
//! Load order: dependencies first (topological), then higher `priority` first, then name.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Semver requirement on the version (`*` when unset).
    pub requirement: String,
    /// Every known version of the plugin (its MmfPlugin and its revisions); empty when the
    /// plugin does not exist.
    pub candidates: Vec<&'a MmfPlugin>,
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
