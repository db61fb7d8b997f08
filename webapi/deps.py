"""The app's collaborators for a request: settings, store and bus, kept on ``app.state``.

Plain functions of the request rather than FastAPI dependencies (``Depends``): solving a
dependency is a measurable share of a request served from SQLite (bench/api.py measures it).
Tests swap collaborators through ``create_app(settings, store=..., bus=...)``.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import Request

from common.bus.base import EventBus
from common.config import Settings
from common.store.base import JobStore, RunHistory


class ApiStore(JobStore, RunHistory, Protocol):
    """The store roles webapi uses: the jobs and the read side of the run log (every backend's
    ``Store`` has both); webapi never claims runs, writes status or takes leases."""


def store_of(request: Request) -> ApiStore:
    store: ApiStore = request.app.state.store
    return store


def bus_of(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings
