//! Where each field of a YAML document is: an index from field paths (`spec.plugins[0].name`,
//! the spelling of [`crate::core::violation::Violation::field`]) to line and column, so every
//! finding points at its field, not at the document.
//!
//! Pure: built from text with serde-saphyr's `Spanned` locations.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Field path to `(line, column)`, both 1-based, relative to the text indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPositions {
    positions: BTreeMap<String, (u64, u64)>,
}

impl FieldPositions {
    /// Indexes one YAML document. Text that does not parse (or has non-string keys) gives an
    /// empty index: positions are a help, never a reason to fail.
    pub fn from_yaml(text: &str) -> FieldPositions {
        let mut positions = BTreeMap::new();
        if let Ok(Some(root)) = serde_saphyr::from_str::<Option<Spanned<Node>>>(text) {
            collect(&root.value, "", &mut positions);
        }
        FieldPositions { positions }
    }

    /// The position of `field`, or of its nearest ancestor that is in the file (a defaulted or
    /// missing field is reported where its parent is). Anything after a space in `field` is a
    /// note (`spec.plugins (default_plugins[0] of ...)`) and ignored.
    pub fn find(&self, field: &str) -> Option<(u64, u64)> {
        let mut path = field.split(' ').next().unwrap_or_default();
        loop {
            if let Some(found) = self.positions.get(path) {
                return Some(*found);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// Moves every position down by `lines` (a document that starts further into its file).
    pub fn shifted(mut self, lines: u64) -> FieldPositions {
        for (line, _) in self.positions.values_mut() {
            *line += lines;
        }
        self
    }
}

/// A YAML node with the locations of its keys and items.
enum Node {
    Scalar,
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
}

/// Mapping entries are placed at their key (`replicas:`), list items at the item.
fn collect(node: &Node, path: &str, out: &mut BTreeMap<String, (u64, u64)>) {
    match node {
        Node::Scalar => {}
        Node::Map(entries) => {
            for (key, value) in entries {
                let child = if path.is_empty() {
                    key.value.clone()
                } else {
                    format!("{path}.{}", key.value)
                };
                let at = (key.referenced.line(), key.referenced.column());
                out.entry(child.clone()).or_insert(at);
                collect(&value.value, &child, out);
            }
        }
        Node::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                let child = format!("{path}[{index}]");
                let at = (item.referenced.line(), item.referenced.column());
                out.entry(child.clone()).or_insert(at);
                collect(&item.value, &child, out);
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfService\nmetadata:\n  name: orders\nspec:\n  image: nginx:latest\n  replicas: -1\n  plugins:\n    - name: nothere\n  resources:\n    limits:\n      memory: 2Gi\n";

    #[test]
    fn a_mapping_field_is_at_its_key() {
        let positions = FieldPositions::from_yaml(SERVICE);
        assert_eq!(positions.find("spec.image"), Some((6, 3)));
        assert_eq!(positions.find("spec.replicas"), Some((7, 3)));
        assert_eq!(
            positions.find("spec.resources.limits.memory"),
            Some((12, 7))
        );
    }

    #[test]
    fn a_list_item_field_is_at_its_key_inside_the_item() {
        let positions = FieldPositions::from_yaml(SERVICE);
        assert_eq!(positions.find("spec.plugins[0].name"), Some((9, 7)));
        assert_eq!(positions.find("spec.plugins[0]"), Some((9, 7)));
    }

    #[test]
    fn a_field_not_in_the_file_is_at_its_nearest_ancestor() {
        let positions = FieldPositions::from_yaml(SERVICE);
        assert_eq!(positions.find("spec.port"), Some((5, 1)));
        assert_eq!(
            positions.find("spec.plugins (default_plugins[0] of environment production)"),
            Some((8, 3))
        );
        assert_eq!(positions.find("status"), None);
    }

    #[test]
    fn shifting_moves_lines_not_columns() {
        let positions = FieldPositions::from_yaml(SERVICE).shifted(10);
        assert_eq!(positions.find("spec.image"), Some((16, 3)));
    }

    #[test]
    fn text_that_does_not_parse_has_no_positions() {
        assert_eq!(FieldPositions::from_yaml("a: [").find("a"), None);
    }
}
