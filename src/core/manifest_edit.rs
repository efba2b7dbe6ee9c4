//! In-place edits of manifest text that keep everything else byte for byte: comments, key
//! order, quoting, line endings and the other documents of the stream. `mmf sign` rewrites files
//! people keep in Git, so a re-serialized file (with its diff noise and lost comments) is not
//! acceptable.
//!
//! A real YAML parser (granit-parser, through serde-saphyr) finds the positions; only the splice
//! is text. The result is parsed again and compared with the intended objects before it is
//! returned, so an edit can never silently change anything but the signature.
//!
//! Pure: text in, text out.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use serde_json::Value;

use crate::api::{API_VERSION, PluginSignature};

/// Why a manifest could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The YAML does not parse (or does not hold valid manifests).
    #[error("{0}")]
    Yaml(String),
    /// No MmfPlugin with that name in the file.
    #[error("the file has no MmfPlugin named {0:?}")]
    NotFound(String),
    /// More than one MmfPlugin with that name.
    #[error("the file has more than one MmfPlugin named {0:?}")]
    Ambiguous(String),
    /// The layout cannot be edited safely.
    #[error("MmfPlugin {name:?}: {reason}")]
    Unsupported {
        /// Plugin name.
        name: String,
        /// What to change so the file can be edited.
        reason: String,
    },
    /// The edited text did not read back as intended (a bug; the file is left untouched).
    #[error(
        "MmfPlugin {name:?}: the edited file did not read back as intended ({reason}); the file was not changed"
    )]
    Verification {
        /// Plugin name.
        name: String,
        /// What differed.
        reason: String,
    },
}

/// Sets `spec.signature` of the MmfPlugin named `plugin_name`, replacing an existing signature
/// or adding one at the end of `spec`, and leaves every other byte as it was.
pub fn set_plugin_signature(
    text: &str,
    plugin_name: &str,
    signature: &PluginSignature,
) -> Result<String, EditError> {
    let before =
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| EditError::Yaml(e.to_string()))?;
    let documents = parse_tree(text)?;
    let mut found = None;
    for document in &documents {
        if is_plugin_named(document, plugin_name) {
            if found.is_some() {
                return Err(EditError::Ambiguous(plugin_name.to_owned()));
            }
            found = Some(document);
        }
    }
    let document = found.ok_or_else(|| EditError::NotFound(plugin_name.to_owned()))?;
    let unsupported = |reason: &str| EditError::Unsupported {
        name: plugin_name.to_owned(),
        reason: reason.to_owned(),
    };
    let (spec_key, spec) = get_entry(document, "spec")
        .ok_or_else(|| unsupported("the document has no spec mapping"))?;
    let NodeKind::Map(entries) = &spec.kind else {
        return Err(unsupported("spec is not a mapping"));
    };
    if spec.flow {
        return Err(unsupported(
            "spec is written in flow style ({...}); write spec in block style (one key per line) to sign in place",
        ));
    }
    let first_key = entries
        .first()
        .map(|(key, _)| key)
        .ok_or_else(|| unsupported("spec is empty"))?;
    let indent = first_key.col;
    let step = indent.saturating_sub(spec_key.col).max(1);
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let block = render(signature, indent, step, newline);

    let existing = entries
        .iter()
        .find(|(key, _)| key.scalar() == Some("signature"));
    let edited = match existing {
        Some((key, value)) => {
            // `block` starts with the indentation; the key already sits after it.
            let replacement = &block[indent..block.len() - newline.len()];
            let end = value.end.max(key.end);
            format!("{}{replacement}{}", &text[..key.start], &text[end..])
        }
        None => {
            let (_, last_value) = entries.last().ok_or_else(|| unsupported("spec is empty"))?;
            let at = last_value.insert_at;
            let separator = if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
                newline
            } else {
                ""
            };
            format!("{}{separator}{block}{}", &text[..at], &text[at..])
        }
    };

    check(before, &edited, plugin_name, signature)?;
    Ok(edited)
}

/// Parses the edited text and compares it, document by document, with the original plus the
/// new signature: anything else that changed means the splice went wrong.
fn check(
    before: Vec<Value>,
    edited: &str,
    plugin_name: &str,
    signature: &PluginSignature,
) -> Result<(), EditError> {
    let failed = |reason: String| EditError::Verification {
        name: plugin_name.to_owned(),
        reason,
    };
    let after = serde_saphyr::from_multiple::<Value>(edited).map_err(|e| failed(e.to_string()))?;
    let signature = serde_json::to_value(signature).map_err(|e| failed(e.to_string()))?;
    let mut expected = before;
    for document in &mut expected {
        let is_target = document.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
            && document.get("kind").and_then(Value::as_str) == Some("MmfPlugin")
            && document.pointer("/metadata/name").and_then(Value::as_str) == Some(plugin_name);
        if is_target && let Some(spec) = document.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("signature".to_owned(), signature.clone());
        }
    }
    if expected.len() != after.len() {
        return Err(failed(format!(
            "{} documents before, {} after",
            expected.len(),
            after.len()
        )));
    }
    for (index, (old, new)) in expected.iter().zip(&after).enumerate() {
        if old != new {
            return Err(failed(format!(
                "document {} changed beyond spec.signature",
                index + 1
            )));
        }
    }
    Ok(())
}

/// `signature:` and its three fields as block YAML, each line ending in `newline`.
fn render(signature: &PluginSignature, indent: usize, step: usize, newline: &str) -> String {
    let outer = " ".repeat(indent);
    let inner = " ".repeat(indent + step);
    format!(
        "{outer}signature:{newline}{inner}keyId: {}{newline}{inner}algorithm: {}{newline}{inner}value: {}{newline}",
        yaml_string(&signature.key_id),
        yaml_string(signature.algorithm.as_str()),
        // Always quoted: base64 only sometimes holds `+`, `/` or `=`, and a signed file's shape
        // should not depend on the signature's bytes.
        serde_json::Value::String(signature.value.clone()),
    )
}

/// A YAML scalar that reads back as exactly `value`: plain when that is unambiguous, else a
/// double-quoted (JSON) string.
fn yaml_string(value: &str) -> String {
    let plain = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
        );
    if plain {
        value.to_owned()
    } else {
        serde_json::Value::String(value.to_owned()).to_string()
    }
}

/// A YAML node with the byte positions an edit needs.
#[derive(Debug)]
struct Node {
    kind: NodeKind,
    /// Byte offset where the node starts.
    start: usize,
    /// Byte offset just after the node's last content character (no trailing blank lines).
    end: usize,
    /// Byte offset of the start of the line after the node: where a sibling may be inserted.
    insert_at: usize,
    /// Column of the node's first character.
    col: usize,
    /// Written in flow style (`{}`/`[]`).
    flow: bool,
}

#[derive(Debug)]
enum NodeKind {
    Scalar(String),
    Map(Vec<(Node, Node)>),
    Seq,
    Alias,
}

impl Node {
    fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(value) => Some(value),
            _ => None,
        }
    }
}

fn get_entry<'a>(map: &'a Node, key: &str) -> Option<(&'a Node, &'a Node)> {
    match &map.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(k, v)| (k, v)),
        _ => None,
    }
}

fn is_plugin_named(document: &Node, name: &str) -> bool {
    let scalar = |key: &str| get_entry(document, key).and_then(|(_, v)| v.scalar());
    let metadata_name = get_entry(document, "metadata")
        .and_then(|(_, metadata)| get_entry(metadata, "name"))
        .and_then(|(_, v)| v.scalar());
    scalar("apiVersion") == Some(API_VERSION)
        && scalar("kind") == Some("MmfPlugin")
        && metadata_name == Some(name)
}

/// The root node of every document in the stream.
fn parse_tree(text: &str) -> Result<Vec<Node>, EditError> {
    let mut events = Vec::new();
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| EditError::Yaml(e.to_string()))?;
        match event {
            Event::Scalar(..)
            | Event::SequenceStart(..)
            | Event::SequenceEnd
            | Event::MappingStart(..)
            | Event::MappingEnd
            | Event::Alias(_)
            | Event::DocumentStart(..)
            | Event::DocumentEnd => events.push((event, span)),
            _ => {}
        }
    }
    let mut builder = Builder {
        text,
        events: events.into_iter().peekable(),
    };
    let mut documents = Vec::new();
    while let Some((event, _)) = builder.events.next() {
        if let Event::DocumentStart(..) = event {
            documents.push(builder.node()?);
            // DocumentEnd
            builder.events.next();
        }
    }
    Ok(documents)
}

struct Builder<'a> {
    text: &'a str,
    events: std::iter::Peekable<std::vec::IntoIter<(Event<'a>, Span)>>,
}

impl Builder<'_> {
    fn node(&mut self) -> Result<Node, EditError> {
        let truncated = || EditError::Yaml("unexpected end of the YAML stream".to_owned());
        let (event, span) = self.events.next().ok_or_else(truncated)?;
        let start = self.offset(&span.start)?;
        let raw_end = self.offset(&span.end)?;
        let leaf = |kind, block_scalar: bool| {
            let end = self.trim_end(start, raw_end);
            let insert_at = if block_scalar {
                self.line_start(raw_end)
            } else {
                self.after_line(end)
            };
            Node {
                kind,
                start,
                end,
                insert_at,
                col: span.start.col(),
                flow: false,
            }
        };
        match event {
            Event::Scalar(value, style, ..) => {
                let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
                Ok(leaf(NodeKind::Scalar(value.into_owned()), block))
            }
            Event::Alias(_) => Ok(leaf(NodeKind::Alias, false)),
            Event::MappingStart(style, ..) | Event::SequenceStart(style, ..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let flow = style == StructureStyle::Flow;
                let mut entries = Vec::new();
                let mut items = Vec::new();
                let close = loop {
                    let peek_end = match self.peek_end()? {
                        Some(span) => span,
                        None if is_map => {
                            let key = self.node()?;
                            let value = self.node()?;
                            entries.push((key, value));
                            continue;
                        }
                        None => {
                            items.push(self.node()?);
                            continue;
                        }
                    };
                    break peek_end;
                };
                let last = if is_map {
                    entries.last().map(|(_, v)| v)
                } else {
                    items.last()
                };
                let (end, insert_at) = match (flow, last) {
                    (false, Some(last)) => (last.end, last.insert_at),
                    _ => {
                        let end = self.offset(&close.end)?;
                        (end, self.after_line(end))
                    }
                };
                Ok(Node {
                    kind: if is_map {
                        NodeKind::Map(entries)
                    } else {
                        NodeKind::Seq
                    },
                    start,
                    end,
                    insert_at,
                    col: span.start.col(),
                    flow,
                })
            }
            _ => Err(EditError::Yaml(
                "unexpected YAML event while reading a node".to_owned(),
            )),
        }
    }

    /// Consumes and returns the span of a closing event, or returns `None` without consuming
    /// anything when the next event starts a node.
    fn peek_end(&mut self) -> Result<Option<Span>, EditError> {
        match self.events.peek() {
            Some((Event::MappingEnd | Event::SequenceEnd, _)) => {
                Ok(self.events.next().map(|(_, span)| span))
            }
            Some(_) => Ok(None),
            None => Err(EditError::Yaml(
                "unexpected end of the YAML stream".to_owned(),
            )),
        }
    }

    fn offset(&self, marker: &serde_saphyr::granit_parser::Marker) -> Result<usize, EditError> {
        marker
            .byte_offset()
            .filter(|&offset| offset <= self.text.len())
            .ok_or_else(|| EditError::Yaml("the YAML parser gave no byte position".to_owned()))
    }

    fn trim_end(&self, start: usize, end: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut end = end;
        while end > start && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        end
    }

    fn line_start(&self, offset: usize) -> usize {
        self.text[..offset].rfind('\n').map_or(0, |at| at + 1)
    }

    fn after_line(&self, offset: usize) -> usize {
        self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |at| offset + at + 1)
    }
}

#[cfg(test)]
#[path = "manifest_edit_tests.rs"]
mod tests;
