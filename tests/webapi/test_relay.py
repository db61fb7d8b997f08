"""The outbox relay over real HTTP: two webapi replicas on one store and one moto SQS queue
share the outbox, every write's event arrives, and events no replica was woken for (written
by another process, or left by a crashed relay) are sent by polling."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from common.bus.sqs import SQSEventBus
from common.config import RelaySettings, Settings, SQLiteSettings, StoreSettings, WebAPISettings
from common.models import Job
from common.store.sqlite import SQLiteJobStore
from tests.contract.test_bus import receive_events
from tests.servers import ThreadedUvicorn
from webapi import create_app

JOB = {"taskDefinition": "task", "schedule": "0 */5"}
RELAY = RelaySettings(claim_seconds=1.0, poll_seconds=0.2, max_backoff_seconds=0.5)


def _settings(path: Path, sqs_settings: Any) -> Settings:
    return Settings(
        store=StoreSettings(sqlite=SQLiteSettings(path=path)),
        sqs=sqs_settings,
        webapi=WebAPISettings(relay=RELAY),
    )


def test_two_replicas_share_the_outbox_and_every_event_arrives(
    tmp_path: Path, sqs_settings: Any, sqs_client: Any
) -> None:
    settings = _settings(tmp_path / "jobs.db", sqs_settings)
    stores = [SQLiteJobStore(settings.store.sqlite) for _ in range(2)]
    buses = [SQSEventBus.from_settings(sqs_settings, client=sqs_client) for _ in range(2)]
    with contextlib.ExitStack() as stack:
        clients = []
        for store, bus in zip(stores, buses, strict=True):
            server = stack.enter_context(ThreadedUvicorn(create_app(settings, store=store, bus=bus)))
            clients.append(stack.enter_context(httpx.Client(base_url=server.url, timeout=30)))
        for n in range(40):
            reply = clients[n % 2].post("/jobs", json={**JOB, "id": f"j{n:02d}"})
            assert reply.status_code == 201, reply.text
        for n in range(0, 40, 4):
            assert clients[(n + 1) % 2].delete(f"/jobs/j{n:02d}").status_code == 200
        # an event that came twice (sent, then its removal lost) is allowed; a lost one is not
        arrived = Counter(receive_events(buses[0], 50, timeout=20))
        assert set(arrived) == {("add", f"j{n:02d}") for n in range(40)} | {
            ("remove", f"j{n:02d}") for n in range(0, 40, 4)
        }
        assert stores[0].outbox_backlog() == (0, None)
    for store in stores:
        store.close()


def test_events_written_by_another_process_are_sent_by_polling(
    tmp_path: Path, sqs_settings: Any, sqs_client: Any
) -> None:
    settings = _settings(tmp_path / "jobs.db", sqs_settings)
    served = SQLiteJobStore(settings.store.sqlite)
    other = SQLiteJobStore(settings.store.sqlite)  # a process whose relay never runs
    bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    with ThreadedUvicorn(create_app(settings, store=served, bus=bus)):
        other.create_job(Job.model_validate({**JOB, "id": "elsewhere"}))
        assert receive_events(bus, 1, timeout=10) == [("add", "elsewhere")]
    for store in (served, other):
        store.close()


def test_while_writes_keep_coming_their_events_share_messages(
    tmp_path: Path, sqs_settings: Any, sqs_client: Any
) -> None:
    """The first event of a quiet relay goes at once; those written while rounds go on wait
    up to ``linger_seconds`` and travel together (fewer SQS calls and messages per write)."""
    relay = RELAY.model_copy(update={"linger_seconds": 0.3})
    settings = _settings(tmp_path / "jobs.db", sqs_settings).model_copy(
        update={"webapi": WebAPISettings(relay=relay)}
    )
    store = SQLiteJobStore(settings.store.sqlite)
    bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    with (
        ThreadedUvicorn(create_app(settings, store=store, bus=bus)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for n in range(20):  # a write every 30 ms: longer than a round takes
            assert client.post("/jobs", json={**JOB, "id": f"j{n:02d}"}).status_code == 201
            time.sleep(0.03)
        messages: list[int] = []
        deadline = time.monotonic() + 20
        while sum(messages) < 20 and time.monotonic() < deadline:
            for message in bus.receive(max_messages=10, wait_seconds=1):
                messages.append(len(message.events))
                bus.ack(message)
    assert sum(messages) == 20
    assert len(messages) <= 8, messages  # without lingering: one message per write
    store.close()
