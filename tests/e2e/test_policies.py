"""Per-job policies through the two real processes: jobs are created with webapi's REST API,
scheduld's leader fires them against moto's ECS, and the outcomes are read back from the API
(GET /jobs/{id}/runs), from moto's ECS (ListTasks, DescribeTasks' stoppedReason) and from a
moto SQS dead-letter queue.

One webapi and one scheduld for the module (scheduld is restarted once, for the outage test).
moto's tasks run until stopped, so a job's earlier tasks are still "running" when it fires
again: the overlap policies see them. Run now (idempotency key, suspended job), backfill of a
window and retries until success are in tests/e2e/test_run_now.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from common.config import ECSSettings
from common.models import run_id
from scheduld.executor import started_by
from tests.conftest import aws_client
from tests.e2e.conftest import answers, eventually, tail
from tests.scheduld.conftest import create_cluster
from tests.servers import MotoServer, component_env, free_port, stop_process

pytestmark = pytest.mark.slow

PACE = 4.0  # SCHEDULER__BACKFILL_RUNS_PER_SECOND: backfill and catch-up runs, 0.25 s apart
MAX_BACKFILL = 20
FARGATE = {"launchType": "FARGATE"}  # moto places FARGATE tasks without container instances


@dataclass
class Stack:
    """webapi and scheduld as OS processes on one SQLite file, ECS and SQS from moto."""

    url: str
    cluster: str
    ecs: Any
    sqs: Any
    env: dict[str, str]
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        with self.logs[name].open("ab") as out:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "ecs_scheduler"],
                env={**self.env, "COMPONENT_NAME": name},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, name: str) -> int:
        return stop_process(self.processes[name], grace=15)

    def where(self) -> str:
        return f"scheduld's log:\n{tail(self.logs['scheduld'])}"

    def tasks(self, job_id: str, status: str = "RUNNING") -> list[str]:
        """The job's tasks in ECS (startedBy its marker), by desired status."""
        marker = started_by(ECSSettings().started_by, job_id)
        arns: list[str] = self.ecs.list_tasks(cluster=self.cluster, startedBy=marker, desiredStatus=status)[
            "taskArns"
        ]
        return arns


@pytest.fixture(scope="module")
def stack(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    name = f"pol{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("policies")
    ecs = aws_client(moto, "ecs")
    create_cluster(moto, f"{name}-cluster")
    port = free_port()
    env = component_env(
        moto=moto,
        sqlite_path=tmp / "jobs.db",
        extra={
            "WEBAPI__PORT": str(port),
            "ECS__CLUSTER": f"{name}-cluster",
            "SQS__QUEUE_NAME": f"{name}-ops",
            "SQS__DEAD_LETTER_QUEUE_NAME": f"{name}-dlq",
            "SCHEDULER__RETRY_BACKOFF_SECONDS": "0.5",
            "SCHEDULER__PENDING_POLL_SECONDS": "0.5",
            "SCHEDULER__BACKFILL_RUNS_PER_SECOND": str(PACE),
            "SCHEDULER__MAX_BACKFILL_RUNS": str(MAX_BACKFILL),
        },
    )
    logs = {component: tmp / f"{component}.log" for component in ("webapi", "scheduld")}
    stack = Stack(f"http://127.0.0.1:{port}", f"{name}-cluster", ecs, aws_client(moto, "sqs"), env, logs)
    try:
        for component in logs:
            stack.start(component)
        with httpx.Client(base_url=stack.url, timeout=10) as client:
            eventually(lambda: answers(client), timeout=60, what=f"webapi\n{tail(logs['webapi'])}")
        yield stack
    finally:
        codes = {component: stack.stop(component) for component in stack.processes}
        assert codes == {"webapi": 0, "scheduld": 0}, {n: tail(log) for n, log in logs.items()}


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


def runs_of(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """The job's runs, oldest first."""
    runs: list[dict[str, Any]] = api.get(f"/jobs/{job_id}/runs", params={"count": 500}).json()["runs"]
    return sorted(runs, key=lambda run: run["scheduledFor"])


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def create(api: httpx.Client, job: dict[str, Any]) -> None:
    reply = api.post("/jobs", json={"taskDefinition": "sleeper-task"} | FARGATE | job)
    assert reply.status_code == 201, reply.text


def suspend(api: httpx.Client, *job_ids: str) -> None:
    for job_id in job_ids:
        assert api.put(f"/jobs/{job_id}", json={"suspended": True}).status_code == 200
    time.sleep(1.5)  # a fire under way when suspended still records its run


# --- overlap -----------------------------------------------------------------------------


def test_overlap_policies_against_running_tasks(stack: Stack, api: httpx.Client) -> None:
    """taskCount 2 every 2 s; moto's tasks keep running. After the first run, one task of the
    topUp and skip jobs is stopped: topUp starts the one missing, skip starts none while one
    runs, allow always starts 2, replace stops the 2 running (with a reason) and starts 2."""
    policies = ("topUp", "skip", "allow", "replace")
    for policy in policies:
        job = {"id": f"ov-{policy.lower()}", "schedule": "*/2", "taskCount": 2, "overlapPolicy": policy}
        create(api, job)

    def first_runs() -> dict[str, dict[str, Any]] | None:
        found = {}
        for policy in policies:
            runs = [r for r in runs_of(api, f"ov-{policy.lower()}") if r["status"] == "launched"]
            if not runs:
                return None
            found[policy] = runs[0]
        return found

    first = eventually(first_runs, timeout=30, what=stack.where())
    assert all(run["started"] == 2 for run in first.values()), first
    for policy in ("topUp", "skip"):
        stack.ecs.stop_task(cluster=stack.cluster, task=first[policy]["tasks"][0]["taskId"], reason="test")
    stopped_at = datetime.now(UTC)

    def after_stop(job_id: str, count: int) -> list[dict[str, Any]] | None:
        runs = [r for r in runs_of(api, job_id) if at(r["claimedAt"]) > stopped_at]
        return runs if len(runs) >= count else None

    for job_id in ("ov-topup", "ov-skip", "ov-replace"):
        eventually(lambda job_id=job_id: after_stop(job_id, 2), timeout=20, what=stack.where())
    suspend(api, *(f"ov-{policy.lower()}" for policy in policies))

    def settled() -> bool:
        """No fire still under way (claimed, not yet launched or skipped): its counts would be missing."""
        return all(
            r["status"] != "claimed" for policy in policies for r in runs_of(api, f"ov-{policy.lower()}")
        )

    eventually(settled, timeout=20, what=stack.where())
    topped, skipped = after_stop("ov-topup", 2), after_stop("ov-skip", 2)
    assert topped is not None and skipped is not None

    # topUp: back to taskCount once, then nothing more to start (a fire that counted just
    # before the stop may show 2 running)
    outcomes = [(r["running"], r["started"], r["status"]) for r in topped]
    assert outcomes.count((1, 1, "launched")) == 1, outcomes
    assert set(outcomes) == {(1, 1, "launched"), (2, 0, "skipped")}, outcomes
    assert len(stack.tasks("ov-topup")) == 2
    # skip: one still runs, so nothing starts
    assert all((r["started"], r["status"]) == (0, "skipped") for r in skipped), skipped
    assert skipped[-1]["running"] == 1
    assert len(stack.tasks("ov-skip")) == 1
    # allow: every fire starts taskCount on top of what runs
    allowed = runs_of(api, "ov-allow")
    assert len(allowed) >= 3
    assert all(r["started"] == 2 and r["status"] == "launched" for r in allowed)
    assert [r["running"] for r in allowed] == [2 * n for n in range(len(allowed))]
    assert len(stack.tasks("ov-allow")) == 2 * len(allowed)
    # replace: each fire stops the previous fire's tasks, with a reason naming the run
    replaced = runs_of(api, "ov-replace")
    assert len(replaced) >= 3 and all(r["started"] == 2 for r in replaced)
    for previous, run in zip(replaced, replaced[1:], strict=False):
        assert sorted(run["stopped"]) == sorted(t["taskId"] for t in previous["tasks"])
        described = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=run["stopped"])["tasks"]
        assert {t["stoppedReason"] for t in described} == {
            f"ecs-scheduler: replaced by run {run_id('ov-replace', at(run['scheduledFor']))} "
            "(overlapPolicy replace)"
        }
    assert sorted(stack.tasks("ov-replace")) == sorted(t["taskId"] for t in replaced[-1]["tasks"])


# --- retries exhausted, dead-letter queue, suspendAfterFailures ---------------------------


def test_failed_scheduled_runs_are_retried_dead_lettered_and_suspend_the_job(
    stack: Stack, api: httpx.Client
) -> None:
    """Every launch fails (moto knows no such task definition): each run is tried twice, then
    sends one message to the job's dead-letter queue; the second failed run suspends the job."""
    queue = f"{stack.cluster}-failed-runs"
    url = stack.sqs.create_queue(QueueName=queue)["QueueUrl"]
    create(
        api,
        {
            "id": "doomed",
            "taskDefinition": "no-such-task",
            "schedule": "*/3",
            "retryPolicy": {"maximumRetryAttempts": 1},
            "deadLetterQueue": {"queueName": queue},
            "suspendAfterFailures": 2,
        },
    )

    def suspended() -> dict[str, Any] | None:
        job: dict[str, Any] = api.get("/jobs/doomed").json()
        return job if job.get("suspended") else None

    job = eventually(suspended, timeout=40, what=stack.where())
    assert job["suspendedReason"].startswith("suspended after 2 consecutive failed runs"), job
    time.sleep(1.5)
    runs = runs_of(api, "doomed")
    failed = [r for r in runs if r["status"] == "failed"]
    assert len(failed) >= 2 and all(r["status"] in ("failed", "retrying") for r in runs), runs
    assert all(len(r["attempts"]) == 2 and r["attempts"][0]["failures"] for r in failed)
    assert not stack.tasks("doomed") and not stack.tasks("doomed", "STOPPED")

    messages: list[dict[str, Any]] = []

    def received() -> list[dict[str, Any]] | None:
        for message in stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            messages.append(orjson.loads(message["Body"]))
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return messages if len(messages) >= len(failed) else None

    eventually(received, timeout=20, what="the dead-letter messages")
    time.sleep(3)  # suspended: no more fires, and no more messages than exhausted runs
    received()
    assert len(runs_of(api, "doomed")) == len(runs)
    ids = sorted(run_id("doomed", at(r["scheduledFor"])) for r in failed)
    assert sorted(m["runId"] for m in messages) == ids
    assert all(m["jobId"] == "doomed" and len(m["attempts"]) == 2 for m in messages)
    assert all(m["runTaskRequest"]["taskDefinition"] == "no-such-task" for m in messages)


# --- backfill: paced, capped, not repeated -------------------------------------------------


def test_backfill_is_paced_at_the_launch_rate_capped_and_not_repeated(
    stack: Stack, api: httpx.Client
) -> None:
    create(api, {"id": "every-second", "schedule": "*", "suspended": True})
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    window = {"start": (end - timedelta(seconds=11)).isoformat(), "end": end.isoformat()}
    reply = api.post("/jobs/every-second/backfill", json=window)
    assert reply.status_code == 202 and reply.json()["requested"] == 12, reply.text

    def launched() -> list[dict[str, Any]] | None:
        runs = runs_of(api, "every-second")
        return runs if len(runs) == 12 and all(r["status"] == "launched" for r in runs) else None

    runs = eventually(launched, timeout=30, what=stack.where())
    assert [at(r["scheduledFor"]) for r in runs] == [end - timedelta(seconds=11 - n) for n in range(12)]
    claimed = sorted(at(r["claimedAt"]) for r in runs)
    gaps = [(b - a).total_seconds() for a, b in zip(claimed, claimed[1:], strict=False)]
    assert min(gaps) >= 0.8 / PACE, gaps  # one slot per run (clock jitter aside)
    assert (claimed[-1] - claimed[0]).total_seconds() >= 11 * 0.9 / PACE
    # none lost, none doubled: one task per run in ECS
    arns = [task["taskId"] for run in runs for task in run["tasks"]]
    assert len(arns) == len(set(arns)) == 12
    assert sorted(stack.tasks("every-second")) == sorted(arns)

    again = api.post("/jobs/every-second/backfill", json=window).json()
    assert (again["requested"], again["existing"]) == (0, 12)
    too_long = {"start": (end - timedelta(seconds=MAX_BACKFILL)).isoformat(), "end": end.isoformat()}
    refused = api.post("/jobs/every-second/backfill", json=too_long)
    assert refused.status_code == 400 and "max_backfill_runs" in refused.text and "end" in refused.text
    time.sleep(1)
    assert len(runs_of(api, "every-second")) == 12 and len(stack.tasks("every-second")) == 12


# --- an outage: startingDeadlineSeconds, catchUpPolicy all -------------------------------


def test_after_an_outage_a_late_fire_is_missed_and_catch_up_all_runs_each_missed_fire(
    stack: Stack, api: httpx.Client
) -> None:
    """scheduld stops while both jobs have a fire due, and starts again a few seconds later.
    ``late`` (startingDeadlineSeconds 1) records the fire it missed as ``missed`` and launches
    nothing for it; ``every-two`` (catchUpPolicy all) gets one run per missed fire, paced."""
    now = datetime.now(UTC)
    first = (now.second + 5) % 60  # time for the job to reach scheduld
    second = (first + 8) % 60  # then nothing for ≥ 44 s
    create(api, {"id": "late", "schedule": f"{first},{second}", "startingDeadlineSeconds": 1})
    create(api, {"id": "every-two", "schedule": "*/2", "catchUpPolicy": "all", "overlapPolicy": "allow"})

    def launched(job_id: str) -> dict[str, Any] | None:
        return next((r for r in runs_of(api, job_id) if r["status"] == "launched"), None)

    before = eventually(lambda: launched("late"), timeout=20, what=stack.where())
    assert at(before["scheduledFor"]).second == first
    assert stack.stop("scheduld") == 0
    last_before = at(runs_of(api, "every-two")[-1]["scheduledFor"])
    due = at(before["scheduledFor"]) + timedelta(seconds=8)
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 2)  # its fire passed, unseen
    stack.start("scheduld")

    def missed() -> dict[str, Any] | None:
        return next((r for r in runs_of(api, "late") if at(r["scheduledFor"]) == due), None)

    run = eventually(missed, timeout=30, what=stack.where())
    assert run["status"] == "missed" and not run.get("tasks") and "startingDeadlineSeconds" in run["error"]
    assert len(stack.tasks("late")) == 1  # the fire before the outage only

    def caught_up() -> list[dict[str, Any]] | None:
        runs = [r for r in runs_of(api, "every-two") if at(r["scheduledFor"]) > last_before]
        restarted = [r for r in runs if r.get("trigger") is None]
        if not restarted or any(r["status"] != "launched" for r in runs):
            return None
        return runs if at(restarted[0]["scheduledFor"]) - last_before > timedelta(seconds=6) else None

    after = eventually(caught_up, timeout=30, what=stack.where())
    suspend(api, "late", "every-two")
    runs = [r for r in runs_of(api, "every-two") if at(r["scheduledFor"]) > last_before]
    times = [at(r["scheduledFor"]) for r in runs]
    # every fire time of the outage has exactly one run: none lost, none doubled
    assert times == [last_before + timedelta(seconds=2 * (n + 1)) for n in range(len(times))], times
    restarted = next(r for r in after if r.get("trigger") is None)
    caught = [r for r in runs if at(r["scheduledFor"]) < at(restarted["scheduledFor"])]
    assert len(caught) >= 2 and all(r["trigger"] == "schedule" for r in caught), runs
    claimed = sorted(at(r["claimedAt"]) for r in caught)
    assert all((b - a).total_seconds() >= 0.8 / PACE for a, b in zip(claimed, claimed[1:], strict=False))
    arns = [task["taskId"] for run in runs for task in run["tasks"]]
    assert len(arns) == len(set(arns)) == len(runs)
