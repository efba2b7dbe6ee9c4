//! The pure core: policy, signatures, configuration merging, dependency resolution and
//! rendering. Nothing here touches the network, the clock, the environment or the filesystem;
//! the CLI, the webhook and the controller gather inputs, call these functions and write the
//! results, so all three apply the same rules.
//!
//! Modules in dependency order: each uses only the ones above it (a blank line between them
//! keeps rustfmt from sorting them).

/// Policy violations: object, field and reason, in words a person can act on.
pub mod violation;

/// Every size and depth cap on input, in one place.
pub mod limits;

/// The one spelling of a sha256 (hex, short hex, `sha256:` digest).
pub mod hash;

/// Kubernetes resource quantities compared exactly.
pub mod quantity;

/// The one deep-merge rule for policy layers and plugin configuration.
pub mod merge;

/// Which environment applies to a namespace.
pub mod environment;

/// Which plugins a service loads, and in what order.
pub mod resolve;

/// Version solving: one revision of every plugin a service loads (pubgrub).
pub mod solve;

/// Where each field of a YAML document is (line and column), for findings.
pub mod position;

/// What the API server refuses before any webhook runs (CRD schema and CEL rules).
pub mod schema_check;

/// Reading manifests (multi-document YAML) into typed objects, with locations.
pub mod manifest;

/// In-place edits of manifest text that keep everything else byte for byte (`mmf sign`).
pub mod manifest_edit;

/// Plugin signatures: the payload, its digest, signing, verification and trusted keys.
pub mod signature;

/// Remembered signature verdicts, keyed by payload, signature and trusted key.
pub mod verdict_cache;

/// The environment policy types and their parsing and layering.
pub mod config;

/// A plugin's effective configuration: the layers merged, validated against its schema.
pub mod plugin_config;

/// Building the MmfPlugin manifest from a plugin package's files.
pub mod plugin_package;

/// The environment policy engine: one implementation for every caller.
pub mod policy;

/// MmfPluginRevisions: the revision of a version, its verdict, changed content, trimming.
pub mod revisions;

/// `kubectl mmf history` and `rollback`: the revisions table and the pinning patch.
pub mod history;

/// The next status of an MmfPlugin or MmfService, and the events that announce it.
pub mod status;

/// Audit records: one JSON object per plugin operation.
pub mod audit;

/// Rendering an MmfService into the objects the operator applies.
pub mod render;

/// Whether a live object still holds everything the operator would apply.
pub mod drift;
