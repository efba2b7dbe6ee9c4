//! The config in force inside `mmf run`, shared by the controller and the admission webhook and
//! swapped whole when the files change (the controller watches the directory).

use std::sync::{Arc, RwLock};

use crate::core::config::ConfigSet;

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
