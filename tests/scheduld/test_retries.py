"""Retries of failed launches, the dead-letter message and suspendAfterFailures.

ECS is ``FlakyECS`` (RecordingECS from conftest: moto cannot be told to answer RunTask with
``failures[]``, e.g. RESOURCE:MEMORY); the dead-letter queue is a real queue on moto's SQS.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from common.config import ECSSettings, SchedulerSettings
from common.models import Lease
from common.store.base import JobStore
from scheduld.deadletter import DeadLetters
from scheduld.executor import TaskLauncher
from scheduld.firing import Firing
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import RecordingECS, job, make_firing

QUICK = SchedulerSettings(retry_backoff_seconds=0.01, retry_backoff_max_seconds=0.02)


class FlakyECS(RecordingECS):
    """RunTask answers ``failures[]`` (nothing placed) for the next ``fail_next`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = 0

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if action == "RunTask" and self.fail_next > 0:
            with self.lock:
                self.fail_next -= 1
                self.calls.append((action, body))
            failure = {
                "arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/x",
                "reason": "RESOURCE:MEMORY",
            }
            return 200, {"tasks": [], "failures": [failure]}
        return super().answer(action, body)


@pytest.fixture
def flaky() -> Iterator[FlakyECS]:
    with FlakyECS() as endpoint:
        yield endpoint


@pytest.fixture
def dlq(sqs_client: Any, unique_name: str) -> tuple[str, str]:
    name = f"{unique_name}-failed-runs"
    return name, sqs_client.create_queue(QueueName=name)["QueueUrl"]


@pytest.fixture
def firing(
    sqlite_store: JobStore, flaky: FlakyECS, triggers: TriggerRegistry, lease: Lease, sqs_client: Any
) -> Firing:
    launcher = TaskLauncher(flaky.client(), ECSSettings(cluster="c"))
    return make_firing(
        sqlite_store, launcher, triggers, lease, settings=QUICK, dead_letters=DeadLetters(sqs_client)
    )


def drain_retries(firing: Firing, store: JobStore, lease: Lease) -> None:
    """What the leader's pending loop does, until nothing waits: each due retry, once."""
    for _ in range(20):
        pending = store.pending_runs()
        if not pending:
            return
        for run in pending:
            assert run.next_attempt_at is not None
            wait = (run.next_attempt_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                import time

                time.sleep(wait)
            firing.retry(run, lease)
    raise AssertionError("retries never ended")


def test_failed_launch_is_retried_until_it_succeeds(
    firing: Firing, sqlite_store: JobStore, flaky: FlakyECS, lease: Lease
) -> None:
    sqlite_store.create_job(job("flaky", taskCount=2, retryPolicy={"maximumRetryAttempts": 5}))
    flaky.fail_next = 2
    scheduled = datetime.now(UTC).replace(microsecond=0)
    firing("flaky", scheduled)
    (waiting,) = sqlite_store.list_runs("flaky")
    assert waiting.status == "retrying" and waiting.next_attempt_at is not None
    drain_retries(firing, sqlite_store, lease)
    (run,) = sqlite_store.list_runs("flaky")
    assert (run.status, run.started, len(run.tasks)) == ("launched", 2, 2)
    assert [(a.started, a.round, [f.reason for f in a.failures]) for a in run.attempts or []] == [
        (0, 0, ["RESOURCE:MEMORY"]),
        (0, 1, ["RESOURCE:MEMORY"]),
        (2, 2, []),
    ]
    tokens = [body["clientToken"] for body in flaky.run_task_calls()]
    assert len(tokens) == 3 and len(set(tokens)) == 3  # each round its own token: never a reused failure
    assert sqlite_store.get_job("flaky").last_run == scheduled


def test_exhausted_retries_send_one_dead_letter_message(
    firing: Firing,
    sqlite_store: JobStore,
    flaky: FlakyECS,
    lease: Lease,
    sqs_client: Any,
    dlq: tuple[str, str],
) -> None:
    name, url = dlq
    fields = {"retryPolicy": {"maximumRetryAttempts": 1}, "deadLetterQueue": {"queueName": name}}
    sqlite_store.create_job(job("doomed", **fields))
    flaky.fail_next = 100
    firing("doomed", datetime.now(UTC).replace(microsecond=0))
    drain_retries(firing, sqlite_store, lease)
    (run,) = sqlite_store.list_runs("doomed")
    assert run.status == "failed" and len(run.attempts or []) == 2
    messages = sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert len(messages) == 1
    body = orjson.loads(messages[0]["Body"])
    assert body["jobId"] == "doomed" and body["runId"] == run.run_id
    assert len(body["attempts"]) == 2 and body["lastError"]
    assert body["runTaskRequest"]["taskDefinition"] == "sleeper-task"
    assert body["scheduledFor"] == run.scheduled_for.isoformat()


def test_event_older_than_its_maximum_age_is_not_retried(
    firing: Firing, sqlite_store: JobStore, flaky: FlakyECS
) -> None:
    policy = {"maximumRetryAttempts": 10, "maximumEventAgeSeconds": 60}
    sqlite_store.create_job(job("stale", retryPolicy=policy))
    flaky.fail_next = 1
    firing("stale", datetime.now(UTC) - timedelta(seconds=120))
    (run,) = sqlite_store.list_runs("stale")
    assert run.status == "failed" and run.next_attempt_at is None


def test_no_retry_policy_keeps_the_seed_behaviour(
    firing: Firing, sqlite_store: JobStore, flaky: FlakyECS
) -> None:
    sqlite_store.create_job(job("plain"))
    flaky.fail_next = 1
    firing("plain", datetime.now(UTC))
    (run,) = sqlite_store.list_runs("plain")
    assert run.status == "failed" and sqlite_store.pending_runs() == []


def test_consecutive_failures_suspend_the_job(
    sqlite_store: JobStore, flaky: FlakyECS, triggers: TriggerRegistry, lease: Lease
) -> None:
    changed: list[str] = []
    launcher = TaskLauncher(flaky.client(), ECSSettings(cluster="c"))
    firing = make_firing(sqlite_store, launcher, triggers, lease, on_changed=changed.append)
    sqlite_store.create_job(job("fragile", suspendAfterFailures=2))
    now = datetime.now(UTC).replace(microsecond=0)
    flaky.fail_next = 1
    firing("fragile", now)
    firing("fragile", now + timedelta(seconds=1))  # a success between resets the count
    flaky.fail_next = 2
    firing("fragile", now + timedelta(seconds=2))
    assert not sqlite_store.get_job("fragile").suspended
    firing("fragile", now + timedelta(seconds=3))
    stored = sqlite_store.get_job("fragile")
    assert stored.suspended and stored.suspended_reason
    assert (
        "2 consecutive failed runs" in stored.suspended_reason
        and "RESOURCE:MEMORY" in stored.suspended_reason
    )
    assert changed == ["fragile"]


def test_a_manual_run_whose_leader_died_mid_launch_is_completed_with_the_same_tokens(
    sqlite_store: JobStore, flaky: FlakyECS, triggers: TriggerRegistry, lease: Lease
) -> None:
    from common.models import Run

    launcher = TaskLauncher(flaky.client(), ECSSettings(cluster="c"))
    sqlite_store.create_job(job("manual", taskCount=3))
    (asked,) = sqlite_store.request_runs(
        [
            Run(
                job_id="manual",
                scheduled_for=datetime.now(UTC),
                status="requested",
                replica="webapi",
                token=0,
                trigger="manual",
            )
        ]
    )
    dying = make_firing(sqlite_store, launcher, triggers, lease)
    dying._complete = lambda *args, **kwargs: "launched"  # type: ignore[method-assign] # dies before recording
    dying.run_requested(asked, lease)
    first_tokens = [body["clientToken"] for body in flaky.run_task_calls()]
    assert len(first_tokens) == 1 and flaky.run_task_calls()[0]["count"] == 3
    sqlite_store.release_lease(lease)
    successor = sqlite_store.acquire_lease("scheduld", holder="successor", ttl=60)
    assert successor is not None and successor.token > lease.token
    (orphan,) = sqlite_store.unfinished_runs(older_than_token=successor.token)
    make_firing(sqlite_store, launcher, triggers, successor).recover(orphan, successor)
    assert [body["clientToken"] for body in flaky.run_task_calls()] == first_tokens * 2  # ECS dedups
    (run,) = sqlite_store.list_runs("manual")
    assert (run.status, run.expected, run.trigger) == ("launched", 3, "manual")


def test_a_launch_with_no_answer_is_replayed_with_the_same_client_tokens(
    sqlite_store: JobStore, flaky: FlakyECS, triggers: TriggerRegistry, lease: Lease
) -> None:
    import boto3
    from botocore.config import Config

    impatient = boto3.client(
        "ecs",
        endpoint_url=flaky.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(read_timeout=0.5, retries={"mode": "standard", "max_attempts": 1}),
    )
    launcher = TaskLauncher(impatient, ECSSettings(cluster="c"))
    firing = make_firing(sqlite_store, launcher, triggers, lease, settings=QUICK)
    sqlite_store.create_job(job("timeout", taskCount=2, retryPolicy={"maximumRetryAttempts": 3}))
    flaky.run_task_delay = 1.0  # the call lands, the answer comes too late
    firing("timeout", datetime.now(UTC).replace(microsecond=0))
    flaky.run_task_delay = 0
    (waiting,) = sqlite_store.list_runs("timeout")
    assert waiting.status == "retrying" and (waiting.attempts or [])[0].uncertain
    drain_retries(firing, sqlite_store, lease)
    (run,) = sqlite_store.list_runs("timeout")
    tokens = [body["clientToken"] for body in flaky.run_task_calls()]
    # every call, the lost one and its replay (an HTTP client may resend on a dropped
    # connection too), carries one token: real ECS answers a replay with the first launch
    assert len(tokens) >= 2 and len(set(tokens)) == 1
    assert (run.status, run.started) == ("launched", 2)
    assert [(a.round, a.uncertain) for a in run.attempts or []] == [(0, True), (0, False)]
