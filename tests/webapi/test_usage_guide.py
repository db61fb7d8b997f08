"""Every request and response of the service's usage guide (a documented session of the API),
replayed in order against the webapi, with the change events really published to SQS (moto
server).

Two of the guide's answers are typos and are checked as the API really behaves: the stored
schedule is the one created (``25 */5``), and a job returns exactly the overrides it was given.
"""

from __future__ import annotations

import re

import httpx

from common.bus.sqs import SQSEventBus
from tests.contract.test_bus import receive_events
from tests.webapi.conftest import JSON


def link(job_id: str) -> dict[str, str]:
    return {"href": f"/jobs/{job_id}", "rel": "item", "title": f"Job for {job_id}"}


def test_usage_guide_flow(client: httpx.Client, sqs_bus: SQSEventBus) -> None:
    # Basic job creation
    created = client.post(
        "/jobs", content='{"taskDefinition": "sleeper-task", "schedule": "25 */5"}', headers=JSON
    )
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    assert created.json() == {"id": "sleeper-task", "link": link("sleeper-task")}

    got = client.get("/jobs/sleeper-task")
    assert got.status_code == 200
    assert got.json() == {
        "id": "sleeper-task",
        "link": link("sleeper-task"),
        "schedule": "25 */5",
        "taskCount": 1,
        "taskDefinition": "sleeper-task",
    }

    # "?" wildcard: resolved once, stored concretely
    updated = client.put("/jobs/sleeper-task", content='{"schedule": "? */5"}', headers=JSON)
    assert updated.status_code == 200
    assert updated.json() == {"id": "sleeper-task", "link": link("sleeper-task")}
    sleeper = client.get("/jobs/sleeper-task").json()
    match = re.fullmatch(r"(\d+) \*/5", sleeper["schedule"])
    assert match and 0 <= int(match.group(1)) <= 59
    assert sleeper == {
        "id": "sleeper-task",
        "link": link("sleeper-task"),
        "schedule": sleeper["schedule"],
        "taskCount": 1,
        "taskDefinition": "sleeper-task",
    }
    assert client.get("/jobs/sleeper-task").json()["schedule"] == sleeper["schedule"]  # stable

    # Multiple jobs per task: a second create with the same id conflicts
    conflict = client.post(
        "/jobs", content='{"taskDefinition": "sleeper-task", "schedule": "? */7"}', headers=JSON
    )
    assert conflict.status_code == 409
    assert conflict.json() == {"message": "Job sleeper-task already exists"}

    long_sleep = client.post(
        "/jobs",
        content=(
            '{"taskDefinition": "sleeper-task", "id": "long-sleep-task", "schedule": "? */7", '
            '"overrides": [{"containerName": "drmonkeysee-task", '
            '"environment": {"SLEEP_SECONDS": "10"}}]}'
        ),
        headers=JSON,
    )
    assert long_sleep.status_code == 201
    assert long_sleep.json() == {"id": "long-sleep-task", "link": link("long-sleep-task")}
    long_job = client.get("/jobs/long-sleep-task").json()
    assert re.fullmatch(r"\d+ \*/7", long_job["schedule"])
    assert long_job == {
        "id": "long-sleep-task",
        "link": link("long-sleep-task"),
        "overrides": [{"containerName": "drmonkeysee-task", "environment": {"SLEEP_SECONDS": "10"}}],
        "schedule": long_job["schedule"],
        "taskCount": 1,
        "taskDefinition": "sleeper-task",
    }

    listed = client.get("/jobs")
    assert listed.status_code == 200
    assert listed.json() == {"jobs": [long_job, sleeper]}

    # Triggers
    consumer = client.post(
        "/jobs",
        content=(
            '{"taskDefinition": "consumer-task", "schedule": "? */3", "trigger": '
            '{"type": "sqs", "queueName": "consumer-task-queue", "messagesPerTask": 100}}'
        ),
        headers=JSON,
    )
    assert consumer.status_code == 201
    assert consumer.json() == {"id": "consumer-task", "link": link("consumer-task")}
    consumer_job = client.get("/jobs/consumer-task").json()
    assert re.fullmatch(r"\d+ \*/3", consumer_job["schedule"])
    assert consumer_job == {
        "id": "consumer-task",
        "link": link("consumer-task"),
        "schedule": consumer_job["schedule"],
        "taskCount": 1,
        "taskDefinition": "consumer-task",
        "trigger": {"messagesPerTask": 100, "queueName": "consumer-task-queue", "type": "sqs"},
    }

    capped = client.put("/jobs/consumer-task", content='{"maxCount": 10}', headers=JSON)
    assert capped.status_code == 200
    assert client.get("/jobs/consumer-task").json() == {**consumer_job, "maxCount": 10}

    # every successful write published its change event to SQS, in order
    events = receive_events(sqs_bus, 5)
    assert sorted(events) == sorted(
        [
            ("add", "sleeper-task"),
            ("modify", "sleeper-task"),
            ("add", "long-sleep-task"),
            ("add", "consumer-task"),
            ("modify", "consumer-task"),
        ]
    )
