//! What the controller and the admission webhook inside `mmf run` know of the cluster: a
//! read-only view of the watch caches, and the environment of a namespace. Together with the
//! shared config ([`crate::config::SharedConfig`]) they decide from these alone, so admission
//! never calls the API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::MmfPlugin;
use crate::config::{ConfigError, ConfigSet, EnvironmentPolicy};
use crate::core::environment::environment_for;

/// What the watch caches know. Implemented by the controller's reflectors, and by plain maps in
/// tests.
pub trait ClusterView: Send + Sync {
    /// Labels of a namespace, or None if the namespace is not (yet) in the cache.
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>>;
    /// Every MmfPlugin of a namespace.
    fn plugins_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>>;
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
