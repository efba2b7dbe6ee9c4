//! mmf-operator: turns MMF plugin strategy into cluster state.
//!
//! Modules in dependency order, from pure to I/O: each uses only the ones above it (a blank
//! line between them keeps rustfmt from sorting them). The data path and where each rule lives
//! are in `ARCHITECTURE.md`.

/// The custom resource types MmfService and MmfPlugin (the API contract) and their conditions.
pub mod api;

/// Every rule, as plain functions without I/O: policy, signatures, config parsing, resolution,
/// rendering, status and drift; shared by the CLI, the webhook and the controller.
pub mod core;

/// The audit trail's sink (the records are built in [`core::audit`]).
pub mod audit;

/// The signature verdict cache, counted, shared by the controllers and the webhook.
pub mod verdicts;

/// The file-system helpers the shells share: the capped file reader and the directory watcher.
pub mod files;

/// Reading the config directory from disk, and the shared config `mmf run` reloads in place.
pub mod config;

/// What the watch caches know of the cluster, and the environment of a namespace.
pub mod cluster_view;

/// The validating admission webhook served by `mmf run`, deciding from the shared caches.
pub mod webhook;

/// `mmf run`: the reconcilers, their shared watch caches, leader election, metrics, config
/// reload, and the webhook served beside them.
pub mod controller;

/// The `mmf` command line, a thin shell over the core.
pub mod cli;

/// Builders the unit tests share.
#[cfg(test)]
mod test_support;
