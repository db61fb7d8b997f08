"""The app's collaborators for a request: settings, store and bus, kept on ``app.state``.

Plain functions of the request rather than FastAPI dependencies (``Depends``): solving a
dependency costs more per request than the SQLite read behind GET /jobs/{id} (measured with
bench/api.py). Tests swap collaborators through ``create_app(settings, store=..., bus=...)``.
"""

from __future__ import annotations

from fastapi import Request

from common.bus.base import EventBus
from common.config import Settings
from common.store.base import JobStore


def store_of(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


def bus_of(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings
