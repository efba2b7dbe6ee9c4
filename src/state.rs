//! State shared by the controller and the admission webhook inside `mmf run`: the current
//! environment config (swapped whole on reload) and a read-only view of the watch caches.
//! Both decide from these alone, so admission never calls the API server.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::api::MmfPlugin;
use crate::config::{ConfigError, ConfigSet, EnvironmentPolicy};
use crate::core::environment::environment_for;

/// The loaded config directory plus the operator's default environment. Readers take a cheap
/// `Arc` snapshot; a reload replaces the whole set atomically.
#[derive(Debug)]
pub struct SharedConfig {
    current: RwLock<Arc<ConfigSet>>,
    default_environment: String,
}

impl SharedConfig {
    /// Wraps an initial config.
    pub fn new(config: ConfigSet, default_environment: impl Into<String>) -> SharedConfig {
        SharedConfig {
            current: RwLock::new(Arc::new(config)),
            default_environment: default_environment.into(),
        }
    }

    /// A consistent snapshot of the config.
    pub fn current(&self) -> Arc<ConfigSet> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in a newly loaded config.
    pub fn replace(&self, config: ConfigSet) {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(config);
    }

    /// Environment used for namespaces without the environment label.
    pub fn default_environment(&self) -> &str {
        &self.default_environment
    }
}

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
