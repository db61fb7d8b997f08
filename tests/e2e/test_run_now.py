"""Run now, backfill and retries through the two real processes (webapi and scheduld) and
moto's ECS and SQS: webapi stores the request, scheduld's leader launches it.

A failed launch is made real: RunTask of a task definition moto does not know fails; once
registered, the retry succeeds. The dead-letter message is read back from a moto SQS queue.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import eventually, tail
from tests.e2e.test_two_processes import Reaper, _answers, processes  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

QUICK_RETRIES = {"SCHEDULER__RETRY_BACKOFF_SECONDS": "0.5", "SCHEDULER__PENDING_POLL_SECONDS": "0.5"}
NEVER = "at(2099-01-01T00:00:00)"  # fires only on demand
FARGATE = {"launchType": "FARGATE"}  # moto places FARGATE tasks without container instances


def run_of(client: httpx.Client, href: str, *statuses: str) -> dict[str, Any] | None:
    run: dict[str, Any] = client.get(href).json()
    return run if run.get("status") in statuses else None


@pytest.mark.parametrize("processes", [QUICK_RETRIES], indirect=True)
def test_run_now_backfill_and_retries_through_both_processes(processes: dict[str, Any]) -> None:  # noqa: F811
    ecs, cluster, logs = processes["ecs"], processes["cluster"], processes["logs"]
    sqs = processes["sqs"]
    scheduld_log = f"scheduld's log: {logs['scheduld']}"
    with httpx.Client(base_url=processes["url"], timeout=10) as client, Reaper(ecs, cluster) as reaper:
        eventually(lambda: _answers(client), timeout=60, what=f"webapi\n{tail(logs['webapi'])}")

        # run now: a suspended job, this run's taskCount, one launch for two POSTs with one key
        job = {
            "taskDefinition": "sleeper-task",
            "id": "adhoc",
            "schedule": NEVER,
            "suspended": True,
        } | FARGATE
        assert client.post("/jobs", json=job).status_code == 201
        key = {"Idempotency-Key": "release-1"}
        first = client.post("/jobs/adhoc/runs", json={"taskCount": 2}, headers=key)
        again = client.post("/jobs/adhoc/runs", json={"taskCount": 2}, headers=key)
        assert first.status_code == again.status_code == 202 and first.json() == again.json()
        href = first.json()["link"]["href"]
        run = eventually(lambda: run_of(client, href, "launched", "succeeded"), timeout=20, what=scheduld_log)
        assert (run["trigger"], run["started"], len(run["tasks"])) == ("manual", 2, 2)
        eventually(lambda: reaper.count() >= 2 or None, timeout=10, what="manual tasks in ECS")
        time.sleep(1)
        assert reaper.count() == 2, "the repeated POST launched again"

        # backfill: one run per fire time of the window, in order
        hourly = {"taskDefinition": "sleeper-task", "id": "hourly", "schedule": "cron(0 * * * ? *)"} | FARGATE
        assert client.post("/jobs", json=hourly).status_code == 201
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        window = {"start": (end - timedelta(hours=2)).isoformat(), "end": end.isoformat()}
        assert client.post("/jobs/hourly/backfill", json=window).json()["requested"] == 3

        def backfilled() -> list[dict[str, Any]] | None:
            runs = [
                r for r in client.get("/jobs/hourly/runs").json()["runs"] if r.get("trigger") == "backfill"
            ]
            # paced (one a second by default), so the first may have ended before the last starts
            done = all(r["status"] in ("launched", "succeeded") for r in runs)
            return runs if len(runs) == 3 and done else None

        runs = eventually(backfilled, timeout=20, what=scheduld_log)
        assert [r["scheduledFor"] for r in runs] == [
            (end - timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in range(3)
        ]

        # a launch that fails is retried; it succeeds once the task definition exists
        flaky = {"taskDefinition": "late-task", "id": "late", "schedule": NEVER} | FARGATE
        assert (
            client.post("/jobs", json=flaky | {"retryPolicy": {"maximumRetryAttempts": 5}}).status_code == 201
        )
        href = client.post("/jobs/late/runs").json()["link"]["href"]
        eventually(lambda: run_of(client, href, "retrying"), timeout=20, what=scheduld_log)
        ecs.register_task_definition(
            family="late-task", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 64}]
        )
        run = eventually(lambda: run_of(client, href, "launched", "succeeded"), timeout=30, what=scheduld_log)
        assert run["attempts"][0]["failures"] and run["attempts"][-1]["started"] == 1

        # exhausted: one message on the job's dead-letter queue
        queue = f"{cluster}-failed"
        url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        doomed = {"taskDefinition": "no-such-task", "id": "doomed", "schedule": NEVER} | FARGATE
        doomed |= {"retryPolicy": {"maximumRetryAttempts": 1}, "deadLetterQueue": {"queueName": queue}}
        assert client.post("/jobs", json=doomed).status_code == 201
        href = client.post("/jobs/doomed/runs").json()["link"]["href"]
        run = eventually(lambda: run_of(client, href, "failed"), timeout=30, what=scheduld_log)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get(
            "Messages", []
        )
        assert len(messages) == 1
        body = orjson.loads(messages[0]["Body"])
        assert (body["jobId"], body["runId"], len(body["attempts"])) == ("doomed", run["id"], 2)
        assert body["runTaskRequest"]["taskDefinition"] == "no-such-task"
