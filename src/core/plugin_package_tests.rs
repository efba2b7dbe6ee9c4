#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

const PYPROJECT: &str = "[project]\nname = \"loyalty-points\"\nversion = \"0.2.0\"\n\n[project.entry-points.\"mmf.plugins\"]\nloyalty_points = \"loyalty_points.plugin:LoyaltyPointsPlugin\"\n";
const PLUGIN_YAML: &str = "apiVersion: mmf.marty.dev/v1alpha1\nkind: MmfPlugin\nmetadata:\n  name: loyalty-points\nspec:\n  version: 0.2.0\n  image: placeholder@sha256:0000000000000000000000000000000000000000000000000000000000000000\n  dependencies:\n    - {name: customers, version: \"^1\"}\n  services:\n    - name: points\n      routes:\n        - {path: /points, methods: [GET]}\n";
const SCHEMA: &str = r#"{"type": "object", "properties": {"rate": {"type": "integer", "default": 3}, "tiers": {"type": "object", "properties": {"gold": {"type": "number", "default": 1.5}, "name": {"type": "string"}}}, "note": {"type": "string"}}}"#;
const IMAGE: &str =
    "registry.example/p@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn files<'a>(pyproject: &'a str, plugin_yaml: &'a str, schema: &'a str) -> PackageFiles<'a> {
    PackageFiles {
        pyproject: ("pyproject.toml", pyproject),
        plugin_yaml: ("pkg/plugin.yaml", plugin_yaml),
        config_schema: ("pkg/config_schema.json", schema),
    }
}

#[test]
fn the_entry_point_names_module_class_and_version() {
    let entry = entry_point("pyproject.toml", PYPROJECT).unwrap();
    assert_eq!(
        entry,
        EntryPoint {
            name: "loyalty_points".into(),
            module: "loyalty_points.plugin".into(),
            class: "LoyaltyPointsPlugin".into(),
            version: "0.2.0".into(),
        }
    );
    assert_eq!(entry.package(), "loyalty_points");
}

#[test]
fn a_manifest_takes_schema_defaults_image_and_keeps_routes_and_dependencies() {
    let plugin = build_manifest(files(PYPROJECT, PLUGIN_YAML, SCHEMA), IMAGE).unwrap();
    assert_eq!(plugin.metadata.name.as_deref(), Some("loyalty-points"));
    assert_eq!(plugin.spec.image, IMAGE);
    assert_eq!(plugin.spec.version, "0.2.0");
    assert_eq!(
        plugin.spec.config,
        Some(json!({"rate": 3, "tiers": {"gold": 1.5}}))
    );
    assert_eq!(
        plugin.spec.config_schema.as_ref().unwrap()["properties"]["rate"]["default"],
        json!(3)
    );
    assert_eq!(plugin.spec.dependencies[0].name, "customers");
    assert_eq!(plugin.spec.services[0].routes[0].path, "/points");
    assert_eq!(plugin.spec.signature, None);
}

#[test]
fn an_image_without_a_digest_is_refused_naming_the_flag() {
    let error = build_manifest(
        files(PYPROJECT, PLUGIN_YAML, SCHEMA),
        "registry.example/p:1.0",
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--image \"registry.example/p:1.0\" is not pinned by digest: pass a reference of the form name@sha256:<64 hex digits> (the digest `docker push` or `podman push --digestfile` reports)"
    );
}

#[test]
fn a_version_that_drifted_from_pyproject_is_refused() {
    let error = build_manifest(
        files(&PYPROJECT.replace("0.2.0", "0.3.0"), PLUGIN_YAML, SCHEMA),
        IMAGE,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "pkg/plugin.yaml: spec.version: \"0.2.0\" differs from pyproject.toml project.version \"0.3.0\": bump both together"
    );
}

#[test]
fn a_name_that_differs_from_the_entry_point_is_refused() {
    let error = build_manifest(
        files(
            PYPROJECT,
            &PLUGIN_YAML.replace("name: loyalty-points", "name: points"),
            SCHEMA,
        ),
        IMAGE,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "pkg/plugin.yaml: metadata.name: \"points\" differs from the entry point \"loyalty_points\" (MmfPlugin \"loyalty-points\"): rename one of them"
    );
}

#[test]
fn a_package_needs_exactly_one_mmf_entry_point() {
    let two = format!("{PYPROJECT}other = \"x:Y\"\n");
    assert_eq!(
        entry_point("pyproject.toml", &two).unwrap_err().to_string(),
        "pyproject.toml: project.entry-points.\"mmf.plugins\": must hold exactly one entry point, found 2: one package is one plugin"
    );
    assert_eq!(
        entry_point("pyproject.toml", "[project]\nversion = \"1.0.0\"\n")
            .unwrap_err()
            .to_string(),
        "pyproject.toml: project.entry-points.\"mmf.plugins\": missing: register the plugin as `<name> = \"<module>:<Class>\"`"
    );
    assert_eq!(
        entry_point(
            "pyproject.toml",
            "[project]\nversion = \"1.0.0\"\n[project.entry-points.\"mmf.plugins\"]\na = \"nocolon\"\n"
        )
        .unwrap_err()
        .to_string(),
        "pyproject.toml: project.entry-points.\"mmf.plugins\".a: \"nocolon\" is not of the form \"<module>:<Class>\""
    );
}

#[test]
fn broken_toml_and_json_name_their_file() {
    assert!(
        entry_point("pyproject.toml", "[project")
            .unwrap_err()
            .to_string()
            .starts_with("pyproject.toml: not valid TOML: ")
    );
    assert!(
        build_manifest(files(PYPROJECT, PLUGIN_YAML, "{"), IMAGE)
            .unwrap_err()
            .to_string()
            .starts_with("pkg/config_schema.json: not valid JSON: ")
    );
}

#[test]
fn digests_must_be_sha256_with_64_lowercase_hex_digits() {
    assert!(pinned_by_digest(IMAGE));
    assert!(!pinned_by_digest("p@sha256:abc"));
    assert!(!pinned_by_digest(&IMAGE.replace('a', "A")));
    assert!(!pinned_by_digest(&IMAGE.replace("registry.example/p", "")));
}
