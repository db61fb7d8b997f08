"""Request dependencies as named ``Annotated`` aliases; tests can override one provider.

Providers are ``async def``: FastAPI runs plain ``def`` dependencies in its thread pool,
a thread hop per dependency per request for what is an attribute lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from common.bus.base import EventBus
from common.config import Settings
from common.store.base import JobStore


async def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


async def get_bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[JobStore, Depends(get_store)]
BusDep = Annotated[EventBus, Depends(get_bus)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
