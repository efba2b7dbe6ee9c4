//! The shell side of the configuration: reading a config directory from disk. The policy
//! types and their parsing are pure and live in [`crate::core::config`], re-exported here so
//! callers name one module.

mod load;

pub use crate::core::config::*;
pub use load::{MAX_CONFIG_FILE_BYTES, load_dir};
