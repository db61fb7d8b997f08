"""`make run`'s entry point (python -m ecs_scheduler.local) brings the whole stack up: the AWS
emulator, webapi and scheduld as separate processes. The usage guide's flows work against it,
a job firing every second launches tasks in the emulator, and SIGINT (Ctrl-C) stops them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.conftest import answers, eventually, session_processes, start_local_stack, tail

pytestmark = pytest.mark.slow


def test_make_run_stack(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path)
    log_path, aws_port, api = stack.log, stack.aws_port, stack.api
    try:
        with httpx.Client(base_url=api, timeout=10) as client:
            eventually(lambda: answers(client), timeout=90, what=f"webapi on {api}\n{tail(log_path)}")
            _replay_usage_guide(client)
            _see_tasks_launched(client, aws_port, log_path)
    finally:
        os.killpg(stack.process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        try:
            code = stack.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            raise
    assert eventually(
        lambda: not session_processes(stack.process.pid) or None, timeout=15, what="all processes to exit"
    )
    output = log_path.read_text(errors="replace")
    for name in ("aws", "webapi", "scheduld"):
        assert re.search(rf"^\S* ?{name}\s*\|", output, flags=re.MULTILINE), f"no prefixed {name} log"
    assert code == 0, tail(log_path)  # Ctrl-C is a clean stop: no "make: *** Error 130"


def _post(client: httpx.Client, body: str) -> httpx.Response:
    return client.post("/jobs", content=body, headers={"Content-Type": "application/json"})


def _replay_usage_guide(client: httpx.Client) -> None:
    assert _post(client, '{"taskDefinition": "sleeper-task", "schedule": "25 */5"}').status_code == 201
    put = client.put("/jobs/sleeper-task", json={"schedule": "? */5"})
    assert put.status_code == 200
    assert re.fullmatch(r"\d+ \*/5", client.get("/jobs/sleeper-task").json()["schedule"])
    assert _post(client, '{"taskDefinition": "sleeper-task", "schedule": "0"}').status_code == 409
    long_sleep = (
        '{"taskDefinition": "sleeper-task", "id": "long-sleep-task", "schedule": "? */7", '
        '"overrides": [{"containerName": "sleeper-container", "environment": {"SLEEP_SECONDS": "10"}}]}'
    )
    assert _post(client, long_sleep).status_code == 201
    trigger = (
        '{"taskDefinition": "consumer-task", "schedule": "? */3", "trigger": '
        '{"type": "sqs", "queueName": "consumer-task-queue", "messagesPerTask": 100}}'
    )
    assert _post(client, trigger).status_code == 201
    assert client.put("/jobs/consumer-task", json={"maxCount": 10}).status_code == 200
    assert client.get("/jobs/consumer-task").json()["maxCount"] == 10
    listed = client.get("/jobs").json()["jobs"]
    assert [job["id"] for job in listed] == ["consumer-task", "long-sleep-task", "sleeper-task"]


def _see_tasks_launched(client: httpx.Client, aws_port: int, log_path: Path) -> None:
    every_second = (
        '{"taskDefinition": "sleeper-task", "id": "every-second", "schedule": "*", "taskCount": 2, '
        '"overrides": [{"containerName": "sleeper-container", "environment": {"SLEEP_SECONDS": "1"}}]}'
    )
    assert _post(client, every_second).status_code == 201
    job = eventually(
        lambda: _launched(client),
        timeout=30,
        what=f"lastRunTasks on every-second\n{tail(log_path)}",
    )
    ecs: Any = boto3.client(
        "ecs",
        endpoint_url=f"http://127.0.0.1:{aws_port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    arns = [task["taskId"] for task in job["lastRunTasks"]]
    described = ecs.describe_tasks(cluster="ecs-scheduler-local", tasks=arns)["tasks"]
    assert {task["taskArn"] for task in described} == set(arns)
    assert all(task["taskDefinitionArn"].split("/")[-1].startswith("sleeper-task:") for task in described)
    # the emulator ends tasks after SLEEP_SECONDS, so later fires start new ones
    eventually(lambda: _stopped_count(ecs) >= 2 or None, timeout=20, what="emulated tasks to finish")


def _launched(client: httpx.Client) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get("/jobs/every-second").json()
    return job if job.get("lastRunTasks") and job.get("estimatedNextRun") else None


def _stopped_count(ecs: Any) -> int:
    return len(ecs.list_tasks(cluster="ecs-scheduler-local", desiredStatus="STOPPED")["taskArns"])
