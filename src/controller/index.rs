//! Which services use which plugins, so a plugin change re-reconciles exactly those services
//! (kube-runtime's store has no secondary indexes).

use std::collections::{BTreeMap, BTreeSet};

use crate::api::MmfService;

/// `(namespace, plugin)` -> services naming it in `spec.plugins`, and the reverse.
#[derive(Debug, Default)]
pub struct PluginIndex {
    users: BTreeMap<(String, String), BTreeSet<String>>,
    uses: BTreeMap<(String, String), BTreeSet<String>>,
}

impl PluginIndex {
    /// Records (or replaces) what `service` references.
    pub fn apply(&mut self, service: &MmfService) {
        let Some((namespace, name)) = key(service) else {
            return;
        };
        self.remove_service(&namespace, &name);
        let plugins: BTreeSet<String> = service
            .spec
            .plugins
            .iter()
            .map(|p| p.name.clone())
            .collect();
        for plugin in &plugins {
            self.users
                .entry((namespace.clone(), plugin.clone()))
                .or_default()
                .insert(name.clone());
        }
        self.uses.insert((namespace, name), plugins);
    }

    /// Forgets a deleted service.
    pub fn delete(&mut self, service: &MmfService) {
        if let Some((namespace, name)) = key(service) {
            self.remove_service(&namespace, &name);
        }
    }

    /// Rebuilds from a full list (after a re-list, deletes may have been missed).
    pub fn reset<'a>(&mut self, services: impl IntoIterator<Item = &'a MmfService>) {
        *self = PluginIndex::default();
        for service in services {
            self.apply(service);
        }
    }

    /// Services in `namespace` that name `plugin`.
    pub fn users_of(&self, namespace: &str, plugin: &str) -> Vec<String> {
        self.users
            .get(&(namespace.to_owned(), plugin.to_owned()))
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn remove_service(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(plugins) = self.uses.remove(&key) {
            for plugin in plugins {
                let user_key = (namespace.to_owned(), plugin);
                if let Some(users) = self.users.get_mut(&user_key) {
                    users.remove(name);
                    if users.is_empty() {
                        self.users.remove(&user_key);
                    }
                }
            }
        }
    }
}

fn key(service: &MmfService) -> Option<(String, String)> {
    Some((
        service.metadata.namespace.clone()?,
        service.metadata.name.clone()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MmfServiceSpec, PluginRef};

    fn service(namespace: &str, name: &str, plugins: &[&str]) -> MmfService {
        let mut service = MmfService::new(
            name,
            MmfServiceSpec {
                image: "i".into(),
                replicas: 1,
                service_type: Default::default(),
                port: 80,
                plugins: plugins
                    .iter()
                    .map(|p| PluginRef {
                        name: (*p).into(),
                        version: None,
                        enabled: true,
                        priority: 100,
                        config: None,
                    })
                    .collect(),
                resources: None,
                env: vec![],
                probes: Default::default(),
                metrics: Default::default(),
            },
        );
        service.metadata.namespace = Some(namespace.into());
        service
    }

    #[test]
    fn a_plugin_maps_to_exactly_the_services_of_its_namespace_that_use_it() {
        let mut index = PluginIndex::default();
        index.apply(&service("a", "shop", &["pay", "audit"]));
        index.apply(&service("a", "cart", &["pay"]));
        index.apply(&service("b", "shop", &["pay"]));
        assert_eq!(index.users_of("a", "pay"), ["cart", "shop"]);
        assert_eq!(index.users_of("a", "audit"), ["shop"]);
        assert_eq!(index.users_of("b", "audit"), Vec::<String>::new());
    }

    #[test]
    fn updates_and_deletes_drop_stale_entries() {
        let mut index = PluginIndex::default();
        index.apply(&service("a", "shop", &["pay", "audit"]));
        index.apply(&service("a", "shop", &["audit"]));
        assert_eq!(index.users_of("a", "pay"), Vec::<String>::new());
        index.delete(&service("a", "shop", &[]));
        assert_eq!(index.users_of("a", "audit"), Vec::<String>::new());
        assert!(index.users.is_empty() && index.uses.is_empty());
    }
}
