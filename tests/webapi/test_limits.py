"""Limits and quotas over HTTP (README "Limits and quotas"): the request deadline, job quotas,
the write rate, 405 with every allowed method, and 5xx bodies without paths or URLs.

Real parts throughout: uvicorn on 127.0.0.1, SQLite in tmp_path, SQS on moto, OpenSearch on
osmem. A stalled dependency is a real one: SQLite held by another connection's write lock,
and an "SQS endpoint" that accepts TCP connections and never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from common.bus.base import EventBus
from common.bus.sqs import SQSEventBus
from common.config import (
    CORSSettings,
    ElasticsearchSettings,
    LimitsSettings,
    Settings,
    SQLiteSettings,
    SQSSettings,
    WebAPISettings,
)
from common.store.base import JobStore
from common.store.sqlite import SQLiteJobStore
from tests.contract.test_bus import receive_events
from tests.servers import TEST_REGION, ThreadedUvicorn, moto_server
from tests.webapi.conftest import JSON, Serve, bearer, tokens_auth, write_tokens
from webapi import create_app
from webapi.deadline import Deadline

JOB = {"taskDefinition": "sleeper-task", "schedule": "0 */5"}


def limits(**values: Any) -> WebAPISettings:
    return WebAPISettings(limits=LimitsSettings(**values))


@contextlib.contextmanager
def served(settings: Settings, store: JobStore, bus: EventBus) -> Iterator[httpx.Client]:
    app = create_app(settings, store=store, bus=bus)
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def sqs_client(url: str, **config: Any) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name=TEST_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, **config),
    )


def eventually(check: Callable[[], bool], *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


# --- the request deadline ---------------------------------------------------------------


def test_a_write_stalled_on_the_store_gets_503_naming_it_and_lands_whole_afterwards(
    settings: Settings, sqs_bus: SQSEventBus, tmp_path: Path
) -> None:
    path = tmp_path / "stalled.db"
    store = SQLiteJobStore(SQLiteSettings(path=path, busy_timeout_seconds=30))
    blocker = sqlite3.connect(path, isolation_level=None)
    quick = settings.model_copy(update={"webapi": limits(request_deadline_seconds=1)})
    try:
        with served(quick, store, sqs_bus) as http:
            try:
                blocker.execute("BEGIN IMMEDIATE")  # another process's write transaction
                started = time.monotonic()
                reply = http.post("/jobs", json=JOB)
                waited = time.monotonic() - started
                assert reply.status_code == 503, reply.text
                message = reply.json()["message"]
                assert "waiting for the job store" in message and "may still be saved" in message
                assert 0.9 < waited < 3.0
                blocker.execute("ROLLBACK")
                # the write was not abandoned: it lands, and scheduld is told
                eventually(lambda: http.get("/jobs/sleeper-task").status_code == 200)
                assert http.post("/jobs", json=JOB).status_code == 409  # a retried POST
                assert ("add", "sleeper-task") in receive_events(sqs_bus, 1)
            finally:
                # before the server stops: a failed check must not leave the write stalled in
                # its thread while the store is closed under it
                blocker.close()
    finally:
        store.close()


def test_each_request_meets_its_own_deadline_among_others() -> None:
    """Requests of every length, started at different times, on one app: each one past its
    deadline gets its 503 when its own deadline passes, the others their own reply."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(float(scope["query_string"] or 0))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    def timed(http: httpx.Client, pause: float, sleep: float) -> tuple[int, float]:
        time.sleep(pause)
        started = time.monotonic()
        status = http.get(f"/?{sleep}").status_code
        return status, time.monotonic() - started

    plan = [(0.0, 1.5), (0.0, 0.05), (0.3, 1.5), (0.5, 0.1), (0.6, 1.5)]  # (start after, app time)
    with ThreadedUvicorn(Deadline(app, seconds=0.5)) as server, httpx.Client(base_url=server.url) as http:
        with ThreadPoolExecutor(len(plan)) as pool:
            replies = list(pool.map(lambda step: timed(http, *step), plan))
    for (_, sleep), (status, took) in zip(plan, replies, strict=True):
        if sleep > 0.5:
            assert status == 503 and 0.45 < took < 1.4, (sleep, status, took)
        else:
            assert status == 200 and took < 0.5, (sleep, status, took)


# --- job quotas ---------------------------------------------------------------------------


def test_creates_beyond_max_jobs_get_403_naming_the_quota(serve: Serve) -> None:
    with serve(webapi=limits(max_jobs=2)) as http:
        for job_id in ("a", "b"):
            assert http.post("/jobs", json={**JOB, "id": job_id}).status_code == 201
        refused = http.post("/jobs", json={**JOB, "id": "c"})
        assert refused.status_code == 403
        assert refused.json()["message"] == (
            "Job quota reached: this server may have at most 2 jobs (webapi.limits.max_jobs)"
        )
        assert http.get("/jobs/c").status_code == 404
        assert http.delete("/jobs/a").status_code == 200
        assert http.post("/jobs", json={**JOB, "id": "c"}).status_code == 201


def test_each_token_has_its_own_job_quota_counted_by_created_by(serve: Serve, tmp_path: Path) -> None:
    writer = {"roles": ["read", "write"]}
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {"alice-token": {"name": "alice", **writer}, "bob-token": {"name": "bob", **writer}},
    )
    alice, bob = bearer("alice-token"), bearer("bob-token")
    with serve(auth=tokens_auth(tokens), webapi=limits(max_jobs_per_principal=1)) as http:
        assert (
            http.post("/jobs", json={**JOB, "id": "a1", "createdBy": "bob"}, headers=alice).status_code == 201
        )
        assert http.get("/jobs/a1", headers=bob).json()["createdBy"] == "alice"  # not what was sent
        refused = http.post("/jobs", json={**JOB, "id": "a2"}, headers=alice)
        assert refused.status_code == 403
        assert (
            "alice may have at most 1 jobs (webapi.limits.max_jobs_per_principal)"
            in refused.json()["message"]
        )
        assert http.post("/jobs", json={**JOB, "id": "b1"}, headers=bob).status_code == 201
        # createdBy is read-only: a PUT cannot hand a job (and its quota slot) to someone else
        assert (
            http.put("/jobs/a1", json={"createdBy": "bob", "taskCount": 2}, headers=alice).status_code == 200
        )
        assert http.get("/jobs/a1", headers=alice).json()["createdBy"] == "alice"
        assert http.delete("/jobs/a1", headers=bob).status_code == 200
        assert http.post("/jobs", json={**JOB, "id": "a2"}, headers=alice).status_code == 201


def test_created_by_and_429_are_in_the_openapi_document(client: httpx.Client) -> None:
    spec = client.get("/spec").json()
    created_by = spec["components"]["schemas"]["JobReply"]["properties"]["createdBy"]
    assert created_by["readOnly"] is True
    for method, path in (("post", "/jobs"), ("put", "/jobs/{job_id}"), ("delete", "/jobs/{job_id}")):
        assert "429" in spec["paths"][path][method]["responses"], (method, path)
    assert "429" not in spec["paths"]["/jobs"]["get"]["responses"]


# --- the write rate ---------------------------------------------------------------------------


def test_writes_beyond_the_rate_get_429_with_retry_after_per_client_address(serve: Serve) -> None:
    with serve(webapi=limits(write_rate="3/minute")) as http:
        for n in range(3):
            assert http.post("/jobs", json={**JOB, "id": f"j{n}"}).status_code == 201
        refused = http.put("/jobs/j0", json={"taskCount": 2})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "client 127.0.0.1" in refused.json()["message"]
        assert "webapi.limits.write_rate" in refused.json()["message"]
        assert http.get("/jobs/j0").json()["taskCount"] == 1  # refused before any work
        assert http.get("/jobs").status_code == 200  # reads are not limited
        other_address = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=http.base_url, transport=other_address) as other:
            assert other.delete("/jobs/j0").status_code == 200


def test_with_tokens_the_write_rate_is_per_token(serve: Serve, tmp_path: Path) -> None:
    writer = {"roles": ["read", "write"]}
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {"alice-token": {"name": "alice", **writer}, "bob-token": {"name": "bob", **writer}},
    )
    with serve(auth=tokens_auth(tokens), webapi=limits(write_rate="2/minute")) as http:
        for n in range(2):
            assert (
                http.post("/jobs", json={**JOB, "id": f"a{n}"}, headers=bearer("alice-token")).status_code
                == 201
            )
        refused = http.post("/jobs", json={**JOB, "id": "a2"}, headers=bearer("alice-token"))
        assert refused.status_code == 429 and "from alice" in refused.json()["message"]
        assert http.post("/jobs", json={**JOB, "id": "b0"}, headers=bearer("bob-token")).status_code == 201


# --- methods ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/jobs", "GET, POST"),
        ("PATCH", "/jobs", "GET, POST"),
        ("OPTIONS", "/jobs/x", "GET, PUT, DELETE"),
        ("POST", "/jobs/x", "GET, PUT, DELETE"),
        ("DELETE", "/jobs/x/runs", "GET, POST"),  # POST: run now
    ],
)
def test_a_method_the_path_does_not_serve_gets_405_listing_every_one_it_does(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    reply = client.request(method, path)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == allowed
    assert allowed in reply.json()["message"]


def test_cors_preflights_are_still_answered_by_the_cors_layer(serve: Serve) -> None:
    with serve(webapi=WebAPISettings(cors=CORSSettings(allow_origins=["https://ui.example"]))) as http:
        reply = http.options(
            "/jobs",
            headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"},
        )
    assert reply.status_code == 200
    assert "POST" in reply.headers["access-control-allow-methods"]


# --- 5xx bodies: what failed, not where ------------------------------------------------------


def assert_no_internals(reply: httpx.Response, *internals: str) -> None:
    assert reply.status_code == 503, reply.text
    for internal in ("http://", "https://", "127.0.0.1", *internals):
        assert internal not in reply.text, (internal, reply.text)


def test_with_the_sqs_server_stopped_writes_stand_and_readiness_names_the_queue_not_its_url(
    settings: Settings, sqlite_store: JobStore, sqs_settings: SQSSettings
) -> None:
    with moto_server() as own:
        bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client(own.url, connect_timeout=1))
        url = own.url
    try:
        with served(settings, sqlite_store, bus) as http:
            assert http.post("/jobs", json=JOB).status_code == 201  # its event waits in the outbox
            reply = http.get("/readyz")
            assert_no_internals(reply, url.split("//")[1], sqs_settings.queue_name)
            assert reply.json()["checks"]["queue"]["status"] != "ok"
    finally:
        bus.close()


def test_with_the_search_store_unreachable_the_503_names_the_store_not_its_url(
    settings: Settings, sqs_bus: SQSEventBus, osmem: Any
) -> None:
    from common.store.elasticsearch import ElasticsearchJobStore

    clone = osmem.clone()
    store = ElasticsearchJobStore.from_settings(
        ElasticsearchSettings(flavour="opensearch", hosts=[clone.url], index="gone", max_retries=0)
    )
    clone.close()
    try:
        with served(settings, store, sqs_bus) as http:
            for reply in (http.get("/jobs"), http.post("/jobs", json=JOB), http.get("/jobs/x")):
                assert_no_internals(reply, clone.url.split("//")[1])
                assert reply.json()["message"].startswith("Job store unavailable")
    finally:
        store.close()


def test_with_the_sqlite_store_locked_the_503_does_not_show_its_path(
    settings: Settings, sqs_bus: SQSEventBus, tmp_path: Path
) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteJobStore(SQLiteSettings(path=path, busy_timeout_seconds=0.1))
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        with served(settings, store, sqs_bus) as http:
            blocker.execute("BEGIN IMMEDIATE")
            reply = http.post("/jobs", json=JOB, headers=JSON)
            assert_no_internals(reply, str(tmp_path), "locked.db")
            assert reply.json()["message"].startswith("Job store unavailable")
    finally:
        blocker.close()
        store.close()
