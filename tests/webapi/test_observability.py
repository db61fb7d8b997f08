"""webapi as an OS process with LOG_FORMAT=json, against a moto server of its own (so the test
can stop it): liveness, readiness per dependency, the request id from the client in every log
line of its request and in the reply, request metrics by route template, and readiness
failing (503) once the emulator is gone while liveness still answers. Then, served in-process
over real HTTP with token authentication on: the probes answer without a token, and the lines
of a request name the principal authentication found."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.logging import JSONFormatter
from tests.e2e.conftest import eventually, tail
from tests.scrape import value
from tests.servers import (
    MotoServer,
    component_env,
    free_port,
    moto_server,
    stop_process,
    wait_for_http,
)
from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens


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
            "RETRY__AWS_MAX_ATTEMPTS": "1",
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

        # a write never waits on SQS: it is acknowledged, and its event waits in the outbox;
        # the relay's failed sends are counted and its backlog shows
        created = http.post("/jobs", json={"taskDefinition": "t", "schedule": "0 0 0"})
        assert created.status_code == 201, created.text
        eventually(
            lambda: value(metrics, "ecs_scheduler_api_publish_failures_total") >= 1,
            timeout=10,
            what="a counted send failure",
        )
        eventually(
            lambda: value(metrics, "ecs_scheduler_api_outbox_events") == 1,
            timeout=10,
            what="the event waiting in the outbox",
        )

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


def test_probes_stay_anonymous_with_auth_on_and_lines_name_the_principal(
    serve: Serve, tmp_path: Path
) -> None:
    reader = {"read-token-0123456789": {"name": "reader", "roles": ["read"]}}
    tokens = write_tokens(tmp_path / "tokens.yaml", reader)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter("webapi"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with serve(auth=tokens_auth(tokens), log_format="json") as http:
            assert http.get("/jobs").status_code == 401  # auth is on
            for probe in ("/healthz", "/readyz", "/metrics"):
                assert http.get(probe).status_code == 200, probe  # without a token
            reply = http.get(
                "/jobs/nope", headers={**bearer("read-token-0123456789"), "X-Request-ID": "who-1"}
            )
            assert reply.status_code == 404 and reply.headers["X-Request-ID"] == "who-1"
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    ours = [e for e in map(json.loads, stream.getvalue().splitlines()) if e.get("request_id") == "who-1"]
    rejected = [e for e in ours if "rejected (404)" in e["message"]]
    access = [e for e in ours if e["logger"] == "webapi.access"]
    assert rejected and access, ours
    assert rejected[0]["principal"] == access[0]["principal"] == "reader"
    assert access[0]["path"] == "/jobs/{job_id}" and access[0]["status"] == 404
