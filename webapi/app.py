"""The webapi application factory: nothing is built at import time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from common.bus.base import EventBus
from common.config import Settings
from common.models import JobCreate, JobUpdate
from common.store.base import JobStore
from webapi.errors import install_error_handlers
from webapi.routes import jobs, meta, schedules, ui

DESCRIPTION = """\
Schedule ephemeral Amazon ECS tasks on a cron-like schedule, or when a condition holds
(an SQS queue has messages). Schedules have 8 space-separated fields,
`second minute hour day_of_week week day month year`, of which the right ones may be omitted;
each field is an APScheduler cron expression, `?` in second/minute/hour picks a stable random
value, and `2nd_fri` / `last_mon` stand for `2nd fri` / `last mon`. Times are UTC unless the
job sets `timezone`.
"""


def create_app(settings: Settings, *, store: JobStore | None = None, bus: EventBus | None = None) -> FastAPI:
    """Build the app; store and bus default to the configured ones, built at startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from common.bus import create_bus
        from common.store import create_store

        owned_store = store is None
        owned_bus = bus is None
        app.state.store = store if store is not None else create_store(settings)
        app.state.bus = bus if bus is not None else create_bus(settings)
        try:
            yield
        finally:
            if owned_bus:
                app.state.bus.close()
            if owned_store:
                app.state.store.close()

    app = FastAPI(
        title="ECS Scheduler",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_url="/spec",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.bus = bus
    install_error_handlers(app)
    for router in (meta.router, jobs.router, schedules.router):
        # The routes themselves, not app.include_router(router): an included router stays a
        # nested router that every request walks through, which costs GET /jobs/{id} about
        # a fifth of its time (bench/README.md). The routes already carry prefix and tags.
        app.router.routes.extend(router.routes)
    app.mount(ui.PATH, ui.console())
    _document_request_bodies(app)
    return app


def _document_request_bodies(app: FastAPI) -> None:
    """Bodies are parsed by hand (for 415/400 control); add their schemas to the document."""
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (JobCreate, JobUpdate):
                model_schema = model.model_json_schema(
                    by_alias=True, ref_template="#/components/schemas/{model}"
                )
                for name, definition in model_schema.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = model_schema
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    # invalid input is 400 here (errors.py), never FastAPI's 422
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
