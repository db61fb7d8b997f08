"""Exactly-once firing through failovers: 2 and 3 scheduld processes share one SQLite store
and one moto server (SQS); 200 jobs fire every second; the leader is killed with SIGKILL
several times, mid-fire. From the ECS side no (job, fire time) may be launched twice; from the
run history every second of the test is covered by exactly one run (a run may stand for
several seconds when missed fires were coalesced after a failover). In the mix: manual runs
requested while leaders die (each launched exactly once), a backfill whose runs are paced
(one a second) across the kills, so leaders die with some of them still waiting (each launched
exactly once), and a job whose every fire fails its first launch and is retried (never launched
twice, whatever the kills).

ECS here is ``IdempotentECS``, a recording endpoint that honours RunTask ``clientToken`` like
real ECS does (moto accepts the token but does not enforce it): a retried call with a used
token returns the first call's tasks instead of launching again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.config import SQLiteSettings
from common.models import Job, Run
from common.store.sqlite import SQLiteJobStore
from tests.e2e.conftest import eventually, tail
from tests.servers import AWSJSONEndpoint, MotoServer, component_env

pytestmark = pytest.mark.slow

JOBS = 200
KILLS = 3
FLAKY = "flaky"
MANUAL = "manual"
BACKFILLED = "backfilled"
BACKFILL_RUNS = 8


class IdempotentECS(AWSJSONEndpoint):
    def __init__(self) -> None:
        super().__init__()
        self.launches: dict[str, tuple[str, str, float]] = {}  # token → (job, scheduled, arrived)
        self.retries = 0
        self.failed: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if action != "RunTask":
            return 200, ({"taskArns": []} if action == "ListTasks" else {"tasks": [], "failures": []})
        tags = {tag["key"]: tag["value"] for tag in body.get("tags", [])}
        token = body["clientToken"]
        with self.lock:
            fire = (tags["ecs-scheduler:job-id"], tags["ecs-scheduler:scheduled-for"])
            if fire[0] == FLAKY and fire not in self.failed:  # the first try of each fire
                self.failed.add(fire)
                return 200, {"tasks": [], "failures": [{"reason": "RESOURCE:CPU"}]}
            if token in self.launches:
                self.retries += 1
            else:
                scheduled = tags["ecs-scheduler:scheduled-for"]
                self.launches[token] = (tags["ecs-scheduler:job-id"], scheduled, time.time())
        return 200, {"tasks": [{"taskArn": f"arn:aws:ecs:us-east-1:1:task/c/{token[:12]}"}], "failures": []}

    def arrivals_after(self, moment: float) -> int:
        with self.lock:
            return sum(1 for _, _, arrived in self.launches.values() if arrived > moment)


@pytest.fixture
def ecs() -> Iterator[IdempotentECS]:
    with IdempotentECS() as endpoint:
        yield endpoint


@pytest.mark.parametrize("replicas", [2, 3])
def test_leader_killed_repeatedly_fires_every_second_exactly_once(
    replicas: int,
    moto: MotoServer,
    ecs: IdempotentECS,
    tmp_path: Path,
    unique_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "jobs.db"
    store = SQLiteJobStore(SQLiteSettings(path=db))
    for n in range(JOBS):
        store.create_job(Job.model_validate({"id": f"job{n:03d}", "taskDefinition": "t", "schedule": "*"}))
    retried = {"maximumRetryAttempts": 20, "maximumEventAgeSeconds": 3600}
    store.create_job(
        Job.model_validate({"id": FLAKY, "taskDefinition": "t", "schedule": "*/2", "retryPolicy": retried})
    )
    store.create_job(
        Job.model_validate({"id": MANUAL, "taskDefinition": "t", "schedule": "at(2099-01-01T00:00:00)"})
    )
    store.create_job(
        Job.model_validate({"id": BACKFILLED, "taskDefinition": "t", "schedule": "at(2099-01-01T00:00:00)"})
    )
    requested: list[Run] = []
    env = component_env(
        moto=moto,
        sqlite_path=db,
        extra={
            "COMPONENT_NAME": "scheduld",
            "AWS_ENDPOINT_URL_ECS": ecs.url,
            "SCHEDULER__RECONCILE_INTERVAL_SECONDS": "60",
            "SQS__QUEUE_NAME": f"{unique_name}-ops",
            "SQS__DEAD_LETTER_QUEUE_NAME": f"{unique_name}-dlq",
            "LOG_LEVEL": "WARNING",
            "SCHEDULER__RETRY_BACKOFF_SECONDS": "0.2",
            "SCHEDULER__PENDING_POLL_SECONDS": "0.2",
            # IdempotentECS records launches and describes no task: tracking would only end
            # every run as MISSING here (it is tested in tests/e2e/test_run_outcomes.py)
            "TRACKING__ENABLED": "false",
        },
    )
    processes: list[subprocess.Popen[bytes]] = []

    def spawn() -> None:
        with (tmp_path / f"scheduld-{len(processes)}.log").open("wb") as log:
            command = [sys.executable, "-m", "ecs_scheduler"]
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))

    for _ in range(replicas):
        spawn()
    failovers: list[float] = []
    takeovers: list[float] = []  # SIGKILL → a standby holds the lease (at the default lifetime)
    try:
        eventually(lambda: ecs.arrivals_after(0) >= JOBS, timeout=60, what="the first leader to fire")
        started = datetime.now(UTC)
        hour_ago = started.replace(microsecond=0) - timedelta(hours=1)
        backfill = [  # as webapi's POST /jobs/{id}/backfill stores them
            Run(
                job_id=BACKFILLED,
                scheduled_for=hour_ago + timedelta(seconds=n),
                status="requested",
                replica="webapi",
                token=0,
                trigger="backfill",
            )
            for n in range(BACKFILL_RUNS)
        ]
        store.request_runs(backfill)
        for _ in range(KILLS):
            for _ in range(3):  # manual runs requested as webapi would, up to the kill
                requested += store.request_runs([_manual_run()])
                time.sleep(1)
            holder = _leader(store)
            leader = next(p for p in processes if f":{p.pid}:" in holder)
            leader.send_signal(signal.SIGKILL)  # mid-fire: 200 fires every second
            killed = time.time()
            leader.wait()
            spawn()  # keep the number of replicas
            eventually(
                lambda old=holder: _leader(store) != old,
                timeout=30,
                interval=0.05,
                what="a standby taking the lease",
            )
            takeovers.append(time.time() - killed)
            eventually(
                lambda since=killed + 0.5: ecs.arrivals_after(since) > 0,
                timeout=30,
                what="a new leader firing",
            )
            resumed = min(t for _, _, t in list(ecs.launches.values()) if t > killed + 0.5)
            failovers.append(resumed - killed)
        requested += store.request_runs([_manual_run()])
        time.sleep(3)
        ended = datetime.now(UTC) - timedelta(seconds=2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()  # reaped, or Popen's finaliser warns (warnings are errors here)
    logs = "\n".join(tail(tmp_path / f"scheduld-{n}.log", 20) for n in range(len(processes)))

    launches = Counter((job_id, scheduled) for job_id, scheduled, _ in ecs.launches.values())
    duplicates = sum(count - 1 for count in launches.values() if count > 1)
    checked = missed = 0
    double_covered = 0
    for n in range(JOBS):
        job_id = f"job{n:03d}"
        runs = store.list_runs(job_id, count=10_000)
        for second in _seconds(started, ended):
            covering = [r for r in runs if (r.coalesced_from or r.scheduled_for) <= second <= r.scheduled_for]
            checked += 1
            missed += not covering
            double_covered += len(covering) > 1
        for run in runs:
            if run.status == "launched":
                assert (job_id, run.scheduled_for.isoformat()) in launches, (job_id, run)
    manual = {run.run_id: run for run in store.list_runs(MANUAL, count=100)}
    assert sorted(manual) == sorted(run.run_id for run in requested)
    assert all(run.status == "launched" for run in manual.values()), list(manual.values())
    assert all(launches[(MANUAL, run.scheduled_for.isoformat())] == 1 for run in manual.values())
    backfilled = store.list_runs(BACKFILLED, count=100)
    assert sorted(run.run_id for run in backfilled) == sorted(run.run_id for run in backfill)
    assert all(run.status == "launched" for run in backfilled), backfilled
    assert all(launches[(BACKFILLED, run.scheduled_for.isoformat())] == 1 for run in backfilled)
    flaky = store.list_runs(FLAKY, count=10_000)
    retried_ok = [run for run in flaky if run.status == "launched" and run.attempts]
    assert len(retried_ok) >= 3, flaky[:5]
    store.close()
    with capsys.disabled():  # the figures belong in `make test`'s output
        sys.stdout.write(
            f"\nfailover[{replicas} replicas]: fires checked {checked}, duplicates {duplicates}, "
            f"missed {missed}, seconds covered twice {double_covered}, deduplicated RunTask retries "
            f"{ecs.retries}, manual runs {len(manual)}, backfill runs {len(backfilled)}, "
            f"fires launched on a retry {len(retried_ok)}, "
            f"lease takeovers {', '.join(f'{t:.2f} s' for t in takeovers)}, "
            f"firing resumed after {', '.join(f'{f:.1f} s' for f in failovers)}\n"
        )
    assert duplicates == 0, logs
    assert missed == 0, logs
    assert double_covered == 0, logs
    assert len(failovers) == KILLS
    assert max(takeovers) < 3, takeovers


def _manual_run() -> Run:
    now = datetime.now(UTC)
    return Run(
        job_id=MANUAL, scheduled_for=now, status="requested", replica="webapi", token=0, trigger="manual"
    )


def _leader(store: SQLiteJobStore) -> str:
    row = store._db().execute("SELECT holder FROM leases WHERE name = 'scheduld'").fetchone()  # noqa: SLF001
    assert row is not None
    return str(row[0])


def _seconds(start: datetime, end: datetime) -> Iterator[datetime]:
    moment = start.replace(microsecond=0) + timedelta(seconds=1)
    while moment <= end:
        yield moment
        moment += timedelta(seconds=1)
