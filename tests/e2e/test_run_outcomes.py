"""How runs ended, through the real processes.

- ``make run``'s stack (python -m ecs_scheduler.local): a job with ``EXIT_CODE=3`` shows
  ``failed`` with exit code 3 and its duration in ``GET /jobs/{id}/runs``, a plain job
  ``succeeded``, and both runs' documents arrive on the configured notifications queue. The
  ends travel as task state change events: emulator reaper → moto EventBridge rule → SQS
  events queue → scheduld.
- Failover while a run is in flight: the emulator, and two scheduld processes on one store;
  the leader is killed (SIGKILL) after launching a task and before it ended; the new leader
  picks the run up from the run log and records its end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import pytest

from common.config import SQLiteSettings
from common.models import Job, Run
from common.store.sqlite import SQLiteJobStore
from tests.e2e.conftest import answers, clean_env, eventually, start_local_stack, tail
from tests.servers import ROOT, free_port, stop_process, wait_for_http

pytestmark = pytest.mark.slow

NOTIFICATIONS = "ecs-scheduler-notifications"


def _aws(port: int, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_make_run_shows_a_failing_job_failed_with_exit_code_3_and_notifies(tmp_path: Path) -> None:
    # runs can then end only by the events the emulator's EventBridge rule forwards
    # (config_local.yaml's ecs.tasks_events_queue): the sweep is 10 minutes away
    stack = start_local_stack(tmp_path, TRACKING__SWEEP_INTERVAL_SECONDS="600")
    log_path, aws_port = stack.log, stack.aws_port
    try:
        with httpx.Client(base_url=stack.api, timeout=10) as client:
            eventually(lambda: answers(client), timeout=90, what=f"webapi\n{tail(log_path)}")
            for job_id, environment in (("exit-three", {"EXIT_CODE": "3"}), ("exit-zero", {})):
                body = {
                    "taskDefinition": "sleeper-task",
                    "id": job_id,
                    "schedule": "*/2",
                    "overrides": [
                        {
                            "containerName": "sleeper-container",
                            "environment": {"SLEEP_SECONDS": "1", **environment},
                        }
                    ],
                }
                assert client.post("/jobs", json=body).status_code == 201
            failed = eventually(
                lambda: _ended_run(client, "exit-three"),
                timeout=60,
                what=f"exit-three's end\n{tail(log_path)}",
            )
            succeeded = eventually(
                lambda: _ended_run(client, "exit-zero"), timeout=30, what=f"exit-zero's end\n{tail(log_path)}"
            )
            job = client.get("/jobs/exit-three").json()
            for job_id in ("exit-three", "exit-zero"):  # no more fires while the test reads
                client.put(f"/jobs/{job_id}", json={"suspended": True})
        assert failed["status"] == "failed"
        (task,) = failed["tasks"]
        assert task["stopCode"] == "EssentialContainerExited"
        assert [c["exitCode"] for c in task["containers"]] == [3]
        assert task["durationSeconds"] >= 0.5 and failed["durationSeconds"] >= 0.5
        assert task["containers"][0]["logUrl"].startswith(
            "https://us-east-1.console.aws.amazon.com/cloudwatch/"
        )
        assert job["lastRunStatus"] == "failed" and job["consecutiveFailures"] >= 1 and "lastFailure" in job
        assert succeeded["status"] == "succeeded"
        assert [c["exitCode"] for c in succeeded["tasks"][0]["containers"]] == [0]

        sqs = _aws(aws_port, "sqs")
        url = sqs.get_queue_url(QueueName=NOTIFICATIONS)["QueueUrl"]
        documents = eventually(
            lambda: _documents(sqs, url, {"exit-three", "exit-zero"}), timeout=20, what="notifications"
        )
        statuses = {(d["jobId"], d["status"]) for d in documents}
        assert {("exit-three", "failed"), ("exit-zero", "succeeded")} <= statuses
        three = next(d for d in documents if d["jobId"] == "exit-three")
        assert three["run"]["tasks"][0]["containers"][0]["exitCode"] == 3
    finally:
        os.killpg(stack.process.pid, signal.SIGINT)
        try:
            stack.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            raise


def _ended_run(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    runs = client.get(f"/jobs/{job_id}/runs", params={"count": 50}).json()["runs"]
    return next((run for run in runs if run["status"] in ("succeeded", "failed", "timedOut")), None)


_seen: list[dict[str, Any]] = []


def _documents(sqs: Any, url: str, wanted: set[str]) -> list[dict[str, Any]] | None:
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    ):
        _seen.append(orjson.loads(message["Body"]))
    return list(_seen) if wanted <= {d["jobId"] for d in _seen} else None


# --- failover ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """``python -m ecs_scheduler.local emulator`` (moto, seeded, with its task reaper), shared
    by this module's tests: each has its own store, job runs and queues."""
    port = free_port()
    env = clean_env() | {
        "LOCAL_AWS_PORT": str(port),
        "RUN_ENV": "test",
        "ECS__CLUSTER": "failover-cluster",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path_factory.mktemp("aws") / "aws.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler.local", "emulator"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", process=process)
        eventually(
            lambda: b"AWS emulator ready" in log_path.read_bytes(),
            timeout=60,
            what=f"seeding\n{tail(log_path)}",
        )
        yield port, env
    finally:
        stop_process(process)


def test_new_leader_keeps_tracking_runs_in_flight(
    emulator: tuple[int, dict[str, str]], tmp_path: Path
) -> None:
    port, aws_env = emulator
    db = tmp_path / "jobs.db"
    store = SQLiteJobStore(SQLiteSettings(path=db))
    store.create_job(
        Job.model_validate(
            {
                "id": "long",
                "taskDefinition": "sleeper-task",
                "schedule": "*",
                "overrides": [{"containerName": "sleeper-container", "environment": {"SLEEP_SECONDS": "6"}}],
            }
        )
    )
    env = aws_env | {
        "COMPONENT_NAME": "scheduld",
        "STORE__BACKEND": "sqlite",
        "STORE__SQLITE__PATH": str(db),
        "TRACKING__POLL_INTERVAL_SECONDS": "0.5",
    }
    logs = [tmp_path / f"scheduld-{i}.log" for i in range(2)]
    processes = []
    for path in logs:
        with path.open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ecs_scheduler"], cwd=ROOT, env=env, stdout=log, stderr=log
                )
            )
    try:
        first: Run = eventually(lambda: _launched(store), timeout=60, what=f"a launch\n{tail(logs[0])}")
        leader = next(
            p
            for p, path in zip(processes, logs, strict=True)
            if "leading:" in path.read_text(errors="replace")
        )
        assert store.open_runs()[0].run_id == first.run_id  # in flight when its tracker dies
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        killed_at = datetime.now(UTC)
        ended = eventually(
            lambda: _ended(store, first), timeout=60, what=f"the run's end\n{tail(logs[0])}\n{tail(logs[1])}"
        )
        assert ended.status == "succeeded"
        assert ended.ended_at is not None and ended.ended_at > killed_at
        assert [c.exit_code for c in ended.tasks[0].containers or []] == [0]
        survivor = next(p for p in processes if p is not leader)
        assert survivor.poll() is None
        ecs = _aws(port, "ecs")
        stopped = ecs.describe_tasks(cluster="failover-cluster", tasks=[first.tasks[0].task_id])["tasks"][0]
        assert stopped["lastStatus"] == "STOPPED"
    finally:
        for process in processes:
            stop_process(process)
        store.close()


def _launched(store: SQLiteJobStore, job_id: str = "long") -> Run | None:
    runs = [run for run in store.list_runs(job_id, count=50) if run.tasks]
    return runs[-1] if runs else None


def _ended(store: SQLiteJobStore, run: Run) -> Run | None:
    found = next((r for r in store.list_runs(run.job_id, count=100) if r.run_id == run.run_id), None)
    return found if found is not None and not found.in_flight else None


# --- events queue ------------------------------------------------------------------------


@pytest.mark.parametrize("events", ["fed", "missing"])
def test_events_queue_ends_runs_and_the_sweep_catches_what_events_missed(
    events: str, emulator: tuple[int, dict[str, str]], tmp_path: Path
) -> None:
    """scheduld with ``ecs.tasks_events_queue``: with events fed to the queue (as the README's
    EventBridge rule would) the run ends although the sweep is 10 minutes away; with none
    arriving, the sweep (every 2 s here) ends it."""
    port, aws_env = emulator
    sqs, ecs = _aws(port, "sqs"), _aws(port, "ecs")
    queue_url = sqs.create_queue(QueueName=f"task-events-{events}")["QueueUrl"]
    db = tmp_path / "jobs.db"
    store = SQLiteJobStore(SQLiteSettings(path=db))
    store.create_job(
        Job.model_validate(
            {
                "id": f"evented-{events}",
                "taskDefinition": "sleeper-task",
                "schedule": "*",
                "overrides": [
                    {
                        "containerName": "sleeper-container",
                        "environment": {"SLEEP_SECONDS": "1", "EXIT_CODE": "4"},
                    }
                ],
            }
        )
    )
    env = aws_env | {
        "COMPONENT_NAME": "scheduld",
        "STORE__BACKEND": "sqlite",
        "STORE__SQLITE__PATH": str(db),
        "ECS__TASKS_EVENTS_QUEUE": f"task-events-{events}",
        "TRACKING__SWEEP_INTERVAL_SECONDS": "600" if events == "fed" else "2",
    }
    log_path = tmp_path / "scheduld.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        first: Run = eventually(
            lambda: _launched(store, f"evented-{events}"), timeout=60, what=f"a launch\n{tail(log_path)}"
        )
        arn = first.tasks[0].task_id
        stopped = eventually(lambda: _stopped_task(ecs, arn), timeout=20, what="the emulator to end the task")
        if events == "fed":
            event = {
                "version": "0",
                "detail-type": "ECS Task State Change",
                "source": "aws.ecs",
                "resources": [arn],
                "detail": stopped,
            }
            sqs.send_message(QueueUrl=queue_url, MessageBody=orjson.dumps(event, default=str).decode())
        ended = eventually(lambda: _ended(store, first), timeout=30, what=f"the run's end\n{tail(log_path)}")
        assert ended.status == "failed"
        assert [c.exit_code for c in ended.tasks[0].containers or []] == [4]
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attributes == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }
    finally:
        stop_process(process)
        store.close()


def _stopped_task(ecs: Any, arn: str) -> dict[str, Any] | None:
    task: dict[str, Any] = ecs.describe_tasks(cluster="failover-cluster", tasks=[arn])["tasks"][0]
    return task if task["lastStatus"] == "STOPPED" else None
