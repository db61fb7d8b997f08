"""webapi and scheduld as two separate OS processes, sharing one SQLite file and one moto
server (SQS + ECS over HTTP): a job created through the API fires every second, its tasks
appear in ECS and its status in GET /jobs/{id}; suspending stops launches, resuming restarts
them and deleting removes the job from the schedule."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import aws_client
from tests.e2e.conftest import eventually, tail
from tests.scheduld.conftest import create_cluster
from tests.servers import MotoServer, component_env, free_port, stop_process

pytestmark = pytest.mark.slow


class Reaper:
    """Ends emulated tasks soon after they start (moto's would run forever), counting launches."""

    def __init__(self, ecs: Any, cluster: str) -> None:
        self.ecs, self.cluster = ecs, cluster
        self.launched: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Reaper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for arn in self.ecs.list_tasks(cluster=self.cluster)["taskArns"]:
                self.launched.add(arn)
                self.ecs.stop_task(cluster=self.cluster, task=arn, reason="done")

    def count(self) -> int:
        arns = self.ecs.list_tasks(cluster=self.cluster)["taskArns"]
        arns += self.ecs.list_tasks(cluster=self.cluster, desiredStatus="STOPPED")["taskArns"]
        return len(set(arns) | self.launched)


@pytest.fixture
def processes(
    moto: MotoServer, tmp_path: Path, unique_name: str, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    """Both processes; indirect parametrisation may add environment variables."""
    cluster = f"{unique_name}-cluster"
    ecs = aws_client(moto, "ecs")
    create_cluster(moto, cluster)
    port = free_port()
    env = component_env(
        moto=moto,
        sqlite_path=tmp_path / "jobs.db",
        extra={
            "WEBAPI__PORT": str(port),
            "ECS__CLUSTER": cluster,
            "SQS__QUEUE_NAME": f"{unique_name}-ops",
            "SQS__DEAD_LETTER_QUEUE_NAME": f"{unique_name}-dlq",
            **getattr(request, "param", {}),
        },
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("webapi", "scheduld")}
    started = []
    for name, log in logs.items():
        with log.open("wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ecs_scheduler"],
                    env={**env, "COMPONENT_NAME": name},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        sqs = aws_client(moto, "sqs")
        yield {"url": f"http://127.0.0.1:{port}", "ecs": ecs, "sqs": sqs, "cluster": cluster, "logs": logs}
    finally:
        codes = [stop_process(process, grace=15) for process in started]
        assert codes == [0, 0], {name: tail(log) for name, log in logs.items()}


def test_job_fires_through_two_processes(processes: dict[str, Any]) -> None:
    logs = processes["logs"]
    with (
        httpx.Client(base_url=processes["url"], timeout=10) as client,
        Reaper(processes["ecs"], processes["cluster"]) as reaper,
    ):
        eventually(lambda: _answers(client), timeout=60, what=f"webapi\n{tail(logs['webapi'])}")
        body = {
            "taskDefinition": "sleeper-task",
            "id": "every-second",
            "schedule": "*",
            "launchType": "FARGATE",
        }
        assert client.post("/jobs", json=body).status_code == 201

        job = eventually(
            lambda: _with_status(client),
            timeout=30,
            what=f"lastRun/lastRunTasks/estimatedNextRun\n{tail(logs['scheduld'])}",
        )
        assert len(job["lastRunTasks"]) == 1
        assert job["estimatedNextRun"] > job["lastRun"]
        eventually(lambda: reaper.count() >= 3 or None, timeout=20, what="repeated launches")

        assert client.put("/jobs/every-second", json={"suspended": True}).status_code == 200
        time.sleep(1.5)  # an event in flight may still launch once
        suspended_at = reaper.count()
        time.sleep(3)
        assert reaper.count() == suspended_at, "a suspended job launched tasks"

        assert client.put("/jobs/every-second", json={"suspended": False}).status_code == 200
        eventually(lambda: reaper.count() >= suspended_at + 2 or None, timeout=20, what="resumed launches")

        assert client.delete("/jobs/every-second").status_code == 200
        time.sleep(1.5)
        deleted_at = reaper.count()
        time.sleep(3)
        assert reaper.count() == deleted_at, "a deleted job launched tasks"


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/").status_code == 200
    except httpx.HTTPError:
        return False


def _with_status(client: httpx.Client) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get("/jobs/every-second").json()
    wanted = ("lastRun", "lastRunTasks", "estimatedNextRun")
    return job if all(job.get(key) for key in wanted) else None
