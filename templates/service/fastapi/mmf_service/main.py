"""The {{name}} service: a FastAPI app that loads its MMF plugins as RUNTIME.md describes.

Run: python -m uvicorn mmf_service.main:app --host 0.0.0.0 --port {{port}}
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from .plugin_manager import PluginManager


def create_app(environ: Mapping[str, str] = os.environ) -> FastAPI:
    manager = PluginManager(environ)

    async def metrics():
        return PlainTextResponse(manager.metrics_text(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await manager.load_all(app)
        app.add_api_route(manager.metrics_path, metrics, methods=["GET"], include_in_schema=False)
        yield
        for status in manager.plugins:
            if status.state == "loaded" and hasattr(status.instance, "shutdown"):
                await status.instance.shutdown()

    app = FastAPI(title="{{name}}", lifespan=lifespan)
    app.state.plugin_manager = manager

    @app.middleware("http")
    async def count_plugin_requests(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        owner = manager.owner_of(getattr(route, "path", ""))
        if owner is not None:
            key = (request.method, route.path, response.status_code)
            owner.requests[key] = owner.requests.get(key, 0) + 1
        return response

    @app.get("/health/live")
    async def live():
        """Liveness: the process serves requests."""
        return {"status": "alive"}

    @app.get("/health")
    async def startup():
        """Startup: plugin loading has finished, whatever its outcome."""
        if not manager.loading_done:
            return JSONResponse({"status": "starting"}, status_code=503)
        return {"status": "started"}

    @app.get("/health/ready")
    async def ready():
        """Readiness: every plugin of MMF_PLUGINS is loaded and healthy."""
        is_ready, body = await manager.readiness()
        return JSONResponse(body, status_code=200 if is_ready else 503)

    return app


app = create_app()
