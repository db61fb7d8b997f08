"""SQS down or stalled: a write is acknowledged without waiting on SQS (well inside the bound a
publish would wait), its event waits in the outbox, and the relay's errors never show the
endpoint URL."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common import aws
from common.bus.sqs import SQSEventBus
from common.config import AWSSettings, RetrySettings, Settings, SQLiteSettings, SQSSettings
from common.store.sqlite import SQLiteJobStore
from tests.servers import StalledServer, ThreadedUvicorn, moto_server, stop_process
from webapi import create_app

JOB = {"taskDefinition": "task", "schedule": "0 */5"}


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        sys.stderr.write(f"\n{line}\n")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "api.db"))
    yield store
    store.close()


def _timed_post(http: httpx.Client, job_id: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = http.post("/jobs", json={**JOB, "id": job_id})
    return time.perf_counter() - start, response


def test_post_answers_201_at_once_with_the_sqs_server_stopped(
    store: SQLiteJobStore,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    timeouts = AWSSettings()
    sqs = SQSSettings(queue_name=unique_name, dead_letter_queue_name=f"{unique_name}-dlq")
    with moto_server() as moto:
        for key, value in moto.env.items():
            monkeypatch.setenv(key, value)
        bus = SQSEventBus.from_settings(sqs, aws_settings=timeouts)  # built as the app builds it
        app = create_app(Settings(sqs=sqs), store=store, bus=bus)
        with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
            assert http.post("/jobs", json={**JOB, "id": "before"}).status_code == 201
            stop_process(moto.process)
            elapsed, response = _timed_post(http, "during")
            _wait_for_a_failed_send(caplog)
    bus.close()
    _report(capsys, f"POST -> 201 with the SQS server stopped: {elapsed:.3f} s")
    assert response.status_code == 201, response.text
    assert elapsed < timeouts.publish_timeout_seconds  # never waited for a publish
    assert store.get_job("during").task_definition == "task"
    assert store.outbox_backlog()[0] >= 1  # its event waits (with "before"'s, if not yet sent)


def test_post_answers_201_at_once_when_sqs_stalls(
    store: SQLiteJobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    timeouts = AWSSettings(publish_timeout_seconds=1.0, read_timeout_seconds=2.0)
    with StalledServer() as stalled:
        client = aws.client(
            "sqs",
            timeouts,
            retry=RetrySettings(aws_max_attempts=1),
            endpoint_url=stalled.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        bus = SQSEventBus(
            client,
            queue_url=f"{stalled.url}/123456789012/ops",
            dead_letter_queue_url=f"{stalled.url}/123456789012/dlq",
            wait_seconds=1,
            publish_timeout=timeouts.publish_timeout_seconds,
        )
        app = create_app(Settings(), store=store, bus=bus)
        with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
            elapsed, response = _timed_post(http, "stalled")
            second, again = _timed_post(http, "stalled-again")  # the relay is still stuck
        bus.close()
    _report(capsys, f"POST -> 201 with SQS stalled: {elapsed:.3f} s, then {second:.3f} s")
    assert response.status_code == 201 and again.status_code == 201
    assert max(elapsed, second) < timeouts.publish_timeout_seconds
    assert store.get_job("stalled").task_definition == "task"
    assert store.outbox_backlog()[0] == 2  # neither event was sent: both wait


def _wait_for_a_failed_send(caplog: pytest.LogCaptureFixture) -> None:
    deadline = time.monotonic() + 15
    while "change events not sent" not in caplog.text:
        assert time.monotonic() < deadline, "the relay never reported the failed send"
        time.sleep(0.05)
