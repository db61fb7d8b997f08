"""SQS down or stalled: a write answers 503 within the publish bound (the write stands), and the
error body names what failed without the endpoint URL."""

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


def test_post_answers_503_fast_with_the_sqs_server_stopped(
    store: SQLiteJobStore,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
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
    bus.close()
    _report(capsys, f"POST -> 503 with the SQS server stopped: {elapsed:.2f} s")
    assert response.status_code == 503
    assert elapsed < timeouts.publish_timeout_seconds + 1.5
    assert moto.url not in response.text and "127.0.0.1" not in response.text
    assert "could not connect to SQS" in response.text or "did not answer" in response.text
    assert store.get_job("during").task_definition == "task"  # the write stands


def test_post_answers_503_within_the_publish_bound_when_sqs_stalls(
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
            second, again = _timed_post(http, "stalled-again")  # the batcher is still stuck
        bus.close()
    _report(capsys, f"POST -> 503 with SQS stalled: {elapsed:.2f} s, then {second:.2f} s")
    assert response.status_code == 503 and again.status_code == 503
    assert "within 1 s" in response.json()["message"]
    assert stalled.url not in response.text
    assert max(elapsed, second) < timeouts.publish_timeout_seconds + 1.5
    assert store.get_job("stalled").task_definition == "task"
