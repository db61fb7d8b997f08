"""The compose stack's emulator helpers, each as a process of its own against the moto server:
``python -m ecs_scheduler.local seed`` (the ``bootstrap`` service) seeds what the apps expect,
and again changes nothing; ``... reaper`` (the ``task-reaper`` service) stops each emulated task
once its SLEEP_SECONDS are up, leaves the others running, and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import aws_client
from tests.e2e.conftest import eventually, tail
from tests.servers import ROOT, MotoServer


def _env(moto: MotoServer, **settings: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECS__", "SQS__"))}
    return {**inherited, **moto.env, "AWS_REGION": "us-east-1", "RUN_ENV": "test", **settings}


def test_seed_creates_what_the_apps_expect_once(moto: MotoServer, unique_name: str) -> None:
    cluster, queue = f"{unique_name}-seeded", f"{unique_name}-ops"
    env = _env(moto, ECS__CLUSTER=cluster, SQS__QUEUE_NAME=queue, SQS__DEAD_LETTER_QUEUE_NAME=f"{queue}-dlq")
    ecs, sqs = aws_client(moto, "ecs"), aws_client(moto, "sqs")

    def seeded() -> tuple[int, int]:
        done = subprocess.run(
            [sys.executable, "-m", "ecs_scheduler.local", "seed"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        (found,) = ecs.describe_clusters(clusters=[cluster])["clusters"]
        revisions = len(ecs.list_task_definitions(familyPrefix="consumer-task")["taskDefinitionArns"])
        return int(found["registeredContainerInstancesCount"]), revisions

    first = seeded()
    assert first[0] == 2 and first[1] >= 1
    assert seeded() == first  # run again: no more instances, no new revisions
    queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    redrive = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert f"{queue}-dlq" in redrive["RedrivePolicy"]
    assert sqs.get_queue_url(QueueName="consumer-task-queue")["QueueUrl"]


def _run(ecs: Any, cluster: str, sleep_seconds: str) -> str:
    overrides = {
        "containerOverrides": [
            {"name": "sleeper", "environment": [{"name": "SLEEP_SECONDS", "value": sleep_seconds}]}
        ]
    }
    tasks = ecs.run_task(cluster=cluster, taskDefinition="sleeper", launchType="FARGATE", overrides=overrides)
    return str(tasks["tasks"][0]["taskArn"])


def test_reaper_stops_tasks_whose_sleep_is_over(moto: MotoServer, unique_name: str, tmp_path: Path) -> None:
    ecs = aws_client(moto, "ecs")
    cluster = f"{unique_name}-reaped"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="sleeper", containerDefinitions=[{"name": "sleeper", "image": "busybox", "memory": 64}]
    )
    short, long = _run(ecs, cluster, "0"), _run(ecs, cluster, "600")
    env = _env(moto, ECS__CLUSTER=cluster)
    log_path = tmp_path / "reaper.log"
    with log_path.open("wb") as log:
        reaper = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler.local", "reaper"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def status(arn: str) -> str:
            return str(ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["desiredStatus"])

        eventually(
            lambda: status(short) == "STOPPED" or None, timeout=20, what=f"reaped task\n{tail(log_path)}"
        )
        assert status(long) == "RUNNING"
    finally:
        reaper.send_signal(signal.SIGTERM)
        code = reaper.wait(timeout=15)
    assert code == 0, tail(log_path)
