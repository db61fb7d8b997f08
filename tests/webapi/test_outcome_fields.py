"""The job fields of run tracking over the real API: ``timeoutSeconds`` and ``notify`` are
validated and stored; the outcome status fields are read-only; the OpenAPI document shows
them and the run history's task outcomes."""

from __future__ import annotations

import httpx
import orjson

from common.models import JobStatus
from common.store.base import JobStore

JSON = {"Content-Type": "application/json"}
TOPIC = "arn:aws:sns:us-east-1:123456789012:job-failures"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/job-successes"


def post(client: httpx.Client, body: dict[str, object]) -> httpx.Response:
    return client.post("/jobs", content=orjson.dumps(body), headers=JSON)


def test_timeout_and_notify_targets_are_stored_as_given(client: httpx.Client) -> None:
    notify = {"onFailure": [TOPIC, "arn:aws:sqs:eu-west-1:123456789012:ops.fifo"], "onSuccess": [QUEUE]}
    created = post(
        client, {"taskDefinition": "td", "schedule": "0 0", "timeoutSeconds": 600, "notify": notify}
    )
    assert created.status_code == 201, created.text
    job = client.get("/jobs/td").json()
    assert job["timeoutSeconds"] == 600 and job["notify"] == notify
    assert client.put("/jobs/td", json={"notify": None}).status_code == 200
    assert "notify" not in client.get("/jobs/td").json()


def test_bad_timeout_and_targets_are_400_naming_the_field(client: httpx.Client) -> None:
    cases = [
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"timeoutSeconds": "60"}, "timeoutSeconds"),
        ({"notify": {"onFailure": ["mailto:ops@example.com"]}}, "notify.onFailure[0]"),
        ({"notify": {"onFailure": [TOPIC], "onError": [TOPIC]}}, "notify.onError"),
    ]
    for fields, path in cases:
        reply = post(client, {"taskDefinition": "td", "schedule": "0 0", **fields})
        assert reply.status_code == 400, (fields, reply.text)
        assert path in reply.json()["errors"], reply.json()


def test_outcome_status_fields_are_served_and_read_only(client: httpx.Client, sqlite_store: JobStore) -> None:
    assert post(client, {"taskDefinition": "td", "schedule": "0 0"}).status_code == 201
    sqlite_store.update_status("td", JobStatus(last_run_status="failed", consecutive_failures=2))
    job = client.get("/jobs/td").json()
    assert job["lastRunStatus"] == "failed" and job["consecutiveFailures"] == 2
    job["consecutiveFailures"] = 0
    job["lastRunStatus"] = "succeeded"
    job.pop("link")
    assert client.put("/jobs/td", json=job).status_code == 200  # GET → edit → PUT works
    again = client.get("/jobs/td").json()
    assert again["lastRunStatus"] == "failed" and again["consecutiveFailures"] == 2


def test_openapi_document_shows_the_new_fields(client: httpx.Client) -> None:
    spec = client.get("/spec").text
    for name in (
        "timeoutSeconds",
        "onFailure",
        "lastRunStatus",
        "consecutiveFailures",
        "exitCode",
        "stopCode",
        "durationSeconds",
        "logUrl",
        "timedOut",
    ):
        assert f'"{name}"' in spec, name
