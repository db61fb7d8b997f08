"""The Jobs API with the new schedule semantics: EventBridge expressions stored as given,
frequency warnings in write replies, and 400s naming the new fields."""

from __future__ import annotations

import httpx

from common.models import Job
from common.store.base import JobStore


def test_eventbridge_expression_is_stored_as_given(client: httpx.Client) -> None:
    body = {"taskDefinition": "t", "schedule": "cron(0 9 ? * MON-FRI *)", "timezone": "Europe/Paris"}
    assert client.post("/jobs", json=body).status_code == 201
    stored = client.get("/jobs/t").json()
    assert stored["schedule"] == "cron(0 9 ? * MON-FRI *)"


def test_frequent_schedule_is_accepted_with_a_warning(client: httpx.Client) -> None:
    created = client.post("/jobs", json={"taskDefinition": "unix", "schedule": "*/5 * * * *"})
    assert created.status_code == 201
    assert "every 5 seconds" in created.json()["warnings"][0]
    calm = client.put("/jobs/unix", json={"schedule": "cron(*/5 * * * ? *)"})
    assert calm.status_code == 200 and "warnings" not in calm.json()
    again = client.put("/jobs/unix", json={"schedule": "* *"})
    assert "every 1 seconds" in again.json()["warnings"][0]
    untouched = client.put("/jobs/unix", json={"taskCount": 2})
    assert "warnings" not in untouched.json()


BAD_FIELDS: list[tuple[dict[str, object], str]] = [
    ({"schedule": "cron(0 10 * * * *)"}, "schedule"),
    ({"schedule": "rate(5 weeks)"}, "schedule"),
    ({"schedule": "at(2020-01-01T00:00:00)"}, "schedule"),
    ({"scheduleEnd": "2020-01-01T00:00:00Z"}, "scheduleEnd"),
    ({"scheduleStart": "2030-01-02T00:00:00Z", "scheduleEnd": "2030-01-01T00:00:00Z"}, "scheduleEnd"),
    ({"jitterSeconds": 86401}, "jitterSeconds"),
    ({"overlapPolicy": "forbid"}, "overlapPolicy"),
    ({"startingDeadlineSeconds": 0}, "startingDeadlineSeconds"),
    ({"catchUpPolicy": "none"}, "catchUpPolicy"),
    ({"runHistoryLimit": 0}, "runHistoryLimit"),
    ({"retryPolicy": {"maximumRetryAttempts": 186}}, "retryPolicy.maximumRetryAttempts"),
    ({"retryPolicy": {"maximumEventAgeSeconds": 59}}, "retryPolicy.maximumEventAgeSeconds"),
    ({"retryPolicy": {"attempts": 1}}, "retryPolicy.attempts"),
    ({"deadLetterQueue": {}}, "deadLetterQueue"),
    (
        {"deadLetterQueue": {"queueName": "q", "arn": "arn:aws:sqs:us-east-1:123456789012:q"}},
        "deadLetterQueue",
    ),
    ({"deadLetterQueue": {"arn": "arn:aws:sns:us-east-1:123456789012:t"}}, "deadLetterQueue.arn"),
    ({"deadLetterQueue": {"queueName": "bad name"}}, "deadLetterQueue.queueName"),
    ({"suspendAfterFailures": 0}, "suspendAfterFailures"),
]


def test_bad_new_fields_are_400_naming_them(client: httpx.Client) -> None:
    for fields, bad_field in BAD_FIELDS:  # one server for every case: each costs a request
        response = client.post("/jobs", json={"taskDefinition": "t", "schedule": "0 0", **fields})
        assert response.status_code == 400, fields
        assert bad_field in response.json()["errors"], (fields, response.json())


def test_an_ended_job_can_still_be_edited(client: httpx.Client, sqlite_store: JobStore) -> None:
    ended = {"id": "t", "taskDefinition": "t", "schedule": "0 0", "scheduleEnd": "2020-01-01T00:00:00Z"}
    sqlite_store.create_job(Job.model_validate(ended))  # stored when its end was still ahead
    assert client.put("/jobs/t", json={"taskCount": 3}).status_code == 200
    assert client.put("/jobs/t", json={"scheduleEnd": "2020-01-01T00:00:00Z"}).status_code == 400


def test_new_fields_round_trip_and_suspended_reason_is_read_only(client: httpx.Client) -> None:
    fields = {
        "overlapPolicy": "replace",
        "startingDeadlineSeconds": 120,
        "catchUpPolicy": "all",
        "runHistoryLimit": 10,
        "retryPolicy": {"maximumRetryAttempts": 3, "maximumEventAgeSeconds": 600},
        "deadLetterQueue": {"arn": "arn:aws:sqs:us-east-1:123456789012:failed-runs"},
        "suspendAfterFailures": 5,
        "jitterSeconds": 30,
    }
    body = {"taskDefinition": "t", "schedule": "0 0", "suspendedReason": "sent by a client", **fields}
    assert client.post("/jobs", json=body).status_code == 201
    stored = client.get("/jobs/t").json()
    assert {key: stored[key] for key in fields} == fields
    assert "suspendedReason" not in stored


def test_resuming_a_job_clears_its_suspended_reason(client: httpx.Client, sqlite_store: JobStore) -> None:
    assert client.post("/jobs", json={"taskDefinition": "t", "schedule": "0 0"}).status_code == 201
    reason = "suspended after 2 consecutive failed runs; last: RESOURCE:MEMORY"
    sqlite_store.update_job(
        "t", lambda job: job.model_copy(update={"suspended": True, "suspended_reason": reason})
    )
    assert client.get("/jobs/t").json()["suspendedReason"] == reason
    assert client.put("/jobs/t", json={"taskCount": 2}).status_code == 200
    assert client.get("/jobs/t").json()["suspendedReason"] == reason  # other edits keep it
    assert client.put("/jobs/t", json={"suspended": False}).status_code == 200
    assert "suspendedReason" not in client.get("/jobs/t").json()
