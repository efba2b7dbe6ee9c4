//! Builders the unit tests share, so a new spec field is added in one place. (Integration
//! tests build objects from YAML fixtures.)

use crate::api::plugin::SignatureAlgorithm;
use crate::api::{MmfPlugin, MmfPluginSpec, PluginSignature};

/// MmfPlugin `name` at version 1.0.0 with `image` and nothing else set.
pub fn plugin(name: &str, image: &str) -> MmfPlugin {
    MmfPlugin::new(
        name,
        MmfPluginSpec {
            version: "1.0.0".into(),
            description: None,
            author: None,
            tags: vec![],
            image: image.into(),
            dependencies: vec![],
            optional_dependencies: vec![],
            mmf_version: None,
            services: vec![],
            config_schema: None,
            config: None,
            environments: Default::default(),
            signature: None,
            revision_history_limit: None,
        },
    )
}

/// `plugin` carrying an Ed25519 `spec.signature` by `key_id` with `value` (not a real one).
pub fn signed(mut plugin: MmfPlugin, key_id: &str, value: &str) -> MmfPlugin {
    plugin.spec.signature = Some(PluginSignature {
        key_id: key_id.into(),
        algorithm: SignatureAlgorithm::Ed25519,
        value: value.into(),
    });
    plugin
}
