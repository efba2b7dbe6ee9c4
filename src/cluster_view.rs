//! What the controller and the admission webhook inside `mmf run` know of the cluster: a
//! read-only view of the watch caches, and the environment of a namespace. Together with the
//! shared config ([`crate::config::SharedConfig`]) they decide from these alone, so admission
//! never calls the API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{ENVIRONMENT_LABEL, MmfPlugin};
use crate::config::{ConfigError, ConfigSet, EnvironmentPolicy};
use crate::core::environment::environment_for;

/// What the watch caches know. Implemented by the controller's reflectors, and by plain maps in
/// tests.
pub trait ClusterView: Send + Sync {
    /// Labels of a namespace, or None if the namespace is not (yet) in the cache.
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
    /// Every MmfPlugin of a namespace.
    fn plugins_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>>;
    /// Every version services of a namespace may load: its MmfPlugins and, as plugins, its
    /// MmfPluginRevisions ([`crate::api::MmfPluginRevision::to_plugin`]). Without revisions
    /// (a view that does not track them, or before the first one exists) that is
    /// [`ClusterView::plugins_in`].
    fn candidates_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>> {
        self.plugins_in(namespace)
    }
    /// True once every cache has completed its initial list.
    fn is_synced(&self) -> bool;
}

/// The environment name and policy for objects in `namespace`, or the error to report on the
/// object (an environment without a config file is never silently replaced by another).
pub fn environment_of<'c>(
    view: &dyn ClusterView,
    config: &'c ConfigSet,
    default_environment: &str,
    namespace: &str,
) -> (String, Result<&'c EnvironmentPolicy, ConfigError>) {
    let labels = view.namespace_labels(namespace);
    let name = environment_for(labels.as_ref(), default_environment);
    let policy = config.environment(&name);
    (name, policy)
}

/// A fixed [`ClusterView`] from plain maps, always synced: the one stand-in for the watch
/// caches in tests, benches and fuzz targets.
#[derive(Debug, Clone, Default)]
pub struct StaticView {
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    plugins: BTreeMap<String, Vec<Arc<MmfPlugin>>>,
    every_namespace: Option<BTreeMap<String, String>>,
}

impl StaticView {
    /// A view knowing no namespace and no plugin.
    pub fn new() -> StaticView {
        StaticView::default()
    }

    /// Namespace `namespace`, labelled with environment `environment`.
    pub fn namespace_in(self, namespace: &str, environment: &str) -> StaticView {
        self.namespace_labelled(namespace, environment_labels(environment))
    }

    /// Namespace `namespace` with exactly `labels`.
    pub fn namespace_labelled(
        mut self,
        namespace: &str,
        labels: BTreeMap<String, String>,
    ) -> StaticView {
        self.namespaces.insert(namespace.to_owned(), labels);
        self
    }

    /// Every namespace not named otherwise is known and in environment `environment`.
    pub fn every_namespace_in(mut self, environment: &str) -> StaticView {
        self.every_namespace = Some(environment_labels(environment));
        self
    }

    /// `plugin`, cached in its own namespace.
    pub fn plugin(mut self, plugin: Arc<MmfPlugin>) -> StaticView {
        let namespace = plugin.metadata.namespace.clone().unwrap_or_default();
        self.plugins.entry(namespace).or_default().push(plugin);
        self
    }
}

fn environment_labels(environment: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ENVIRONMENT_LABEL.to_owned(), environment.to_owned())])
}

impl ClusterView for StaticView {
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(namespace)
            .or(self.every_namespace.as_ref())
            .cloned()
    }

    fn plugins_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>> {
        self.plugins.get(namespace).cloned().unwrap_or_default()
    }

    fn is_synced(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn plugin(namespace: &str) -> Arc<MmfPlugin> {
        let yaml = format!(
            "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata: {{name: payments, namespace: {namespace}}}\nspec: {{version: 1.0.0, image: r/p:1}}\n"
        );
        Arc::new(serde_saphyr::from_str(&yaml).unwrap())
    }

    #[test]
    fn a_static_view_knows_only_what_it_was_given() {
        let view = StaticView::new()
            .namespace_in("prod", "production")
            .plugin(plugin("prod"));
        assert_eq!(
            view.namespace_labels("prod"),
            Some(environment_labels("production"))
        );
        assert_eq!(view.namespace_labels("dev"), None);
        assert_eq!(view.plugins_in("prod"), vec![plugin("prod")]);
        assert_eq!(view.plugins_in("dev"), Vec::<Arc<MmfPlugin>>::new());
        assert!(view.is_synced());
    }

    #[test]
    fn every_other_namespace_can_be_put_in_one_environment() {
        let view = StaticView::new()
            .namespace_in("dev", "development")
            .every_namespace_in("production");
        assert_eq!(
            view.namespace_labels("anything"),
            Some(environment_labels("production"))
        );
        assert_eq!(
            view.namespace_labels("dev"),
            Some(environment_labels("development"))
        );
    }
}
