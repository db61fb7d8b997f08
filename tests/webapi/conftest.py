"""webapi under test: the real app served by uvicorn, called over HTTP with httpx, a SQLite store in
tmp_path and the SQS bus on the moto server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from common.bus.base import EventBus
from common.bus.sqs import SQSEventBus
from common.config import AuthSettings, Settings, SQLiteSettings, SQSSettings, StoreSettings
from common.store.base import Store
from tests.servers import ThreadedUvicorn
from webapi import create_app
from webapi.tokens import token_hash


@pytest.fixture
def settings(tmp_path: Path, sqs_settings: SQSSettings) -> Settings:
    return Settings(store=StoreSettings(sqlite=SQLiteSettings(path=tmp_path / "api.db")), sqs=sqs_settings)


@pytest.fixture
def sqs_bus(sqs_settings: SQSSettings, sqs_client: Any) -> Iterator[SQSEventBus]:
    bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    yield bus


Serve = Callable[..., AbstractContextManager[httpx.Client]]


@pytest.fixture
def serve(settings: Settings, sqlite_store: Store, sqs_bus: EventBus) -> Serve:
    """``with serve(auth=AuthSettings(...), webapi=...) as http:`` the app built from the test's
    settings with those sections replaced, served over HTTP on 127.0.0.1."""

    @contextlib.contextmanager
    def serving(**sections: Any) -> Iterator[httpx.Client]:
        app = create_app(settings.model_copy(update=sections), store=sqlite_store, bus=sqs_bus)
        with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            yield http

    return serving


@pytest.fixture
def client(serve: Serve) -> Iterator[httpx.Client]:
    with serve() as http:
        yield http


def write_tokens(path: Path, tokens: dict[str, dict[str, Any]]) -> Path:
    """A tokens file in the documented shape from {token: entry without its hash}."""
    entries = [{**entry, "sha256": token_hash(token)} for token, entry in tokens.items()]
    path.write_text(yaml.safe_dump({"tokens": entries}))
    return path


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def tokens_auth(path: Path, **options: Any) -> AuthSettings:
    return AuthSettings(mode="tokens", tokens_file=path, **options)


JSON = {"Content-Type": "application/json"}
