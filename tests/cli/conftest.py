"""The CLI under test: the installed ``ecss`` entry point run as a process, against the real
webapi served over HTTP on 127.0.0.1 (SQLite store in tmp_path, SQS bus on the moto server)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.bus.sqs import SQSEventBus
from common.config import Settings, SQLiteSettings, SQSSettings, StoreSettings
from common.models import JobStatus, LaunchedTask, LaunchFailure, Run
from common.store.base import JobStore
from tests.servers import ThreadedUvicorn
from webapi import create_app

ECSS = Path(sys.executable).with_name("ecss")


@pytest.fixture
def api_server(
    tmp_path: Path, sqs_settings: SQSSettings, sqs_client: Any, sqlite_store: JobStore
) -> Iterator[str]:
    settings = Settings(
        store=StoreSettings(sqlite=SQLiteSettings(path=tmp_path / "api.db")), sqs=sqs_settings
    )
    bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    with ThreadedUvicorn(create_app(settings, store=sqlite_store, bus=bus)) as server:
        yield server.url


@pytest.fixture
def http(api_server: str) -> Iterator[httpx.Client]:
    """A plain HTTP client of the same server, to check what the CLI did."""
    with httpx.Client(base_url=api_server, timeout=30) as client:
        yield client


Ecss = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ecss(api_server: str, tmp_path: Path) -> Ecss:
    """Run ``ecss ARGS...`` as a process pointed at the test server through ECSS_URL."""
    if not ECSS.exists():
        pytest.fail(f"{ECSS} is missing: the package's console script is not installed (make install)")

    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {key: value for key, value in os.environ.items() if not key.startswith("ECSS_")}
        environment.update({"ECSS_URL": api_server, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
        return subprocess.run(
            [str(ECSS), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=60,
        )

    return run


def record_fire(
    store: JobStore,
    job_id: str,
    scheduled_for: datetime,
    *,
    tasks: list[str],
    failures: list[LaunchFailure],
    expected: int,
) -> None:
    """Store one finished fire as scheduld's firing does (claim under the lease, record_run)."""
    lease = store.acquire_lease("scheduler", holder="test", ttl=30)
    assert lease is not None
    run = Run(job_id=job_id, scheduled_for=scheduled_for, replica="test", token=lease.token)
    assert store.claim_run(run, lease)
    launched = [LaunchedTask(task_id=task) for task in tasks]
    status = "launched" if not failures else "partially_launched" if tasks else "failed"
    finished = run.model_copy(
        update={
            "status": status,
            "expected": expected,
            "started": len(tasks),
            "tasks": launched,
            "failures": failures,
            "finished_at": datetime.now(UTC),
        }
    )
    job_status = JobStatus(
        last_run=scheduled_for, last_run_tasks=launched, last_run_failures=failures or None
    )
    store.record_run(finished, job_status, keep=100)
    store.release_lease(lease)
