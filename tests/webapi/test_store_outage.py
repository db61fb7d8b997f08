"""The data directory removed under a running webapi: writes answer 503 (nothing acknowledged
and then lost at the next restart), and the body says what failed without the file's path."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from common.bus.sqs import SQSEventBus
from common.config import Settings, SQLiteSettings, StoreSettings
from common.store.sqlite import SQLiteJobStore
from tests.servers import ThreadedUvicorn
from webapi import create_app

JOB = {"taskDefinition": "task", "schedule": "0 */5"}


def test_writes_after_the_data_directory_is_removed_are_503(
    tmp_path: Path, settings: Settings, sqs_bus: SQSEventBus
) -> None:
    path = tmp_path / "data" / "api.db"
    store = SQLiteJobStore(SQLiteSettings(path=path))
    app = create_app(
        settings.model_copy(update={"store": StoreSettings(sqlite=SQLiteSettings(path=path))}),
        store=store,
        bus=sqs_bus,
    )
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/jobs", json={**JOB, "id": "kept"}).status_code == 201
        shutil.rmtree(path.parent)
        statuses = [http.post("/jobs", json={**JOB, "id": f"lost{n}"}).status_code for n in range(5)]
        update = http.put("/jobs/kept", json={"taskCount": 2})
        delete = http.delete("/jobs/kept")
    store.close()
    assert statuses == [503] * 5
    assert update.status_code == 503 and delete.status_code == 503
    assert "removed" in update.json()["message"]
    assert str(tmp_path) not in update.text
