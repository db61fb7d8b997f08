"""Run now, backfill and one run, over HTTP: what webapi stores and publishes (scheduld's
side, launching them, is tests/e2e/test_run_now.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from common.bus.sqs import SQSEventBus
from common.store.base import JobStore
from tests.contract.test_bus import receive_events


def create(client: httpx.Client, **fields: Any) -> None:
    body = {"taskDefinition": "task", "id": "j", "schedule": "0 */5", **fields}
    assert client.post("/jobs", json=body).status_code == 201


def test_run_now_is_requested_and_announced(client: httpx.Client, sqs_bus: SQSEventBus) -> None:
    create(client, suspended=True)  # a suspended job runs on demand too
    assert receive_events(sqs_bus, 1) == [("add", "j")]
    response = client.post("/jobs/j/runs")
    assert response.status_code == 202
    reply = response.json()
    assert reply["id"].startswith("j@") and reply["link"]["href"] == f"/jobs/j/runs/{reply['id']}"
    assert response.headers["location"] == reply["link"]["href"]
    run = client.get(reply["link"]["href"]).json()
    assert (run["id"], run["status"], run["trigger"]) == (reply["id"], "requested", "manual")
    assert receive_events(sqs_bus, 1) == [("run", "j")]


def test_run_now_takes_this_runs_task_count_and_overrides(
    client: httpx.Client, sqlite_store: JobStore
) -> None:
    create(client)
    overrides = [{"containerName": "c", "environment": {"MODE": "adhoc"}}]
    reply = client.post("/jobs/j/runs", json={"taskCount": 3, "overrides": overrides}).json()
    (run,) = sqlite_store.list_runs("j")
    assert run.run_id == reply["id"] and run.task_count == 3
    assert run.overrides and run.overrides[0].environment == {"MODE": "adhoc"}


def test_idempotency_key_returns_the_same_run(client: httpx.Client, sqlite_store: JobStore) -> None:
    create(client)
    first = client.post("/jobs/j/runs", headers={"Idempotency-Key": "deploy-42"}).json()
    again = client.post("/jobs/j/runs", headers={"Idempotency-Key": "deploy-42"}).json()
    other = client.post("/jobs/j/runs", headers={"Idempotency-Key": "deploy-43"}).json()
    assert first == again and other["id"] != first["id"]
    assert len(sqlite_store.list_runs("j")) == 2


BAD_RUN_REQUESTS: list[tuple[Any, dict[str, str], str]] = [
    ({"taskCount": 0}, {}, "taskCount"),
    ({"taskCount": 51}, {}, "taskCount"),
    ({"overrides": [{"environment": {}}]}, {}, "overrides[0].containerName"),
    ({"count": 1}, {}, "count"),
    (None, {"Idempotency-Key": "k" * 256}, "Idempotency-Key"),
]


def test_bad_run_requests_are_400_naming_the_field(client: httpx.Client) -> None:
    create(client)
    for body, headers, field in BAD_RUN_REQUESTS:
        response = (
            client.post("/jobs/j/runs", json=body, headers=headers)
            if body
            else client.post("/jobs/j/runs", headers=headers)
        )
        assert response.status_code == 400, body
        assert field in response.json()["errors"], body


def test_unknown_job_or_run_is_404(client: httpx.Client) -> None:
    assert client.post("/jobs/nope/runs").status_code == 404
    create(client)
    assert client.get("/jobs/j/runs/j@2026-01-01T00:00:00.000000Z").status_code == 404
    assert client.get("/jobs/j/runs/other@2026-01-01T00:00:00.000000Z").status_code == 404
    assert client.get("/jobs/j/runs/garbage").status_code == 404


def test_backfill_requests_one_run_per_fire_time_once(client: httpx.Client, sqlite_store: JobStore) -> None:
    create(client, schedule="cron(0 * * * ? *)")  # hourly
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()}
    reply = client.post("/jobs/j/backfill", json=window)
    assert reply.status_code == 202
    assert reply.json() | {"runs": None} == {
        "requested": 4,  # 09:00, 10:00, 11:00 and 12:00: both ends included
        "existing": 0,
        "first": start.isoformat(),
        "last": (start + timedelta(hours=3)).isoformat(),
        "runs": None,
    }
    wider = {"start": (start - timedelta(hours=1)).isoformat(), "end": window["end"]}
    again = client.post("/jobs/j/backfill", json=wider).json()
    assert (again["requested"], again["existing"]) == (1, 4)  # existing runs are not repeated
    runs = sqlite_store.list_runs("j", count=10)
    assert [run.scheduled_for.hour for run in runs] == [12, 11, 10, 9, 8]
    assert {(run.trigger, run.status) for run in runs} == {("backfill", "requested")}


BAD_WINDOWS: list[tuple[dict[str, str], str]] = [
    ({"start": "2026-11-01T00:00:00Z", "end": "2026-10-01T00:00:00Z"}, "end"),
    ({"start": "2026-11-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"}, "end"),
    ({"start": "2026-11-01T00:00:00Z"}, "end"),
    ({"start": "yesterday", "end": "2026-11-02T00:00:00Z"}, "start"),
    # every minute for a year: more than scheduler.max_backfill_runs (1000)
    ({"start": "2025-11-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
]


def test_bad_backfill_windows_are_400(client: httpx.Client) -> None:
    create(client, schedule="cron(* * * * ? *)")
    for window, field in BAD_WINDOWS:
        response = client.post("/jobs/j/backfill", json=window)
        assert response.status_code == 400, window
        assert field in response.json()["errors"], window


def test_a_window_within_the_cap_is_requested_whole(client: httpx.Client) -> None:
    create(client, schedule="cron(* * * * ? *)")
    hour = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:59:00Z"}
    assert client.post("/jobs/j/backfill", json=hour).json()["requested"] == 60


def test_openapi_documents_the_new_routes_and_fields(client: httpx.Client) -> None:
    spec = client.get("/spec").json()
    paths = spec["paths"]
    assert {"/jobs/{job_id}/runs", "/jobs/{job_id}/runs/{run_id}", "/jobs/{job_id}/backfill"} <= set(paths)
    assert "post" in paths["/jobs/{job_id}/runs"] and "get" in paths["/jobs/{job_id}/runs"]

    def body(path: str, method: str = "post") -> dict[str, Any]:
        schema: dict[str, Any] = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        return schema

    assert {
        "jitterSeconds",
        "overlapPolicy",
        "startingDeadlineSeconds",
        "catchUpPolicy",
        "runHistoryLimit",
        "retryPolicy",
        "deadLetterQueue",
        "suspendAfterFailures",
    } <= set(body("/jobs")["properties"]) & set(body("/jobs/{job_id}", "put")["properties"])
    assert re.fullmatch(body("/jobs")["properties"]["schedule"]["pattern"], "cron(0 9 ? * 2#1 *)")
    assert set(body("/jobs/{job_id}/runs")["properties"]) == {"taskCount", "overrides"}
    assert paths["/jobs/{job_id}/runs"]["post"]["requestBody"]["required"] is False
    assert set(body("/jobs/{job_id}/backfill")["required"]) == {"start", "end"}
    header = paths["/jobs/{job_id}/runs"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in header)
    assert "RunPublic" in spec["components"]["schemas"]
