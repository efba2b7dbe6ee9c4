//! Reading MmfPlugin and MmfService manifests from multi-document YAML, with every problem
//! reported as `file:line:column: message`.
//!
//! Pure: the CLI reads the files, this module only parses text.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::position::FieldPositions;
use crate::api::{API_VERSION, MmfPlugin, MmfPluginRevision, MmfService};
use crate::core::schema_check::schema_violations;
use crate::core::violation::Violation;

pub use crate::core::limits::MAX_MANIFEST_BYTES;
use crate::core::limits::{MAX_DEPTH, MAX_DOCUMENTS, MAX_YAML_ALIAS_EVENTS};

/// Where something is in an input file. `line`/`column` are 1-based; 0 means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceLocation {
    /// File path as given by the user.
    pub path: String,
    /// Line, 1-based, or 0 when unknown.
    pub line: u64,
    /// Column, 1-based, or 0 when unknown.
    pub column: u64,
}

impl SourceLocation {
    /// A whole file.
    pub fn file(path: &str) -> SourceLocation {
        SourceLocation {
            path: path.to_owned(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.path),
            (line, 0) => write!(f, "{}:{line}", self.path),
            (line, column) => write!(f, "{}:{line}:{column}", self.path),
        }
    }
}

/// A manifest problem with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ManifestError {
    /// Where.
    pub location: SourceLocation,
    /// What, in one sentence.
    pub message: String,
}

/// An MMF object read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// An `MmfPlugin`.
    Plugin(Box<MmfPlugin>),
    /// An `MmfService`.
    Service(Box<MmfService>),
    /// An `MmfPluginRevision` (one recorded version of a plugin).
    Revision(Box<MmfPluginRevision>),
}

/// A manifest and where its document starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedManifest {
    /// First line of the document.
    pub location: SourceLocation,
    /// The object.
    pub manifest: Manifest,
}

/// One MmfPlugin or MmfService document, with what the API server would refuse in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// First line of the document.
    pub location: SourceLocation,
    /// Where each field is, in file lines.
    pub positions: FieldPositions,
    /// What the CRD's schema and CEL rules refuse, in kube-apiserver's words.
    pub refused: Vec<Violation>,
    /// The typed object; `None` only when `refused` explains why it does not fit the types.
    pub manifest: Option<Manifest>,
}

impl Document {
    /// Where `field` is in the file: its own line and column, else the document's start.
    pub fn locate(&self, field: &str) -> SourceLocation {
        match self.positions.find(field) {
            Some((line, column)) => SourceLocation {
                path: self.location.path.clone(),
                line,
                column,
            },
            None => self.location.clone(),
        }
    }
}

/// Turns a serde-saphyr error into a location (shifted by `line_offset`) and a plain message.
pub fn yaml_error(
    path: &str,
    line_offset: u64,
    error: &serde_saphyr::Error,
) -> (SourceLocation, String) {
    let (line, column) = error
        .location()
        .map(|l| (l.line() + line_offset, l.column()))
        .unwrap_or((0, 0));
    let inner = error.without_snippet();
    let too_deep = matches!(
        inner,
        serde_saphyr::Error::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
            ..
        }
    );
    let rendered = inner.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    });
    // The caps in the words of the other limits; the parser's own say `recursion limit
    // exceeded` (flow collections past 255) or print counters and positions.
    let plain = strip_location_suffix(&rendered);
    let message = if too_deep || plain == "recursion limit exceeded" {
        format!("YAML nested deeper than the {MAX_DEPTH} levels allowed")
    } else if plain.starts_with("alias replay limit exceeded") {
        format!("YAML aliases expand to more than the {MAX_YAML_ALIAS_EVENTS} events allowed")
    } else {
        // Advice meant for the programmer, not the user.
        plain.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
    };
    (
        SourceLocation {
            path: path.to_owned(),
            line,
            column,
        },
        message,
    )
}

/// serde-saphyr appends " at line L, column C"; we print the location in front instead.
fn strip_location_suffix(message: &str) -> String {
    let trimmed = message.trim();
    match trimmed.rfind(" at line ") {
        Some(at) => trimmed[..at].to_owned(),
        None => trimmed.to_owned(),
    }
}

/// Parses one YAML document into JSON, with located syntax errors. This is the first pass over
/// any document, so it alone applies the alias cap: the later typed passes read a document
/// that has passed it.
pub fn parse_yaml_value(path: &str, text: &str) -> Result<Value, (SourceLocation, String)> {
    let mut options = serde_saphyr::Options::default();
    options.alias_limits.max_total_replayed_events = MAX_YAML_ALIAS_EVENTS;
    serde_saphyr::from_str_with_options::<Option<Value>>(text, options)
        .map(Option::unwrap_or_default)
        .map_err(|e| yaml_error(path, 0, &e))
}

/// Splits a multi-document stream at `---` markers. Each document keeps the file's line
/// numbering: its text starts at the marker's line (blanked), so a line `L` in the document is
/// line `offset + L` of the file.
fn split_documents(text: &str) -> Vec<(u64, String)> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut offset = 0_u64;
    for (index, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line == "...";
        if is_marker {
            documents.push((offset, std::mem::take(&mut current)));
            offset = index as u64;
            current.push('\n');
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    documents.push((offset, current));
    documents
}

/// Parses every MmfPlugin and MmfService in a (multi-document) YAML file, refusing any that
/// the API server would refuse (the first reason, at its field). Documents of other kinds are
/// skipped, so a folder may also hold Namespaces or other manifests; an `mmf.marty.dev`
/// document of an unknown kind or version is an error.
pub fn parse_manifests(path: &str, text: &str) -> Result<Vec<LocatedManifest>, ManifestError> {
    let mut manifests = Vec::new();
    for document in parse_documents(path, text)? {
        if let Some(first) = document.refused.first() {
            return Err(ManifestError {
                location: document.locate(&first.field),
                message: refusal_message(first),
            });
        }
        if let Some(manifest) = document.manifest {
            manifests.push(LocatedManifest {
                location: document.location,
                manifest,
            });
        }
    }
    Ok(manifests)
}

/// A schema refusal as one line: `spec.replicas: Invalid value: ...`, or the strict-decoding
/// message alone when it already names the field.
pub fn refusal_message(violation: &Violation) -> String {
    if violation.message.contains(&violation.field) {
        violation.message.clone()
    } else {
        format!("{}: {}", violation.field, violation.message)
    }
}

/// Parses every MmfPlugin and MmfService document of a (multi-document) YAML file and judges
/// each against its CRD, as the API server would. Syntax errors, unknown kinds and type
/// errors the schema does not explain are errors.
pub fn parse_documents(path: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError {
            location: SourceLocation::file(path),
            message: format!(
                "file is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
                text.len()
            ),
        });
    }
    let mut documents = split_documents(text);
    documents.retain(|(_, document)| !document.trim().is_empty());
    if let Some((offset, _)) = documents.get(MAX_DOCUMENTS) {
        return Err(ManifestError {
            location: SourceLocation {
                path: path.to_owned(),
                line: offset + 1,
                column: 1,
            },
            message: format!("more than the {MAX_DOCUMENTS} documents allowed in one file"),
        });
    }
    let mut manifests = Vec::new();
    for (offset, document) in documents {
        let located = |(location, message): (SourceLocation, String)| ManifestError {
            location: SourceLocation {
                line: if location.line == 0 {
                    0
                } else {
                    location.line + offset
                },
                ..location
            },
            message,
        };
        let value = parse_yaml_value(path, &document).map_err(located)?;
        let Value::Object(object) = &value else {
            if value.is_null() {
                continue;
            }
            return Err(ManifestError {
                location: SourceLocation {
                    path: path.to_owned(),
                    line: offset + 1,
                    column: 1,
                },
                message: "a manifest must be a mapping with apiVersion and kind".to_owned(),
            });
        };
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let first_content_line = document
            .lines()
            .position(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map_or(1, |index| index as u64 + 1);
        let document_location = SourceLocation {
            path: path.to_owned(),
            line: offset + first_content_line,
            column: 1,
        };
        if api_version.split('/').next() != Some(crate::api::GROUP) {
            continue;
        }
        let kind: &'static str = match (api_version, kind) {
            (API_VERSION, "MmfPlugin") => "MmfPlugin",
            (API_VERSION, "MmfService") => "MmfService",
            (API_VERSION, "MmfPluginRevision") => "MmfPluginRevision",
            _ => {
                return Err(ManifestError {
                    location: document_location,
                    message: format!(
                        "unknown kind {kind:?} in {api_version:?}: expected MmfPlugin, MmfService or MmfPluginRevision in {API_VERSION}"
                    ),
                });
            }
        };
        let refused = schema_violations(kind, &value);
        let manifest =
            match kind {
                "MmfPlugin" => typed(&document_location, offset, &document)
                    .map(|p| Manifest::Plugin(Box::new(p))),
                "MmfPluginRevision" => typed(&document_location, offset, &document)
                    .map(|r| Manifest::Revision(Box::new(r))),
                _ => typed(&document_location, offset, &document)
                    .map(|s| Manifest::Service(Box::new(s))),
            };
        let manifest = match manifest {
            Ok(manifest) => Some(manifest),
            Err(_) if !refused.is_empty() => None,
            Err(error) => return Err(error),
        };
        manifests.push(Document {
            positions: FieldPositions::from_yaml(&document).shifted(offset),
            location: document_location,
            refused,
            manifest,
        });
    }
    Ok(manifests)
}

/// Deserializes a document into its type, with type errors at their line and column. Unknown
/// fields are not this function's business: the schema check refuses them by path, as
/// `kubectl apply` (strict field validation) does.
fn typed<T: DeserializeOwned>(
    document_location: &SourceLocation,
    offset: u64,
    document: &str,
) -> Result<T, ManifestError> {
    serde_saphyr::from_str(document).map_err(|e| {
        let (location, message) = yaml_error(&document_location.path, offset, &e);
        ManifestError { location, message }
    })
}

/// Serializes to YAML the way every output of the project is written: block style, multi-line
/// strings as `|` blocks, long single-line strings (image references) left on one line.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    let options = serde_saphyr::ser_options! {
        folded_wrap_chars: 100_000,
    };
    serde_saphyr::to_string_with_options(value, options)
}
