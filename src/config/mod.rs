//! The shell side of the configuration: reading a config directory from disk, and the shared,
//! reloadable handle on what was read. The policy types and their parsing are pure and live in
//! [`crate::core::config`], re-exported here so callers name one module.

mod load;
mod shared;

pub use crate::core::config::*;
pub use load::{MAX_CONFIG_FILE_BYTES, load_dir};
pub use shared::SharedConfig;
