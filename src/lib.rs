//! mmf-operator: turns MMF plugin strategy into cluster state.
//!
//! Layers, from pure to I/O:
//! - [`api`]: the custom resource types (the API contract);
//! - [`config`]: the environment policy and per-plugin settings (parsing is pure, loading reads files);
//! - [`core`]: policy, signatures, config merging, dependency resolution and rendering, as plain
//!   functions of their inputs, shared by the CLI, the webhook and the controller;
//! - [`cli`]: the `mmf` command line, a thin shell over the core;
//! - [`webhook`]: the validating admission webhook served by `mmf run`;
//! - [`audit`]: the audit trail's sink (records are built in [`core::audit`]).

pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod controller;
pub mod core;
pub mod manifest_edit;
pub mod position;
pub mod state;
pub mod webhook;
