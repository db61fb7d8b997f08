"""The webapi application factory: nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute

from common.bus.base import EventBus
from common.config import Settings
from webapi.auth import Authenticator, check_protected
from webapi.deps import ApiStore, Services
from webapi.errors import install_error_handlers
from webapi.limits import WriteLimiter
from webapi.middleware import install_middleware
from webapi.observability import install_observability
from webapi.relay import OutboxRelay
from webapi.routes import health, jobs, me, meta, runs, schedules, ui

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Schedule ephemeral Amazon ECS tasks on a cron-like schedule, or when a condition holds
(an SQS queue has messages). Schedules have 8 space-separated fields,
`second minute hour day_of_week week day month year`, of which the right ones may be omitted;
each field is an APScheduler cron expression, `?` in second/minute/hour picks a stable random
value, and `2nd_fri` / `last_mon` stand for `2nd fri` / `last mon`. EventBridge Scheduler's
`cron(minutes hours day-of-month month day-of-week year)`, `rate(value unit)` and
`at(yyyy-mm-ddThh:mm:ss)` are accepted too and stored as given. Times are UTC unless the job
sets `timezone`. Jobs can also be run now (`POST /jobs/{id}/runs`) and backfilled
(`POST /jobs/{id}/backfill`), with the `run` role.

Every route but `/`, `/spec`, `/docs`, `/redoc` and the probes (`/healthz`, `/readyz`,
`/metrics`) needs `Authorization: Bearer <token>` when the server runs with
`auth.mode: tokens` (use *Authorize*).
"""

DOCS_ASSETS = "/static-offline-docs"

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry off: nothing here configures an OpenTelemetry provider, and
with it on FastAPI looks for one on every request (measured: bench/README.md)."""

PUBLIC_ROUTERS: tuple[APIRouter, ...] = (meta.router, health.router)
"""Routers served without credentials; their paths must be in webapi.auth.ANONYMOUS_PATHS."""

API_ROUTERS: tuple[APIRouter, ...] = (jobs.router, runs.router, me.router, schedules.router)
"""Everything else: each is declared with ``dependencies=webapi.auth.AUTHORIZED``, so its routes
run ``authorize`` (which also applies the write rate); ``check_protected`` refuses the app if
one does not."""


def create_app(settings: Settings, *, store: ApiStore | None = None, bus: EventBus | None = None) -> FastAPI:
    """Build the app; store and bus default to the configured ones, built at startup.

    Raises ConfigError when ``auth`` cannot work (tokens mode without credentials, an
    unreadable tokens file): webapi must not start open by mistake.
    """
    authenticator = Authenticator(settings.auth)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from common.bus import create_bus
        from common.store import create_store

        owned_store = store is None
        owned_bus = bus is None
        app.state.store = store if store is not None else create_store(settings)
        app.state.bus = bus if bus is not None else create_bus(settings)
        relay = OutboxRelay(app.state.store, app.state.bus, settings.webapi.relay)
        app.state.services = Services(settings, app.state.store, app.state.bus, relay)
        relaying = asyncio.create_task(relay.run(), name="outbox-relay")
        reloads_on_hup = _reload_on_sighup(authenticator)
        try:
            yield
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
            await relay.drain()
            if getattr(app.state, "health_checker", None) is not None:
                app.state.health_checker.close()
            if reloads_on_hup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            if owned_bus:
                app.state.bus.close()
            if owned_store:
                app.state.store.close()

    app = FastAPIOffline(
        title="ECS Scheduler",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_url="/spec",
        docs_url="/docs",
        redoc_url="/redoc",
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.bus = bus
    if store is not None and bus is not None:  # served before startup (tests): no relay runs yet
        app.state.services = Services(settings, store, bus, OutboxRelay(store, bus, settings.webapi.relay))
    app.state.authenticator = authenticator
    app.state.write_limiter = WriteLimiter(settings.webapi.limits)
    install_error_handlers(app)
    # the API first, ahead of FastAPI's own /spec and docs routes: a request is matched against
    # each route in turn, and the API's are the busy ones (no path of one group matches a path
    # of another, so the order changes nothing else)
    app.router.routes[:0] = _routes_of(*API_ROUTERS)
    app.router.routes.extend(_routes_of(*PUBLIC_ROUTERS))
    app.mount(ui.PATH, ui.console())  # the console's page and assets: public, they hold no job data
    install_middleware(app, settings.webapi, cacheable_prefixes=(DOCS_ASSETS,))
    install_observability(app, settings)  # outermost: every reply gets its request id
    check_protected(app)
    return app


def _routes_of(*routers: APIRouter) -> list[BaseRoute]:
    """The routers' routes, to join the app's own list, not ``app.include_router(router)``.

    Since FastAPI 0.137 an included router stays a node of a tree that every request walks
    and matches twice (fastapi/fastapi#15745); that cost a served GET /jobs/{id} 12-16 % of
    its CPU (bench/README.md, "Routes in the app's own list"). The routes already carry
    everything an inclusion would add here: prefix, tags, ``route_class`` and dependencies
    come from their router's declaration. What no route carries is the app: the same route
    objects serve every app built in a process, so ``app.dependency_overrides`` does not
    apply to them (``create_app``'s ``store`` and ``bus`` are the seams for tests). A router
    with routers of its own is refused, since its nested routes would lose what their
    inclusion adds.
    """
    routes = [route for router in routers for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{type(route).__name__} in a router of the app: only routes are served this way")
    return routes


def _reload_on_sighup(authenticator: Authenticator) -> bool:
    """SIGHUP re-reads the tokens file; only where signals can be handled (the main thread of
    the webapi process, not an app served from a test's thread)."""
    if authenticator.tokens is None:
        return False
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, authenticator.reload)
    except (RuntimeError, ValueError, NotImplementedError):
        return False
    logger.info("SIGHUP reloads the tokens file %s", authenticator.tokens.path)
    return True
