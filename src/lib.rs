//! mmf-operator: turns MMF plugin strategy into cluster state.
//!
//! Modules in dependency order, from pure to I/O: each uses only the ones above it. The
//! data path and where each rule lives are in `ARCHITECTURE.md`.

/// The custom resource types MmfService and MmfPlugin (the API contract) and their conditions.
pub mod api;
/// The audit trail's sink (the records are built in [`core::audit`]).
pub mod audit;
/// The `mmf` command line, a thin shell over the core.
pub mod cli;
/// What the watch caches know of the cluster, and the environment of a namespace.
pub mod cluster_view;
/// Reading the config directory from disk, and the shared config `mmf run` reloads in place.
pub mod config;
/// The reconcilers, their shared watch caches, leader election, metrics and config reload.
pub mod controller;
/// Every rule, as plain functions without I/O: policy, signatures, config parsing, resolution,
/// rendering, status and drift; shared by the CLI, the webhook and the controller.
pub mod core;
/// The file-system helpers the shells share: the capped file reader and the directory watcher.
pub mod files;
/// The validating admission webhook served by `mmf run`, deciding from the shared caches.
pub mod webhook;
