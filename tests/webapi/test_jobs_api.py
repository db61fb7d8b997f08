"""The Jobs API's contract beyond the usage guide: errors, paging, partial updates, events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from common.bus.sqs import SQSEventBus
from common.config import RelaySettings, WebAPISettings
from common.store.base import Store
from tests.contract.test_bus import receive_events
from tests.webapi.conftest import JSON, Serve


def create(client: httpx.Client, **fields: Any) -> httpx.Response:
    body = {"taskDefinition": "task", "schedule": "0 */5", **fields}
    return client.post("/jobs", json=body)


# --- create -----------------------------------------------------------------------------


def test_create_sets_location_and_defaults(client: httpx.Client) -> None:
    response = create(client, id="j1")
    assert response.status_code == 201
    assert response.headers["location"] == "/jobs/j1"
    assert client.get("/jobs/j1").json()["taskCount"] == 1


def test_create_id_defaults_to_task_definition(client: httpx.Client) -> None:
    assert create(client).json()["id"] == "task"


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"taskDefinition": None}, "taskDefinition"),
        ({"taskDefinition": "has space"}, "taskDefinition"),
        ({"id": "a/b"}, "id"),
        ({"schedule": "61"}, "schedule"),
        ({"schedule": "0 0 0 * * 30 2"}, "schedule"),
        ({"schedule": "1 2 3 4 5 6 7 8 9"}, "schedule"),
        ({"schedule": "0 0 ?/2"}, "schedule"),
        ({"schedule": ""}, "schedule"),
        ({"schedule": 5}, "schedule"),
        ({"taskCount": 0}, "taskCount"),
        ({"taskCount": 51}, "taskCount"),
        ({"taskCount": "5"}, "taskCount"),
        ({"taskCount": 1.5}, "taskCount"),
        ({"maxCount": 100}, "maxCount"),
        ({"suspended": "yes"}, "suspended"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"scheduleStart": "yesterday"}, "scheduleStart"),
        ({"scheduleStart": 1700000000}, "scheduleStart"),
        ({"scheduleStart": "2026-01-02T00:00:00Z", "scheduleEnd": "2026-01-01T00:00:00Z"}, "scheduleEnd"),
        ({"trigger": {"type": "sqs"}}, "trigger.queueName"),
        ({"trigger": {"type": "kafka", "queueName": "q"}}, "trigger.type"),
        ({"trigger": {"type": "sqs", "queueName": "q", "messagesPerTask": 0}}, "trigger.messagesPerTask"),
        ({"trigger": "sqs"}, "trigger"),
        ({"overrides": {"containerName": "c"}}, "overrides"),
        ({"overrides": [{"environment": {"A": "1"}}]}, "overrides[0].containerName"),
        ({"overrides": [{"containerName": "c", "environment": {"A": 1}}]}, "overrides[0].environment.A"),
        ({"overrides": [{"containerName": "c", "command": "run"}]}, "overrides[0].command"),
        ({"overrides": [{"containerName": "c"}, {"containerName": "c"}]}, "overrides"),
        (
            {"overrides": [{"containerName": "c", "environment": {f"K{i}": "v" * 90 for i in range(95)}}]},
            "overrides",
        ),
        ({"launchType": "LAMBDA"}, "launchType"),
        (
            {"launchType": "FARGATE", "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]},
            "capacityProviderStrategy",
        ),
        (
            {"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}},
            "networkConfiguration.awsvpcConfiguration.subnets",
        ),
        (
            {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "YES"}}},
            "networkConfiguration.awsvpcConfiguration.assignPublicIp",
        ),
        ({"tags": [{"key": "aws:x", "value": "v"}]}, "tags[0].key"),
        ({"tags": [{"key": "k" * 129, "value": "v"}]}, "tags[0].key"),
        ({"tags": [{"key": f"k{i}", "value": "v"} for i in range(49)]}, "tags"),
        ({"propagateTags": "ALL"}, "propagateTags"),
        ({"enableExecuteCommand": "true"}, "enableExecuteCommand"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_invalid_create_is_400_naming_the_field(
    client: httpx.Client, fields: dict[str, Any], bad_field: str
) -> None:
    body = {"taskDefinition": "task", "schedule": "0 */5", **fields}
    body = {k: v for k, v in body.items() if not (k == "taskDefinition" and v is None)}
    response = client.post("/jobs", json=body)
    assert response.status_code == 400, response.text
    reply = response.json()
    assert bad_field in reply["errors"], reply
    assert bad_field in reply["message"]
    assert client.get("/jobs").json() == {"jobs": []}  # nothing stored


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"null",
        b"42",
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
    ],
)
def test_malformed_bodies_are_400(client: httpx.Client, body: bytes) -> None:
    response = client.post("/jobs", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "body" in response.json()["errors"] or response.json()["errors"]


def test_missing_required_fields_named(client: httpx.Client) -> None:
    response = client.post("/jobs", json={})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"taskDefinition", "schedule"}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"taskDefinition": "task", "schedule": "0"}'
    assert client.post("/jobs", content=body, headers=headers).status_code == 415
    assert client.put("/jobs/task", content=body, headers=headers).status_code == 415


def test_json_with_charset_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/jobs",
        content=b'{"taskDefinition": "task", "schedule": "0"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_huge_body_is_413(client: httpx.Client) -> None:
    body = {"taskDefinition": "task", "schedule": "0", "group": "x" * 100_000}
    response = client.post("/jobs", json=body)
    assert response.status_code == 413
    assert "body" in response.json()["message"].lower()


def test_read_only_fields_are_ignored_so_get_put_round_trips(client: httpx.Client) -> None:
    create(client, id="rt", maxCount=3)
    document = client.get("/jobs/rt").json()
    document["maxCount"] = 4
    document["lastRun"] = "2020-01-01T00:00:00Z"
    response = client.put("/jobs/rt", json=document)
    assert response.status_code == 200, response.text
    stored = client.get("/jobs/rt").json()
    assert stored["maxCount"] == 4 and "lastRun" not in stored


def test_every_extension_field_round_trips(client: httpx.Client) -> None:
    fields = {
        "scheduleStart": "2026-01-01T00:00:00Z",
        "scheduleEnd": "2036-01-01T00:00:00Z",
        "timezone": "America/New_York",
        "taskCount": 3,
        "maxCount": 12,
        "suspended": False,
        "overrides": [{"containerName": "c", "environment": {"A": "1"}, "command": ["sh", "-c", "x"]}],
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 1}],
        "platformVersion": "1.4.0",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-1"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
        "group": "nightly",
        "tags": [{"key": "team", "value": "data"}],
        "propagateTags": "TASK_DEFINITION",
        "enableExecuteCommand": True,
    }
    assert create(client, id="full", **fields).status_code == 201
    stored = client.get("/jobs/full").json()
    assert {key: stored[key] for key in fields} == fields


def test_naive_dates_are_utc(client: httpx.Client) -> None:
    create(client, id="d", scheduleStart="2026-03-01T10:00:00")
    assert client.get("/jobs/d").json()["scheduleStart"] == "2026-03-01T10:00:00Z"
    create(client, id="e", scheduleStart="2026-03-01T10:00:00+02:00")
    assert client.get("/jobs/e").json()["scheduleStart"] == "2026-03-01T08:00:00Z"


def test_xth_and_last_day_expressions(client: httpx.Client) -> None:
    assert create(client, id="x", schedule="0 0 0 * * 2nd_fri").status_code == 201
    assert create(client, id="y", schedule="0 0 12 * * last_mon").status_code == 201
    assert client.get("/jobs/x").json()["schedule"] == "0 0 0 * * 2nd_fri"


# --- read, list --------------------------------------------------------------------------


def test_get_missing_is_404(client: httpx.Client) -> None:
    response = client.get("/jobs/nope")
    assert response.status_code == 404
    assert response.json() == {"message": "Job nope does not exist"}


def test_paging_prev_next(client: httpx.Client) -> None:
    for n in range(25):
        assert create(client, id=f"job{n:02d}").status_code == 201
    first = client.get("/jobs").json()
    assert [j["id"] for j in first["jobs"]] == [f"job{n:02d}" for n in range(10)]
    assert "prev" not in first and first["next"] == "/jobs?skip=10&count=10"
    middle = client.get(first["next"]).json()
    assert middle["prev"] == "/jobs?skip=0&count=10" and middle["next"] == "/jobs?skip=20&count=10"
    last = client.get(middle["next"]).json()
    assert [j["id"] for j in last["jobs"]] == [f"job{n:02d}" for n in range(20, 25)]
    assert last["prev"] == "/jobs?skip=10&count=10" and "next" not in last
    exact = client.get("/jobs?skip=15&count=10").json()
    assert "next" not in exact and exact["prev"] == "/jobs?skip=5&count=10"
    beyond = client.get("/jobs?skip=100&count=10").json()
    assert beyond["jobs"] == [] and "next" not in beyond
    listed = client.get("/jobs?skip=3&count=1").json()["jobs"][0]
    assert listed == client.get("/jobs/job03").json()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("skip=-1", "skip"),
        ("skip=x", "skip"),
        ("count=0", "count"),
        ("count=1001", "count"),
        ("count=1.5", "count"),
    ],
)
def test_bad_paging_is_400(client: httpx.Client, query: str, field: str) -> None:
    response = client.get(f"/jobs?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


# --- update, delete ----------------------------------------------------------------------


def test_partial_update_changes_only_given_fields(client: httpx.Client) -> None:
    create(client, id="p", taskCount=2, maxCount=5, suspended=False)
    assert client.put("/jobs/p", json={"suspended": True}).status_code == 200
    stored = client.get("/jobs/p").json()
    assert (stored["taskCount"], stored["maxCount"], stored["suspended"]) == (2, 5, True)


def test_null_clears_optional_field_but_not_required(client: httpx.Client) -> None:
    create(client, id="n", maxCount=5)
    assert client.put("/jobs/n", json={"maxCount": None}).status_code == 200
    assert "maxCount" not in client.get("/jobs/n").json()
    response = client.put("/jobs/n", json={"schedule": None})
    assert response.status_code == 400 and "schedule" in response.json()["errors"]


def test_update_validates_merged_job(client: httpx.Client) -> None:
    create(client, id="m", scheduleStart="2026-01-01T00:00:00Z")
    response = client.put("/jobs/m", json={"scheduleEnd": "2025-01-01T00:00:00Z"})
    assert response.status_code == 400 and "scheduleEnd" in response.json()["errors"]
    assert "scheduleEnd" not in client.get("/jobs/m").json()


def test_update_cannot_change_id(client: httpx.Client) -> None:
    create(client, id="keep")
    response = client.put("/jobs/keep", json={"id": "other"})
    assert response.status_code == 400 and "id" in response.json()["errors"]
    assert client.put("/jobs/keep", json={"id": "keep", "taskCount": 2}).status_code == 200


def test_update_missing_is_404(client: httpx.Client) -> None:
    response = client.put("/jobs/ghost", json={"taskCount": 2})
    assert response.status_code == 404
    assert response.json() == {"message": "Job ghost does not exist"}


def test_invalid_update_is_400_and_keeps_job(client: httpx.Client) -> None:
    create(client, id="v", taskCount=2)
    response = client.put("/jobs/v", json={"taskCount": 99, "bogus": True})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"taskCount", "bogus"}
    assert client.get("/jobs/v").json()["taskCount"] == 2


def test_delete(client: httpx.Client) -> None:
    create(client, id="gone")
    response = client.delete("/jobs/gone")
    assert response.status_code == 200 and response.json() == {"id": "gone"}
    assert client.get("/jobs/gone").status_code == 404
    again = client.delete("/jobs/gone")
    assert again.status_code == 404 and again.json() == {"message": "Job gone does not exist"}


# --- change events -----------------------------------------------------------------------


def test_writes_publish_events_and_failures_do_not(client: httpx.Client, sqs_bus: SQSEventBus) -> None:
    create(client, id="ev")
    client.put("/jobs/ev", json={"taskCount": 3})
    client.delete("/jobs/ev")
    create(client, id="ev", taskCount=0)  # invalid: no event
    client.put("/jobs/missing", json={"taskCount": 3})  # 404: no event
    assert sorted(receive_events(sqs_bus, 3)) == [("add", "ev"), ("modify", "ev"), ("remove", "ev")]
    assert sqs_bus.receive(max_messages=10, wait_seconds=1) == []


def test_writes_never_wait_on_sqs_and_their_events_arrive_once_it_is_back(
    serve: Serve, sqs_bus: SQSEventBus, sqs_client: Any, sqs_settings: Any, sqlite_store: Store
) -> None:
    """The ops queue really disappears on the moto server, so SendMessage really fails: the
    writes are acknowledged anyway, their events wait in the outbox, and the relay sends them
    once the queue exists again."""
    attributes = sqs_client.get_queue_attributes(QueueUrl=sqs_bus.queue_url, AttributeNames=["All"])
    sqs_client.delete_queue(QueueUrl=sqs_bus.queue_url)
    relay = RelaySettings(claim_seconds=0.5, poll_seconds=0.1, max_backoff_seconds=0.2)
    with serve(webapi=WebAPISettings(relay=relay)) as client:
        assert create(client, id="saved").status_code == 201
        assert client.put("/jobs/saved", json={"taskCount": 4}).status_code == 200
        assert sqlite_store.get_job("saved").task_count == 4  # the writes stand
        assert sqlite_store.outbox_backlog()[0] == 2  # and their events wait
        wanted = {"VisibilityTimeout", "RedrivePolicy"}
        kept = {k: v for k, v in attributes["Attributes"].items() if k in wanted}
        sqs_client.create_queue(QueueName=sqs_settings.queue_name, Attributes=kept)
        events = receive_events(sqs_bus, 2, timeout=15)
        assert sorted(events) == [("add", "saved"), ("modify", "saved")]  # SQS does not keep order
        assert sqlite_store.outbox_backlog() == (0, None)  # sent, then removed


# --- other routes ------------------------------------------------------------------------


def test_unknown_route_and_method_are_json(client: httpx.Client) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and "message" in missing.json()
    wrong = client.patch("/jobs")
    assert wrong.status_code == 405 and "message" in wrong.json()


# --- run history -------------------------------------------------------------------------


def test_runs_are_listed_newest_first_and_paged(client: httpx.Client, sqlite_store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    from common.models import Run

    create(client, id="r")
    lease = sqlite_store.acquire_lease("scheduld", holder="replica-1", ttl=60)
    assert lease is not None
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    for second in range(12):
        run = Run(
            job_id="r",
            scheduled_for=start + timedelta(seconds=second),
            replica="replica-1",
            token=lease.token,
        )
        sqlite_store.claim_run(run, lease)
        sqlite_store.finish_run(run.model_copy(update={"status": "launched", "started": 1}))
    first = client.get("/jobs/r/runs").json()
    assert [r["scheduledFor"] for r in first["runs"]][:2] == ["2026-11-25T12:00:11Z", "2026-11-25T12:00:10Z"]
    assert (
        len(first["runs"]) == 10 and first["next"] == "/jobs/r/runs?skip=10&count=10" and "prev" not in first
    )
    assert first["runs"][0]["status"] == "launched"
    # RunPublic: the fencing token and the replica that fired it stay inside the process
    assert not {"replica", "token"} & set(first["runs"][0])
    second = client.get(first["next"]).json()
    assert len(second["runs"]) == 2 and "next" not in second
    assert client.get("/jobs/r/runs?count=0").status_code == 400
    missing = client.get("/jobs/nope/runs")
    assert missing.status_code == 404 and missing.json() == {"message": "Job nope does not exist"}
    client.delete("/jobs/r")
    assert sqlite_store.list_runs("r") == []
