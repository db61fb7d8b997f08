"""The local emulator (`python -m ecs_scheduler.local emulator`, a process) honours RunTask's
clientToken as ECS does: a repeat returns the first call's tasks and launches nothing, a token
reused with other parameters is a ConflictException, another token launches again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ecs_scheduler.local.idempotency import ClientTokens, TokenConflictError
from tests.e2e.conftest import eventually
from tests.servers import ROOT, free_port, stop_process

CLUSTER = "tokens-cluster"


@pytest.fixture
def emulated_ecs() -> Iterator[Any]:
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECS__", "SQS__"))}
    env = {**inherited, "RUN_ENV": "test", "LOCAL_AWS_PORT": str(port), "ECS__CLUSTER": CLUSTER}
    process = subprocess.Popen(
        [sys.executable, "-m", "ecs_scheduler.local", "emulator"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ecs = boto3.client(
        "ecs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        eventually(lambda: _seeded(ecs), timeout=60, what="the emulator seeded")
        yield ecs
    finally:
        stop_process(process)


def _seeded(ecs: Any) -> bool:
    try:
        found = ecs.describe_clusters(clusters=[CLUSTER])["clusters"]
    except Exception:  # noqa: BLE001 - not listening yet
        return False
    return bool(found) and found[0].get("registeredContainerInstancesCount", 0) >= 2


def _run(ecs: Any, token: str, *, count: int = 2) -> list[str]:
    response = ecs.run_task(cluster=CLUSTER, taskDefinition="sleeper-task", count=count, clientToken=token)
    return sorted(task["taskArn"] for task in response["tasks"])


def _live(ecs: Any) -> int:
    return len(ecs.list_tasks(cluster=CLUSTER)["taskArns"])


def test_the_emulator_honours_run_task_client_tokens(emulated_ecs: Any) -> None:
    first = _run(emulated_ecs, "fire-1")
    assert len(first) == 2 and _live(emulated_ecs) == 2
    assert _run(emulated_ecs, "fire-1") == first  # a retry: same tasks, nothing launched
    assert _live(emulated_ecs) == 2
    with pytest.raises(ClientError) as conflict:
        _run(emulated_ecs, "fire-1", count=3)
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    assert _run(emulated_ecs, "fire-2") != first and _live(emulated_ecs) == 4
    plain = emulated_ecs.run_task(cluster=CLUSTER, taskDefinition="sleeper-task")  # no token: launches
    assert plain["tasks"] and _live(emulated_ecs) == 5


def test_a_token_expires_after_its_lifetime() -> None:
    now = [0.0]
    tokens = ClientTokens(ttl=10, clock=lambda: now[0])
    launches: list[int] = []

    def launch() -> int:
        launches.append(len(launches))
        return launches[-1]

    assert tokens.run_once(cluster="c", token="t", parameters={"count": 1}, launch=launch) == 0
    assert tokens.run_once(cluster="c", token="t", parameters={"count": 1}, launch=launch) == 0
    assert tokens.run_once(cluster="other", token="t", parameters={"count": 1}, launch=launch) == 1
    with pytest.raises(TokenConflictError):
        tokens.run_once(cluster="c", token="t", parameters={"count": 2}, launch=launch)
    now[0] = 11
    assert tokens.run_once(cluster="c", token="t", parameters={"count": 2}, launch=launch) == 2
