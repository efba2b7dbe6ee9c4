"""STAND-IN for marty_msf's plugin API (MMFPlugin and the types it returns), shipped with
the plugin scaffold for testing without the framework. Not the framework."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PluginMetadata:
    name: str
    version: str
    description: str = ""
    author: str = ""
    dependencies: list[str] = field(default_factory=list)
    optional_dependencies: list[str] = field(default_factory=list)


@dataclass
class RouteDefinition:
    path: str
    methods: list[str] = field(default_factory=lambda: ["GET"])
    auth_required: bool = False
    rate_limit: int | None = None
    description: str = ""


@dataclass
class ServiceDefinition:
    name: str
    routes: list[RouteDefinition] = field(default_factory=list)
    health_check_path: str = "/health"
    metrics_enabled: bool = True
    database_required: bool = False
    dependencies: list[str] = field(default_factory=list)


@dataclass
class PluginContext:
    config: dict[str, Any]
    environment: str = "development"
    service_name: str = ""


class MMFPlugin(ABC):
    def __init__(self) -> None:
        self.context: PluginContext | None = None
        self.initialized = False

    @property
    @abstractmethod
    def metadata(self) -> PluginMetadata: ...

    async def initialize(self, context: PluginContext) -> None:
        self.context = context
        await self._initialize_plugin()
        self.initialized = True

    @abstractmethod
    async def _initialize_plugin(self) -> None: ...

    def get_service_definitions(self) -> list[ServiceDefinition]:
        return []

    def get_configuration_schema(self) -> dict[str, Any]:
        return {}

    async def health_check(self) -> dict[str, Any]:
        return {"healthy": self.initialized}

    async def shutdown(self) -> None:
        self.initialized = False
