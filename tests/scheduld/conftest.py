"""scheduld under test: real ECS and SQS on the moto server, a SQLite store in tmp_path.

``RecordingECS`` is a tiny HTTP endpoint speaking the ECS JSON protocol, used only where moto
cannot serve: RunTask with an awsvpc networkConfiguration crashes moto 5.2.5, and moto does
not enforce clientToken or throttle, so those are checked on what boto3 actually sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from common.config import ECSSettings, RetrySettings, SchedulerSettings, Settings, SQSSettings
from common.models import Job, Lease
from common.store.base import Store
from scheduld.executor import TaskLauncher
from scheduld.firing import Firing
from scheduld.triggers import TriggerRegistry, default_registry
from tests.conftest import aws_client
from tests.servers import AWSJSONEndpoint, MotoServer

TASK_FAMILY = "sleeper-task"
CONTAINER = "sleeper-container"


def create_cluster(moto: MotoServer, name: str) -> str:
    """An ECS cluster on ``moto`` where TASK_FAMILY is registered."""
    ecs = aws_client(moto, "ecs")
    ecs.create_cluster(clusterName=name)
    ecs.register_task_definition(
        family=TASK_FAMILY,
        networkMode="bridge",
        containerDefinitions=[{"name": CONTAINER, "image": "busybox", "memory": 64}],
    )
    return name


@pytest.fixture
def cluster(moto: MotoServer, unique_name: str) -> str:
    return create_cluster(moto, f"{unique_name}-cluster")


@pytest.fixture
def ecs_settings(cluster: str) -> ECSSettings:
    return ECSSettings(cluster=cluster)


@pytest.fixture
def launcher(ecs_client: Any, ecs_settings: ECSSettings) -> TaskLauncher:
    return TaskLauncher(ecs_client, ecs_settings)


@pytest.fixture
def triggers(sqs_client: Any) -> TriggerRegistry:
    return default_registry(sqs_client)


@pytest.fixture
def lease(sqlite_store: Store) -> Lease:
    held = sqlite_store.acquire_lease("scheduld", holder="test-replica", ttl=3600)
    assert held is not None
    return held


def make_firing(
    store: Store, launcher: TaskLauncher, triggers: TriggerRegistry, held: Lease, **kwargs: Any
) -> Firing:
    options: dict[str, Any] = {
        "next_fire_time": lambda job_id: None,
        "on_missing": lambda job_id: None,
        "lease": lambda: held,
        "replica": held.holder,
    }
    return Firing(store=store, launcher=launcher, triggers=triggers, **(options | kwargs))


@pytest.fixture
def firing(sqlite_store: Store, launcher: TaskLauncher, triggers: TriggerRegistry, lease: Lease) -> Firing:
    return make_firing(sqlite_store, launcher, triggers, lease)


@pytest.fixture
def daemon_settings(ecs_settings: ECSSettings, sqs_settings: SQSSettings) -> Settings:
    return Settings(
        ecs=ecs_settings,
        sqs=sqs_settings,
        scheduler=SchedulerSettings(reconcile_interval_seconds=1, shutdown_timeout_seconds=5),
        retry=RetrySettings(first_wait_seconds=0.05, max_wait_seconds=0.5),
    )


def job(job_id: str = "job", **fields: Any) -> Job:
    base = {"id": job_id, "taskDefinition": TASK_FAMILY, "schedule": "0 0 0", "launchType": "FARGATE"}
    return Job.model_validate(base | fields)


def running_tasks(ecs: Any, cluster: str) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


class RecordingECS(AWSJSONEndpoint):
    """Answers RunTask/ListTasks/DescribeTasks like ECS and records each request body."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.throttle_next = 0
        self.run_task_delay = 0.0  # seconds each RunTask answer takes (a launch under way)
        self.lock = threading.Lock()

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append((action, body))
            if action == "RunTask" and self.throttle_next > 0:
                self.throttle_next -= 1
                return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        if action == "RunTask":
            time.sleep(self.run_task_delay)
            tasks = [
                {"taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/c/{len(self.calls)}-{i}"}
                for i in range(body.get("count", 1))
            ]
            return 200, {"tasks": tasks, "failures": []}
        if action == "ListTasks":
            return 200, {"taskArns": []}
        if action == "DescribeTasks":
            return 200, {"tasks": [], "failures": []}
        return 400, {"__type": "InvalidParameterException", "message": f"unsupported {action}"}

    def run_task_calls(self) -> list[dict[str, Any]]:
        return [body for action, body in self.calls if action == "RunTask"]

    def client(self, max_attempts: int = 3) -> Any:
        return boto3.client(
            "ecs",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
        )


@pytest.fixture
def recording_ecs() -> Iterator[RecordingECS]:
    with RecordingECS() as endpoint:
        yield endpoint
