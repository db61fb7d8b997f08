"""Firing precision and herds: scheduld as its own process, RunTask answered by FakeAWS.

precision  10 000 jobs loaded; each fires every 10 minutes at its own (minute, second), so
           about 17 fires/s spread over every second of the minute. Lag = RunTask arrival
           minus the scheduled second. Missed = scheduled in the window, never arrived.
herd       1 000 jobs on the same second: time from that second to the last RunTask (FakeAWS
           never throttles, so botocore's adaptive limiter stays off: our own overhead).
           bench/retry_modes.py measures herds against a throttling endpoint.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.fake_aws import FakeAWS
from bench.harness import MotoServer, component, moto_server, percentiles, preload, wait_for_line

PRECISION_JOBS = 10_000
PRECISION_WINDOW = 60.0
HERD_JOBS = 1_000


def run(quick: bool = False) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with moto_server() as moto:
        fake = FakeAWS().start()
        try:
            figures["precision"] = precision(
                moto,
                fake,
                jobs=2_000 if quick else PRECISION_JOBS,
                window=20.0 if quick else PRECISION_WINDOW,
            )
            figures["herd_unlimited"] = herd(moto, fake, jobs=200 if quick else HERD_JOBS)
            figures["boto3_floor"] = boto3_floor(fake, calls=200 if quick else HERD_JOBS)
        finally:
            fake.stop()
    return figures


def _scheduld_env(fake: FakeAWS) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_ECS": fake.url,
        "ECS__CLUSTER": "bench",
        "SCHEDULER__RECONCILE_INTERVAL_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
    }


def precision(moto: MotoServer, fake: FakeAWS, *, jobs: int, window: float) -> dict[str, Any]:
    spec = {i: (i % 60, (i // 60) % 10) for i in range(jobs)}  # job → (second, minute offset)
    documents = [
        {"id": f"p{i:05d}", "taskDefinition": "bench-task", "schedule": f"{s} {m}-59/10"}
        for i, (s, m) in spec.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "jobs.db", Path(tmp) / "scheduld.log"
        preload(db, documents)
        env = _scheduld_env(fake) | {"LOG_LEVEL": "INFO"}
        with component("scheduld", moto=moto, sqlite_path=db, log=log, extra=env):
            wait_for_line(log, "jobs scheduled", timeout=120)
            time.sleep(2.0)  # let the estimate writer settle
            fake.take()
            start = time.time()
            time.sleep(window)
            end = time.time()
            time.sleep(3.0)  # fires scheduled before `end` may still arrive
            arrivals = fake.take()
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
import sys, time
from common import aws
ecs = aws.client("ecs", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x")
params = {"cluster": "bench", "taskDefinition": "bench-task", "count": 1, "startedBy": "bench/x",
          "tags": [{"key": "ecs-scheduler:job-id", "value": "floor"}]}
ecs.run_task(**params)
started = time.perf_counter()
for _ in range(int(sys.argv[2])):
    ecs.run_task(**params)
print(time.perf_counter() - started)
"""


def boto3_floor(fake: FakeAWS, *, calls: int) -> dict[str, Any]:
    """What boto3 RunTask calls cost here, one after another in a process of their own with
    nothing else to do: the floor under a herd, which needs one call per job (one job's tasks
    cannot share another job's call) and runs them under one interpreter lock."""
    import subprocess
    import sys

    output = subprocess.run(
        [sys.executable, "-c", _FLOOR_SCRIPT, fake.url, str(calls)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    elapsed = float(output.strip().splitlines()[-1])
    fake.take()
    return {
        "calls": calls,
        "total_ms": round(elapsed * 1000, 1),
        "per_call_ms": round(elapsed * 1000 / calls, 3),
    }


def herd(moto: MotoServer, fake: FakeAWS, *, jobs: int) -> dict[str, Any]:
    fire_at = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    schedule = f"{fire_at.second} {fire_at.minute} {fire_at.hour}"
    documents = [
        {"id": f"h{i:05d}", "taskDefinition": "bench-task", "schedule": schedule} for i in range(jobs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "jobs.db", Path(tmp) / "scheduld.log"
        preload(db, documents)
        with component(
            "scheduld",
            moto=moto,
            sqlite_path=db,
            log=log,
            extra=_scheduld_env(fake) | {"LOG_LEVEL": "INFO"},
        ):
            wait_for_line(log, "jobs scheduled", timeout=60)
            fake.take()
            fake.calls.clear()
            deadline = fire_at.timestamp() + 5
            while time.time() < deadline:
                if len({a.job_id for a in fake.arrivals}) >= jobs:
                    break
                time.sleep(0.05)
            arrivals = fake.take()
    launched = {a.job_id for a in arrivals}
    last = max((a.at for a in arrivals), default=fire_at.timestamp())
    first = min((a.at for a in arrivals), default=fire_at.timestamp())
    return {
        "jobs": jobs,
        "launched": len(launched),
        "first_runtask_ms": round((first - fire_at.timestamp()) * 1000, 1),
        "last_runtask_ms": round((last - fire_at.timestamp()) * 1000, 1),
        "list_tasks_calls": fake.calls["ListTasks"],
    }
