"""The four checks of the MMF developer workflow: import, metadata, service definitions,
configuration."""

import asyncio
import json
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MANIFEST = yaml.safe_load((ROOT / "{{entry}}" / "plugin.yaml").read_text(encoding="utf-8"))


def test_import_the_entry_point_gives_an_mmf_plugin():
    import importlib

    from marty_msf.framework.plugins import MMFPlugin

    target = PYPROJECT["project"]["entry-points"]["mmf.plugins"]["{{entry}}"]
    module_name, class_name = target.split(":")
    plugin_class = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(plugin_class, MMFPlugin)


def test_metadata_matches_the_manifest_and_pyproject():
    from {{entry}} import {{class}}

    metadata = {{class}}().metadata
    assert metadata.name == "{{name}}"
    assert metadata.version == PYPROJECT["project"]["version"]
    assert metadata.version == MANIFEST["spec"]["version"]
    assert metadata.description == MANIFEST["spec"]["description"]


def test_service_definitions_declare_the_routes_the_router_serves():
    from {{entry}} import {{class}}

    plugin = {{class}}()
    definitions = plugin.get_service_definitions()
    assert [d.name for d in definitions] == ["{{name}}-api"]
    declared = {(m, r.path) for d in definitions for r in d.routes for m in r.methods}
    served = {(m, r.path) for r in plugin.get_router().routes for m in r.methods}
    assert declared == {("GET", "/{{name}}/hello")}
    assert declared <= served


def test_configuration_schema_defaults_initialize_the_plugin():
    from marty_msf.framework.plugins import PluginContext

    from {{entry}} import {{class}}

    plugin = {{class}}()
    schema = plugin.get_configuration_schema()
    assert schema == json.loads((ROOT / "{{entry}}" / "config_schema.json").read_text())
    defaults = {key: prop["default"] for key, prop in schema["properties"].items() if "default" in prop}
    assert set(schema["required"]) <= set(defaults)
    asyncio.run(plugin.initialize(PluginContext(config=defaults, environment="development", service_name="test")))
    assert plugin.settings == defaults
