"""Plugin integration manager: the service side of RUNTIME.md.

Reads $MMF_CONFIG_DIR/mmf.yaml and one $MMF_CONFIG_DIR/<plugin>.yaml per plugin, loads the
plugins named in $MMF_PLUGINS in that order from $MMF_PLUGIN_DIR/<plugin>/ (the directory an
init container copied the plugin image's /plugin into), initializes each with its merged
configuration and mounts its routes. A plugin that fails to load is recorded with the reason;
the service keeps serving its probes so /health/ready can say what is wrong.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

ENTRY_POINT_GROUP = "mmf.plugins"


@dataclass
class _Context:
    """Used when marty_msf is not importable (the plugin then brings its own API)."""

    config: dict[str, Any]
    environment: str = ""
    service_name: str = ""


@dataclass
class PluginStatus:
    name: str
    state: str = "pending"  # pending | loaded | failed
    version: str = ""
    reason: str = ""
    load_seconds: float = 0.0
    instance: Any = None
    routes: set[str] = field(default_factory=set)
    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "version": self.version, "reason": self.reason}


class PluginManager:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.environment = environ.get("MMF_ENVIRONMENT", "")
        self.config_dir = Path(environ.get("MMF_CONFIG_DIR", "/etc/mmf"))
        self.plugin_dir = Path(environ.get("MMF_PLUGIN_DIR", "/opt/mmf/plugins"))
        names = environ.get("MMF_PLUGINS", "")
        self.plugins = [PluginStatus(n.strip()) for n in names.split(",") if n.strip()]
        self.framework: dict[str, Any] = {}
        self.loading_done = False

    @property
    def metrics_path(self) -> str:
        return ((self.framework.get("service") or {}).get("metrics") or {}).get("path", "/metrics")

    async def load_all(self, app) -> None:
        try:
            self.framework = _read_yaml(self.config_dir / "mmf.yaml") or {}
        except Exception as error:  # noqa: BLE001 - reported on every plugin
            for status in self.plugins:
                status.state, status.reason = "failed", f"mmf.yaml: {error}"
            self.loading_done = True
            return
        for status in self.plugins:
            started = time.monotonic()
            try:
                await self._load(status, app)
                status.state = "loaded"
            except Exception as error:  # noqa: BLE001 - a plugin's failure is reported, not fatal
                status.state, status.reason = "failed", f"{type(error).__name__}: {error}"
            status.load_seconds = time.monotonic() - started
        self.loading_done = True

    async def _load(self, status: PluginStatus, app) -> None:
        directory = self.plugin_dir / status.name
        pyproject = directory / "pyproject.toml"
        if not pyproject.is_file():
            raise FileNotFoundError(f"{pyproject} is missing: the plugin image must carry /plugin/pyproject.toml")
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        entries = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
        if len(entries) != 1:
            raise ValueError(f"{pyproject}: needs exactly one [project.entry-points.\"{ENTRY_POINT_GROUP}\"] entry")
        (target,) = entries.values()
        module_name, _, class_name = target.partition(":")
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
        plugin_class = getattr(importlib.import_module(module_name), class_name)
        config_file = self.config_dir / f"{status.name}.yaml"
        config = _read_yaml(config_file) if config_file.is_file() else {}
        plugin = plugin_class()
        status.instance = plugin
        status.version = getattr(plugin.metadata, "version", "")
        await plugin.initialize(_context(config or {}, self.environment, self._service_name()))
        health = await plugin.health_check() if hasattr(plugin, "health_check") else {"healthy": True}
        if not _healthy(health):
            raise RuntimeError(f"health check failed: {health}")
        if hasattr(plugin, "get_router"):
            router = plugin.get_router()
            status.routes = {route.path for route in router.routes}
            app.include_router(router)

    def _service_name(self) -> str:
        return (self.framework.get("service") or {}).get("name", "")

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready only when every plugin of MMF_PLUGINS is loaded and its health check passes."""
        if self.loading_done:
            for status in self.plugins:
                if status.state == "loaded" and hasattr(status.instance, "health_check"):
                    try:
                        healthy = _healthy(await status.instance.health_check())
                    except Exception as error:  # noqa: BLE001
                        healthy, status.reason = False, f"health check raised {type(error).__name__}: {error}"
                    if not healthy:
                        status.state = "failed"
                        status.reason = status.reason or "health check reports unhealthy"
        ready = self.loading_done and all(s.state == "loaded" for s in self.plugins)
        return ready, {
            "status": "ready" if ready else "not ready",
            "environment": self.environment,
            "plugins": [s.summary() for s in self.plugins],
        }

    def owner_of(self, path: str) -> PluginStatus | None:
        return next((s for s in self.plugins if path in s.routes), None)

    def metrics_text(self) -> str:
        lines = [
            "# HELP mmf_plugin_up 1 when the plugin is loaded and healthy, else 0.",
            "# TYPE mmf_plugin_up gauge",
        ]
        lines += [f'mmf_plugin_up{{plugin="{s.name}",version="{s.version}"}} {int(s.state == "loaded")}' for s in self.plugins]
        lines += ["# HELP mmf_plugin_load_seconds Time the plugin took to load and initialize.", "# TYPE mmf_plugin_load_seconds gauge"]
        lines += [f'mmf_plugin_load_seconds{{plugin="{s.name}"}} {s.load_seconds:.6f}' for s in self.plugins]
        lines += ["# HELP mmf_plugin_requests_total Requests served by the plugin's routes.", "# TYPE mmf_plugin_requests_total counter"]
        for s in self.plugins:
            for (method, route, code), count in sorted(s.requests.items()):
                lines.append(f'mmf_plugin_requests_total{{plugin="{s.name}",method="{method}",route="{route}",code="{code}"}} {count}')
        lines += ["# HELP mmf_plugin_metric Metrics a plugin reports from get_metrics().", "# TYPE mmf_plugin_metric gauge"]
        for s in self.plugins:
            if s.state == "loaded" and hasattr(s.instance, "get_metrics"):
                for metric, value in sorted(s.instance.get_metrics().items()):
                    lines.append(f'mmf_plugin_metric{{plugin="{s.name}",metric="{metric}"}} {float(value)}')
        return "\n".join(lines) + "\n"


def _read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _healthy(health: Any) -> bool:
    if isinstance(health, dict):
        return bool(health.get("healthy", health.get("status") in ("healthy", "ok")))
    return bool(health)


def _context(config: dict[str, Any], environment: str, service_name: str) -> Any:
    try:
        from marty_msf.framework.plugins import PluginContext
    except ImportError:
        return _Context(config=config, environment=environment, service_name=service_name)
    return PluginContext(config=config, environment=environment, service_name=service_name)
