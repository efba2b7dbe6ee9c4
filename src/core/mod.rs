//! The pure core: policy, signatures, configuration merging, dependency resolution and
//! rendering. Nothing here touches the network, the clock, the environment or the filesystem;
//! the CLI, the webhook and the controller gather inputs, call these functions and write the
//! results, so all three apply the same rules.

pub mod audit;
pub mod drift;
pub mod environment;
pub mod history;
pub mod limits;
pub mod manifest;
pub mod merge;
pub mod plugin_config;
pub mod plugin_package;
pub mod policy;
pub mod quantity;
pub mod render;
pub mod resolve;
pub mod revisions;
pub mod schema_check;
pub mod signature;
pub mod solve;
pub mod status;
pub mod verdict_cache;
pub mod violation;
