"""scheduld as its own OS process (``python -m ecs_scheduler``, COMPONENT_NAME=scheduld) against
the moto server (SQS + ECS over HTTP) and a SQLite file: a job written to the store and
announced on the ops queue fires, its tasks appear in ECS under the job's startedBy, its status
is written back, and SIGTERM ends the process cleanly with exit code 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.bus.sqs import SQSEventBus
from common.config import SQLiteSettings, SQSSettings
from common.models import ChangeEvent
from common.store.sqlite import SQLiteJobStore
from scheduld.executor import started_by
from tests.e2e.conftest import eventually, tail
from tests.scheduld.conftest import job
from tests.servers import MotoServer, component_env


@pytest.fixture
def job_store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    instance = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db"))
    yield instance
    instance.close()


def test_scheduld_process_fires_and_stops_cleanly_on_sigterm(
    moto: MotoServer,
    tmp_path: Path,
    job_store: SQLiteJobStore,
    cluster: str,
    sqs_settings: SQSSettings,
    sqs_client: Any,
    ecs_client: Any,
) -> None:
    log = tmp_path / "scheduld.log"
    env = component_env(
        moto=moto,
        sqlite_path=tmp_path / "jobs.db",
        extra={
            "COMPONENT_NAME": "scheduld",
            "ECS__CLUSTER": cluster,
            "SQS__QUEUE_NAME": sqs_settings.queue_name,
            "SQS__DEAD_LETTER_QUEUE_NAME": sqs_settings.dead_letter_queue_name,
        },
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        eventually(lambda: "leading:" in log.read_text(), timeout=30, what=f"leadership\n{tail(log)}")
        # every 3 s, 2 tasks: the first fire starts 2, later ones see them running and start none
        job_store.create_job(job("proc-job", schedule="*/3", taskCount=2))
        bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
        try:
            bus.publish(ChangeEvent(op="add", job_id="proc-job"))
        finally:
            bus.close()

        marker = started_by("ecs-scheduler", "proc-job")
        arns = eventually(
            lambda: ecs_client.list_tasks(cluster=cluster, startedBy=marker)["taskArns"],
            timeout=15,
            what=f"tasks in ECS\n{tail(log)}",
        )
        stored = eventually(
            lambda: (j := job_store.get_job("proc-job")).last_run_tasks and j,
            timeout=10,
            interval=0.1,
            what=f"lastRunTasks\n{tail(log)}",
        )
        assert {t.task_id for t in stored.last_run_tasks or []} == set(arns) and len(arns) == 2
        assert stored.last_run is not None and stored.estimated_next_run is not None
        assert stored.estimated_next_run > stored.last_run
        first_run = stored.last_run
        eventually(
            lambda: (job_store.get_job("proc-job").last_run or first_run) > first_run,
            timeout=10,
            what=f"a second fire\n{tail(log)}",
        )
        assert len(ecs_client.list_tasks(cluster=cluster, startedBy=marker)["taskArns"]) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    elapsed = time.monotonic() - signalled
    assert code == 0, tail(log)
    assert elapsed < 8, f"took {elapsed:.1f} s to stop\n{tail(log)}"
    text = log.read_text()
    assert "received SIGTERM" in text and "scheduld stopped" in text
    assert "Traceback" not in text, tail(log)
