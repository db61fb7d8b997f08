"""RunTask from launcher processes (scheduld/launcher.py), through their real interface: the
pool's workers are real processes calling the moto server (or, where moto cannot tell, the
recording ECS endpoint) over HTTP; scheduld is run as its own process for what only a process
shows (its workers die with it, a killed worker is replaced)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.config import ECSSettings, SchedulerSettings, Settings, SQLiteSettings
from common.store.sqlite import SQLiteJobStore
from scheduld.executor import TaskLauncher, started_by
from scheduld.launcher import LaunchPool
from tests.e2e.conftest import eventually, session_processes, tail
from tests.scheduld.conftest import RecordingECS, job
from tests.servers import TEST_CREDENTIALS, MotoServer, component_env

FIRE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def pool_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A LaunchPool whose workers reach ``url`` (spawned workers read the environment)."""
    pools: list[LaunchPool] = []

    def make(url: str) -> LaunchPool:
        for name, value in {**TEST_CREDENTIALS, "AWS_ENDPOINT_URL_ECS": url}.items():
            monkeypatch.setenv(name, value)
        settings = Settings(scheduler=SchedulerSettings(launch_processes=2))
        pools.append(LaunchPool(settings).start())
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def test_launches_through_the_pool_and_reports_ecs_errors(
    pool_for: Any, moto: MotoServer, cluster: str, ecs_client: Any
) -> None:
    pool = pool_for(moto.url)
    launcher = TaskLauncher(ecs_client, ECSSettings(cluster=cluster), run_task=pool.run_task)
    result = launcher.launch(job("pooled", taskCount=3), 3, scheduled=FIRE)
    assert len(result.tasks) == 3 and result.failures == []
    listed = ecs_client.list_tasks(cluster=cluster, startedBy=started_by("ecs-scheduler", "pooled"))
    assert sorted(listed["taskArns"]) == sorted(task.task_id for task in result.tasks)

    with pytest.raises(ClientError) as raised:  # as boto3 raises it in scheduld's own process
        pool.run_task({"cluster": "no-such-cluster", "taskDefinition": "sleeper-task", "count": 1})
    assert raised.value.response["Error"]["Code"] == "ClusterNotFoundException"
    failed = TaskLauncher(ecs_client, ECSSettings(cluster="no-such-cluster"), run_task=pool.run_task)
    outcome = failed.launch(job("nowhere"), 1, scheduled=FIRE)
    assert outcome.tasks == [] and "ClusterNotFoundException" in (outcome.failures[0].detail or "")
    assert not outcome.uncertain


def test_a_worker_killed_mid_call_is_replaced_and_the_call_sent_again_with_its_token(
    pool_for: Any, recording_ecs: RecordingECS
) -> None:
    """Recording endpoint, not moto: moto ignores clientToken; what matters is that the call
    sent again carries the same token, so ECS answers it with the first call's tasks."""
    pool = pool_for(recording_ecs.url)
    launcher = TaskLauncher(recording_ecs.client(), ECSSettings(cluster="c"), run_task=pool.run_task)
    launcher.launch(job("warm"), 1, scheduled=FIRE)  # workers up
    recording_ecs.run_task_delay = 2.0
    outcome: dict[str, Any] = {}
    held = job("held")
    call = threading.Thread(target=lambda: outcome.update(result=launcher.launch(held, 1, scheduled=FIRE)))
    call.start()
    eventually(lambda: len(recording_ecs.run_task_calls()) == 2, timeout=10, what="the held RunTask")
    workers = multiprocessing.active_children()
    assert len(workers) >= 2
    for worker in workers:  # whichever holds the call
        os.kill(worker.pid or 0, signal.SIGKILL)
    recording_ecs.run_task_delay = 0.0
    call.join(timeout=30)
    result = outcome["result"]
    assert len(result.tasks) == 1 and result.failures == []
    sent = [body for body in recording_ecs.run_task_calls() if body["tags"][0]["value"] == "held"]
    assert len(sent) == 2 and sent[0]["clientToken"] == sent[1]["clientToken"]
    assert not {w.pid for w in workers} & {w.pid for w in multiprocessing.active_children()}
    assert len(launcher.launch(job("after"), 1, scheduled=FIRE).tasks) == 1  # the new workers serve


@pytest.mark.slow
def test_scheduld_replaces_a_dead_launcher_and_its_launchers_die_with_it(
    moto: MotoServer, tmp_path: Path, cluster: str, ecs_client: Any
) -> None:
    db = tmp_path / "jobs.db"
    store = SQLiteJobStore(SQLiteSettings(path=db))
    store.create_job(job("every-second", schedule="*", taskCount=1, overlapPolicy="allow"))
    log = tmp_path / "scheduld.log"
    env = component_env(
        moto=moto,
        sqlite_path=db,
        extra={"COMPONENT_NAME": "scheduld", "ECS__CLUSTER": cluster, "SCHEDULER__LAUNCH_PROCESSES": "2"},
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        marker = started_by("ecs-scheduler", "every-second")
        eventually(
            lambda: ecs_client.list_tasks(cluster=cluster, startedBy=marker)["taskArns"],
            timeout=30,
            what=f"a launch\n{tail(log)}",
        )
        workers = _launchers(process.pid)
        assert len(workers) == 2, tail(log)
        os.kill(workers[0], signal.SIGKILL)
        killed = time.time()
        eventually(lambda: "a launcher process died" in log.read_text(), timeout=30, what="the restart")
        eventually(
            lambda: [
                run
                for run in store.list_runs("every-second", count=5)
                if run.scheduled_for.timestamp() > killed + 1 and run.status == "launched"
            ],
            timeout=30,
            what="a launch after the restart",
        )
        assert len(_launchers(process.pid)) == 2
        os.kill(process.pid, signal.SIGKILL)  # no chance to stop its workers itself
        process.wait(timeout=10)
        eventually(
            lambda: not session_processes(process.pid) or None, timeout=15, what="the launchers to exit"
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        store.close()


def _launchers(pid: int) -> list[int]:
    """scheduld's launcher processes: its children running multiprocessing's spawn entry."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [
        child
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        and b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
