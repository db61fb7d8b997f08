"""webapi under test: the real app served by uvicorn, called over HTTP with httpx, a SQLite store in
tmp_path and the SQS bus on the moto server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.bus.base import EventBus
from common.bus.sqs import SQSEventBus
from common.config import Settings, SQLiteSettings, SQSSettings, StoreSettings
from common.store.base import Store
from tests.servers import ThreadedUvicorn
from webapi import create_app


@pytest.fixture
def settings(tmp_path: Path, sqs_settings: SQSSettings) -> Settings:
    return Settings(store=StoreSettings(sqlite=SQLiteSettings(path=tmp_path / "api.db")), sqs=sqs_settings)


@pytest.fixture
def sqs_bus(sqs_settings: SQSSettings, sqs_client: Any) -> Iterator[SQSEventBus]:
    bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    yield bus


@pytest.fixture
def client(settings: Settings, sqlite_store: Store, sqs_bus: EventBus) -> Iterator[httpx.Client]:
    app = create_app(settings, store=sqlite_store, bus=sqs_bus)
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


JSON = {"Content-Type": "application/json"}
