//! The committed CRDs are exactly what the Rust types generate, and they teach the user.
#![allow(clippy::unwrap_used)]

use mmf_operator::cli::crd_documents;
use serde_json::Value;

#[test]
fn committed_crds_match_the_generated_ones() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (file, generated) in crd_documents().unwrap() {
        let path = format!("{root}/crds/{file}");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is stale: regenerate with `cargo run -- crds --out-dir crds` (see README, Development)"
        );
    }
}

fn assert_every_property_described(schema: &Value, path: &str, missing: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let child = format!("{path}.{name}");
            let described = property
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            // apiVersion/kind/metadata are documented by Kubernetes itself.
            if !described && !matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                missing.push(child.clone());
            }
            assert_every_property_described(property, &child, missing);
        }
    }
    if let Some(items) = schema.get("items") {
        assert_every_property_described(items, &format!("{path}[]"), missing);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        assert_every_property_described(additional, &format!("{path}.*"), missing);
    }
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    for (file, yaml) in crd_documents().unwrap() {
        let crd: Value = serde_saphyr::from_str(&yaml).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut missing = Vec::new();
        assert_every_property_described(schema, "", &mut missing);
        assert!(
            missing.is_empty(),
            "{file}: fields without a description: {missing:?}"
        );
    }
}

#[test]
fn every_kind_is_in_the_mmf_category_with_short_names_and_status() {
    let expected = [
        ("mmfplugins.yaml", "mmfp", 4),
        ("mmfservices.yaml", "mmfs", 5),
        ("mmfpluginrevisions.yaml", "mmfpr", 4),
    ];
    for ((file, yaml), (expected_file, short_name, columns)) in
        crd_documents().unwrap().into_iter().zip(expected)
    {
        assert_eq!(file, expected_file);
        let crd: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(
            crd["spec"]["names"]["categories"],
            serde_json::json!(["mmf"])
        );
        assert_eq!(
            crd["spec"]["names"]["shortNames"],
            serde_json::json!([short_name])
        );
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        assert_eq!(
            version["additionalPrinterColumns"]
                .as_array()
                .unwrap()
                .len(),
            columns
        );
    }
}
