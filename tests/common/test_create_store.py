"""create_store builds the configured backend and refuses one it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import Settings, SQLiteSettings, StoreSettings
from common.store import create_store
from common.store.sqlite import SQLiteJobStore


def test_sqlite_backend_is_built(tmp_path: Path) -> None:
    store = create_store(Settings(store=StoreSettings(sqlite=SQLiteSettings(path=tmp_path / "j.db"))))
    try:
        assert isinstance(store, SQLiteJobStore)
    finally:
        store.close()


def test_unknown_backend_is_rejected_not_taken_for_elasticsearch() -> None:
    settings = Settings()
    settings.store.backend = "cassandra"  # type: ignore[assignment]  # past validation on purpose
    with pytest.raises(ValueError, match="cassandra"):
        create_store(settings)
