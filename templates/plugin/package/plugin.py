"""The {{name}} plugin: an MMFPlugin subclass.

Metadata and service definitions come from plugin.yaml and the configuration schema from
config_schema.json, the same files `mmf plugin manifest` builds the MmfPlugin from, so the
code and the manifest cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from marty_msf.framework.plugins import (
    MMFPlugin,
    PluginMetadata,
    RouteDefinition,
    ServiceDefinition,
)

HERE = Path(__file__).resolve().parent
MANIFEST: dict[str, Any] = yaml.safe_load((HERE / "plugin.yaml").read_text(encoding="utf-8"))
SCHEMA: dict[str, Any] = json.loads((HERE / "config_schema.json").read_text(encoding="utf-8"))


class {{class}}(MMFPlugin):
    """{{title}} plugin."""

    def __init__(self) -> None:
        super().__init__()
        self.settings: dict[str, Any] = {}
        self.greetings = 0

    @property
    def metadata(self) -> PluginMetadata:
        spec = MANIFEST["spec"]
        return PluginMetadata(
            name=MANIFEST["metadata"]["name"],
            version=spec["version"],
            description=spec.get("description", ""),
            author=spec.get("author", ""),
            dependencies=[dep["name"] for dep in spec.get("dependencies", [])],
        )

    async def _initialize_plugin(self) -> None:
        # context.config is the merged configuration the operator wrote to
        # $MMF_CONFIG_DIR/{{name}}.yaml, already validated against config_schema.json.
        self.settings = dict(self.context.config or {})
        if not self.settings.get("greeting"):
            raise ValueError("configuration key 'greeting' is missing or empty")

    def get_service_definitions(self) -> list[ServiceDefinition]:
        return [
            ServiceDefinition(
                name=service["name"],
                routes=[
                    RouteDefinition(
                        path=route["path"],
                        methods=list(route.get("methods", ["GET"])),
                        auth_required=route.get("authRequired", False),
                        description=route.get("description", ""),
                    )
                    for route in service.get("routes", [])
                ],
                health_check_path=service.get("healthCheckPath", "/health"),
                metrics_enabled=service.get("metricsEnabled", True),
            )
            for service in MANIFEST["spec"].get("services", [])
        ]

    def get_configuration_schema(self) -> dict[str, Any]:
        return SCHEMA

    def get_router(self):
        """The FastAPI routes of the service definitions (mounted by the service)."""
        from fastapi import APIRouter

        router = APIRouter()

        @router.get("/{{name}}/hello")
        async def hello() -> dict[str, Any]:
            self.greetings += 1
            return {"plugin": self.metadata.name, "greeting": self.settings["greeting"]}

        return router

    def get_metrics(self) -> dict[str, float]:
        """Plugin metrics the service exports as mmf_plugin_metric{plugin,metric}."""
        return {"greetings_total": float(self.greetings)}
