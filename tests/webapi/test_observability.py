"""webapi as an OS process with LOG_FORMAT=json, against a moto server of its own (so the test
can stop it): liveness, readiness per dependency, the request id from the client in every log
line of its request and in the reply, request metrics by route template, and readiness
failing (503) once the emulator is gone while liveness still answers. Then, served in-process
over real HTTP, the principal set by authentication in the lines of its request."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import Request

from common.bus.base import EventBus
from common.config import Settings
from common.logging import JSONFormatter
from common.store.base import JobStore
from tests.e2e.conftest import eventually, tail
from tests.scrape import value
from tests.servers import (
    MotoServer,
    ThreadedUvicorn,
    component_env,
    free_port,
    moto_server,
    stop_process,
    wait_for_http,
)
from webapi import create_app


@pytest.fixture
def own_moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def webapi(own_moto: MotoServer, tmp_path: Path, unique_name: str) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "webapi.log"
    env = component_env(
        moto=own_moto,
        sqlite_path=tmp_path / "jobs.db",
        extra={
            "COMPONENT_NAME": "webapi",
            "WEBAPI__PORT": str(port),
            "LOG_FORMAT": "json",
            "SQS__QUEUE_NAME": f"{unique_name}-ops",
            "SQS__DEAD_LETTER_QUEUE_NAME": f"{unique_name}-dlq",
            "SQS__PUBLISH_ATTEMPTS": "1",
        },
    )
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ecs_scheduler"], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", process=process)
        yield url, log
    finally:
        assert stop_process(process) == 0, tail(log)


def log_entries(log: Path) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be one JSON object."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_webapi_health_readiness_request_ids_and_metrics(
    webapi: tuple[str, Path], own_moto: MotoServer
) -> None:
    url, log = webapi
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert set(checks) == {"store", "queue"}
        assert all(c["status"] == "ok" and c["latencyMs"] >= 0 for c in checks.values())

        # the client's id comes back, and names every line of its request
        missing = http.get("/jobs/no-such-job", headers={"X-Request-ID": "client-req-42"})
        assert missing.status_code == 404
        assert missing.headers["X-Request-ID"] == "client-req-42"
        # an implausible id (spaces, too long) is replaced, never echoed
        odd = http.get("/", headers={"X-Request-ID": "a b" + "x" * 200})
        assert odd.headers["X-Request-ID"] != "a b" + "x" * 200 and len(odd.headers["X-Request-ID"]) == 32

        metrics = f"{url}/metrics"
        labels = {"route": "/jobs/{job_id}", "method": "GET", "status": "404"}
        assert value(metrics, "ecs_scheduler_api_requests_total", **labels) == 1
        histogram = {"route": "/jobs/{job_id}", "method": "GET"}
        assert value(metrics, "ecs_scheduler_api_request_duration_seconds_count", **histogram) == 1

        stop_process(own_moto.process)
        not_ready = http.get("/readyz")
        assert not_ready.status_code == 503
        body = not_ready.json()
        assert body["status"] == "not ready" and body["checks"]["queue"]["status"] != "ok"
        assert body["checks"]["store"]["status"] == "ok"
        assert "127.0.0.1" not in not_ready.text  # no endpoint URL in a reply
        assert http.get("/healthz").status_code == 200

        # a write stands when its event cannot be sent; the failure is counted
        created = http.post("/jobs", json={"taskDefinition": "t", "schedule": "0 0 0"})
        assert created.status_code == 503, created.text
        assert value(metrics, "ecs_scheduler_api_publish_failures_total") == 1

    entries = eventually(
        lambda: (e := log_entries(log)) and any(x.get("path") == "/jobs" for x in e) and e,
        timeout=5,
        what="the POST's access line",
    )
    assert all({"time", "level", "component", "logger", "message"} <= set(e) for e in entries)
    ours = [e for e in entries if e.get("request_id") == "client-req-42"]
    access = [e for e in ours if e["logger"] == "webapi.access"]
    assert len(access) == 1, ours
    assert access[0]["method"] == "GET" and access[0]["path"] == "/jobs/{job_id}"
    assert access[0]["status"] == 404 and access[0]["duration_ms"] > 0
    assert access[0]["component"] == "webapi" and access[0]["level"] == "INFO"
    # the route's own line for this request carries the id too
    assert any("rejected (404)" in e["message"] for e in ours), ours
    # every access line has an id; the other requests' are their own
    assert len({e["request_id"] for e in entries if e["logger"] == "webapi.access"}) > 1


def test_the_principal_authentication_sets_names_the_later_lines_of_its_request(
    settings: Settings, sqlite_store: JobStore, sqs_bus: EventBus
) -> None:
    """The route below stands in for the auth dependency (not on this branch): it sets
    ``request.state.principal`` as that will, then logs."""
    app = create_app(settings.model_copy(update={"log_format": "json"}), store=sqlite_store, bus=sqs_bus)
    route_logger = logging.getLogger("tests.webapi.principal")

    async def whoami(request: Request) -> dict[str, str]:
        route_logger.info("before")
        request.state.principal = SimpleNamespace(name="alice")
        route_logger.info("after")
        return {}

    app.add_api_route("/whoami", whoami)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter("webapi"))
    loggers = [route_logger, logging.getLogger("webapi.access")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        with ThreadedUvicorn(app) as server:
            reply = httpx.get(f"{server.url}/whoami", headers={"X-Request-ID": "who-1"})
            assert reply.status_code == 200 and reply.headers["X-Request-ID"] == "who-1"
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    before, after, access = (json.loads(line) for line in stream.getvalue().splitlines())
    assert before["request_id"] == after["request_id"] == access["request_id"] == "who-1"
    assert "principal" not in before
    assert after["principal"] == access["principal"] == "alice"
    assert access["path"] == "/whoami" and access["status"] == 200
