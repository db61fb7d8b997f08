"""Firing precision and herds: scheduld as its own process, RunTask answered by FakeAWS.

precision  10 000 jobs loaded; each fires every 10 minutes at its own (minute, second), so
           about 17 fires/s spread over every second of the minute. Lag = RunTask arrival
           minus the scheduled second. Missed = scheduled in the window, never arrived.
herd       1 000 jobs on the same second: lag of each RunTask (its arrival minus that second),
           p50/p99 and the last (FakeAWS never throttles, so botocore's adaptive limiter stays
           off: our own overhead), and scheduld's CPU seconds (its launcher processes
           apart) from the second to the last RunTask, and to 1 s later (``settled``: the
           runs recorded too); the fake ECS endpoint's CPU over the first window.
herd_boto3 the same herd with the launchers' signed requests off (every RunTask through
           boto3): the figure the signed path (scheduld/signed_runtask.py) has to earn.
floors     1 000 RunTask calls in a row in a process of their own, through boto3 and as
           signed requests: wall and CPU per call.
           bench/retry_modes.py measures herds against a throttling endpoint.

FakeAWS runs as a process of its own (``FakeAWSProcess``): the arrival times it records do
not wait for another process's interpreter lock.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.fake_aws import Arrival, FakeAWSProcess
from bench.harness import MotoServer, component, moto_server, percentiles, preload, wait_for_line
from bench.proc import cpu_seconds

PRECISION_JOBS = 10_000
PRECISION_WINDOW = 60.0
HERD_JOBS = 1_000

TARGETS: list[tuple[str, str, str, float, str]] = [
    ("firing", "herd_unlimited.lag_ms_p99", "<=", 500, "herd p99 (1 000 jobs, no throttling)"),
]


def run(quick: bool = False) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with moto_server() as moto:
        fake = FakeAWSProcess().start()
        try:
            figures["precision"] = precision(
                moto,
                fake,
                jobs=2_000 if quick else PRECISION_JOBS,
                window=20.0 if quick else PRECISION_WINDOW,
            )
            herd_jobs = 200 if quick else HERD_JOBS
            figures["herd_unlimited"] = herd(moto, fake, jobs=herd_jobs)
            # the same herd with every RunTask through boto3: what the signed requests earn
            figures["herd_boto3"] = herd(
                moto, fake, jobs=herd_jobs, env={"SCHEDULER__SIGNED_RUN_TASK": "false"}
            )
            for way in ("boto3", "signed"):
                figures[f"{way}_floor"] = call_floor(fake, calls=herd_jobs, way=way)
        finally:
            fake.stop()
    return figures


def _scheduld_env(fake: FakeAWSProcess) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_ECS": fake.url,
        "ECS__CLUSTER": "bench",
        "SCHEDULER__RECONCILE_INTERVAL_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
    }


def precision(
    moto: MotoServer, fake: FakeAWSProcess, *, jobs: int, window: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``env`` adds settings for scheduld (an A/B of a setting on the same load)."""
    spec = {i: (i % 60, (i // 60) % 10) for i in range(jobs)}  # job → (second, minute offset)
    documents = [
        {"id": f"p{i:05d}", "taskDefinition": "bench-task", "schedule": f"{s} {m}-59/10"}
        for i, (s, m) in spec.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "jobs.db", Path(tmp) / "scheduld.log"
        preload(db, documents)
        extra = _scheduld_env(fake) | {"LOG_LEVEL": "INFO"} | (env or {})
        with component("scheduld", moto=moto, sqlite_path=db, log=log, extra=extra):
            wait_for_line(log, "jobs scheduled", timeout=120)
            time.sleep(2.0)  # let the estimate writer settle
            fake.take()
            start = time.time()
            time.sleep(window)
            end = time.time()
            time.sleep(3.0)  # fires scheduled before `end` may still arrive
            arrivals, _ = fake.take()
    lags: list[float] = []
    seen: set[tuple[str, int]] = set()
    for arrival in arrivals:
        index = int(arrival.job_id[1:])
        second, _ = spec[index]
        lag = (arrival.at - second) % 60.0
        scheduled = int(arrival.at - lag)
        if start <= scheduled < end:
            lags.append(lag * 1000)
            seen.add((arrival.job_id, scheduled))
    expected = {
        (f"p{i:05d}", t)
        for t in range(int(start) + 1, int(end))
        for i, (s, m) in spec.items()
        if t % 60 == s and (t // 60) % 10 == m
    }
    stats = percentiles(lags)
    return {
        "jobs": jobs,
        "window_s": round(end - start, 1),
        "fires": len(seen & expected),
        "missed": len(expected - seen),
        "lag_ms_p50": round(stats["p50"], 2),
        "lag_ms_p99": round(stats["p99"], 2),
        "lag_ms_max": round(stats["max"], 2),
    }


_FLOOR_SCRIPT = """
import os, sys, time
import botocore.session
from common.config import Settings
from scheduld.executor import ecs_client
from scheduld.signed_runtask import SignedRunTask
os.environ.update(AWS_ENDPOINT_URL_ECS=sys.argv[1], AWS_DEFAULT_REGION="us-east-1",
                  AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
session = botocore.session.get_session()
ecs = ecs_client(Settings(), session=session)
signed = SignedRunTask.for_client(ecs, session)
call = (lambda params: ecs.run_task(**params)) if sys.argv[3] == "boto3" else signed.send
params = {"cluster": "bench", "taskDefinition": "bench-task", "count": 1, "startedBy": "bench/x",
          "clientToken": "floor", "tags": [{"key": "ecs-scheduler:job-id", "value": "floor"}]}
call(params)
started, cpu = time.perf_counter(), time.process_time()
for _ in range(int(sys.argv[2])):
    assert "tasks" in call(params)
print(time.perf_counter() - started, time.process_time() - cpu)
"""


def call_floor(fake: FakeAWSProcess, *, calls: int, way: str) -> dict[str, Any]:
    """What RunTask calls cost here, one after another in a process of their own with nothing
    else to do: the floor under a herd, which needs one call per job (one job's tasks cannot
    share another job's call). ``way``: ``boto3`` (``ecs.run_task``) or ``signed`` (the
    launchers' signed request, scheduld/signed_runtask.py), built as a launcher builds them."""
    import subprocess
    import sys

    output = subprocess.run(
        [sys.executable, "-c", _FLOOR_SCRIPT, fake.url, str(calls), way],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    elapsed, cpu = (float(value) for value in output.strip().splitlines()[-1].split())
    fake.take()
    return {
        "calls": calls,
        "total_ms": round(elapsed * 1000, 1),
        "per_call_ms": round(elapsed * 1000 / calls, 3),
        "cpu_per_call_ms": round(cpu * 1000 / calls, 3),
    }


def herd(
    moto: MotoServer, fake: FakeAWSProcess, *, jobs: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``env`` adds settings for scheduld (an A/B of a setting on the same load)."""
    fire_at = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    schedule = f"{fire_at.second} {fire_at.minute} {fire_at.hour}"
    documents = [
        {"id": f"h{i:05d}", "taskDefinition": "bench-task", "schedule": schedule} for i in range(jobs)
    ]
    arrivals: list[Arrival] = []
    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "jobs.db", Path(tmp) / "scheduld.log"
        preload(db, documents)
        with component(
            "scheduld",
            moto=moto,
            sqlite_path=db,
            log=log,
            extra=_scheduld_env(fake) | {"LOG_LEVEL": "INFO"} | (env or {}),
        ) as process:
            wait_for_line(log, "jobs scheduled", timeout=60)
            fake.take()
            time.sleep(max(0.0, fire_at.timestamp() - 0.5 - time.time()))
            cpu_before = cpu_seconds(process.pid), cpu_seconds(process.pid, children=True)
            endpoint_before = cpu_seconds(fake.pid)
            deadline = fire_at.timestamp() + 10
            launched: set[str] = set()
            calls: Counter[str] = Counter()
            while time.time() < deadline and len(launched) < jobs:
                time.sleep(0.1)
                taken, counted = fake.take()
                arrivals += taken
                calls += counted
                launched.update(a.job_id for a in taken)
            cpu = (
                cpu_seconds(process.pid) - cpu_before[0],
                cpu_seconds(process.pid, children=True) - cpu_before[1],
            )
            endpoint = cpu_seconds(fake.pid) - endpoint_before
            time.sleep(1.0)  # the runs are recorded, and tracking sees the tasks
            settled = cpu_seconds(process.pid) - cpu_before[0]
    lags = [(a.at - fire_at.timestamp()) * 1000 for a in arrivals]
    stats = percentiles(lags)
    return {
        "jobs": jobs,
        "launched": len(launched),
        "first_runtask_ms": round(min(lags, default=0.0), 1),
        "lag_ms_p50": round(stats["p50"], 1),
        "lag_ms_p99": round(stats["p99"], 1),
        "last_runtask_ms": round(stats["max"], 1),
        "list_tasks_calls": calls["ListTasks"],
        "scheduld_cpu_s": round(cpu[0], 2),
        "scheduld_cpu_settled_s": round(settled, 2),
        "launchers_cpu_s": round(cpu[1], 2),
        "ecs_endpoint_cpu_s": round(endpoint, 2),
    }
