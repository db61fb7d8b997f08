"""A request's collaborators as FastAPI dependencies (named ``Annotated`` aliases).

Settings, store and bus live on ``app.state`` (``create_app`` puts them there); tests swap them
through ``create_app(settings, store=..., bus=...)``. ``app.dependency_overrides`` does not reach
the API's routes: they are served from the app's own list, not included per app
(``webapi.app._routes_of``). The providers are ``async def`` so FastAPI calls them on the event
loop, not in a thread.

FastAPI solves every dependency of a route on every request, at a measurable cost each
(bench/request_cpu.py; figures in bench/README.md), so the job routes ask for
``ServicesDep`` (settings, store and bus in one) rather than three separate ones.
``PrincipalDep`` is the caller, already authenticated and checked against the route's role by
the router-level ``authorize`` dependency (its value is cached for the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

from common.bus.base import EventBus
from common.config import Settings
from common.store.base import JobStore, Outbox, RunHistory, RunRequests
from webapi.auth import authorize
from webapi.principal import Principal
from webapi.relay import OutboxRelay


class ApiStore(JobStore, RunHistory, RunRequests, Outbox, Protocol):
    """The store roles webapi uses: the jobs, the read side of the run log, run requests and
    the outbox its relay sends (every backend's ``Store`` has them); webapi never claims runs,
    writes status or takes leases."""


@dataclass(frozen=True, slots=True)
class Services:
    """What the routes work with; one per app, on ``app.state.services`` once started."""

    settings: Settings
    store: ApiStore
    bus: EventBus
    relay: OutboxRelay
    """Routes ``wake`` it after a write: its event is then sent at once."""


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> ApiStore:
    store: ApiStore = request.app.state.store
    return store


async def get_relay(request: Request) -> OutboxRelay:
    services: Services = request.app.state.services
    return services.relay


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ApiStore, Depends(get_store)]
RelayDep = Annotated[OutboxRelay, Depends(get_relay)]
PrincipalDep = Annotated[Principal, Depends(authorize)]
