"""End to end: the whole stack under the load a platform team's scripts give it.

webapi and scheduld run as processes on one SQLite file; SQS is the moto server (the default
``make run`` stack) or a constant-time SQS in a process of its own (``fast_sqs``); ECS is a
recording endpoint in a process of its own (``bench.fake_aws.FakeAWSProcess``), which notes when each RunTask
arrives and for which job. Every part shares the machine's cores, as on a small host.

burst   1 000 jobs firing every 10 s created through the API as fast as it accepts them
        (16 clients). Each job must fire at the first 10 s boundary at least 1 s after its
        201 (misses counted per boundary), and every later boundary is a herd of 1 000:
        lag = RunTask arrival at the endpoint minus the boundary.
writes  then, the burst's jobs deleted (no herds meanwhile), PUT, POST and DELETE req/s at
        16 and 64 keep-alive clients (bench/load.py, its own process) against the running
        stack, scheduld consuming every change meanwhile; and how long after them a new job
        takes to be scheduled (scheduld's backlog). ``*_cpu_us``: each process's CPU during
        the phase per request served (``launchers`` scheduld's launcher processes, ``load``
        the load generator, its start-up included): where the two cores went.

Only change events propagate (the periodic reconcile is set to 10 minutes), and there is no
launch rate limit (the endpoint never throttles).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.fake_aws import FakeAWSProcess
from bench.harness import component, free_port, moto_server, percentiles, preload, wait_up
from bench.proc import cpu_seconds

JOBS = 1_000
PERIOD = 10  # seconds between fires of every burst job ("*/10": the seed syntax is second-first)
SETTLE = 1.0  # a job must fire at the first boundary at least this long after its 201
WATCH = 40.0  # seconds of boundaries checked after the last 201
PRELOADED = 10_000  # jobs that never fire, for PUT to change
WRITE_CONCURRENCY = (16, 64)

# (figure, seed's figure from issue #12: the original under uwsgi, 1 process, this machine).
# The seed is not installed here, so these are its figures as measured then (upper end of
# the range: the stricter comparison); DELETE had no seed figure: POST's is used.
SEED_RPS = {
    "put_c16": 462,
    "put_c64": 447,
    "post_c16": 339,
    "post_c64": 339,
    "delete_c16": 339,
    "delete_c64": 339,
}
SEED_HERD_P99_MS = 2_397

VARIANTS = ("moto", "fast_sqs")

TARGETS: list[tuple[str, str, str, float, str]] = [
    *[
        ("e2e", f"{variant}.burst.misses", "<=", 0, f"burst: jobs missing their first boundary ({variant})")
        for variant in VARIANTS
    ],
    *[
        ("e2e", f"{variant}.herd.lag_ms_p99", "<=", 500, f"herd of 1 000: RunTask lag p99 ({variant})")
        for variant in VARIANTS
    ],
    *[
        ("e2e", f"{variant}.writes.{name}_vs_seed", ">=", 3, f"{name} req/s vs seed ({variant})")
        for variant in VARIANTS
        for name in SEED_RPS
    ],
]


def run(quick: bool = False) -> dict[str, Any]:
    jobs = 200 if quick else JOBS
    seconds = 2.0 if quick else 6.0
    return {variant: _stack(variant, jobs=jobs, seconds=seconds) for variant in VARIANTS}


def _stack(variant: str, *, jobs: int, seconds: float) -> dict[str, Any]:
    port, scheduld_port = free_port(), free_port()
    with moto_server() as moto, tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        ecs = FakeAWSProcess("ecs").start()
        stack.callback(ecs.stop)
        db = Path(tmp) / "jobs.db"
        preload(
            db,
            [
                {"id": f"job{n:05d}", "taskDefinition": "bench-task", "schedule": "0 0 0 * * 1 1 2099"}
                for n in range(PRELOADED)
            ],
        )
        extra = {
            "WEBAPI__PORT": str(port),
            "AWS_ENDPOINT_URL_ECS": ecs.url,
            "ECS__CLUSTER": "bench",
            "SCHEDULER__HTTP_PORT": str(scheduld_port),
            "SCHEDULER__RECONCILE_INTERVAL_SECONDS": "600",  # only events may propagate
            "WEBAPI__LIMITS__WRITE_RATE": "",  # scripted clients, not people
            "WEBAPI__LIMITS__MAX_JOBS": "0",
            "LOG_LEVEL": "WARNING",
        }
        sqs_pid = moto.process.pid
        if variant == "fast_sqs":
            sqs = FakeAWSProcess("sqs").start()
            stack.callback(sqs.stop)
            extra["AWS_ENDPOINT_URL_SQS"] = sqs.url
            sqs_pid = sqs.pid
        with (
            component(
                "webapi", moto=moto, sqlite_path=db, log=Path(tmp) / "webapi.log", extra=extra
            ) as webapi,
            component(
                "scheduld", moto=moto, sqlite_path=db, log=Path(tmp) / "scheduld.log", extra=extra
            ) as scheduld,
        ):
            _wait_ready(scheduld_port)
            wait_up(port)
            burst, created = asyncio.run(_burst(port, jobs))
            time.sleep(max(0.0, created[-1][1] + WATCH - time.time()))
            arrivals = [(a.at, a.job_id, a.count) for a in ecs.take()[0]]
            figures = _judge(burst, created, arrivals)
            asyncio.run(_delete([job_id for job_id, _ in created], port))  # no herds meanwhile
            processes = {
                "webapi": (webapi.pid, False),
                "scheduld": (scheduld.pid, False),
                "launchers": (scheduld.pid, True),  # its launcher processes
                "sqs": (sqs_pid, False),
            }
            figures["writes"] = _writes(port, seconds=seconds, tag=variant, processes=processes)
            figures["writes"]["then_applied_s"] = _applied_after(port)
    return figures


def _wait_ready(port: int, *, timeout: float = 120.0) -> None:
    """Until scheduld's /readyz says 200: the schedule is loaded and it leads."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"scheduld on port {port} not ready after {timeout} s")


def _writes(port: int, *, seconds: float, tag: str, processes: dict[str, tuple[int, bool]]) -> dict[str, Any]:
    """PUT over the preloaded jobs; POST new ones; DELETE what the POSTs made (for a quarter
    as long, so every DELETE finds its job: ``*_errors`` would count the 404s).
    ``processes``: name → (pid, its descendants instead)."""
    figures: dict[str, Any] = {}
    for concurrency in WRITE_CONCURRENCY:
        phases = (
            ("put", "put", seconds, 1.0),
            ("post", "post", seconds, 1.0),
            # a DELETE finds its job only while it is no faster than 4× the POSTs were
            ("delete", "delete", seconds / 4, 0.25),
        )
        for name, kind, length, warmup in phases:
            cpu_before = _cpu(processes)
            result = _load(port, kind, concurrency, length, warmup, tag=f"{tag}{concurrency}")
            spent = {name: after - cpu_before[name] for name, after in _cpu(processes).items()}
            key = f"{name}_c{concurrency}"
            ok = result["requests"] - result["errors"]
            served = max(1, result["requests"] + result.get("warmup_requests", 0))
            figures[f"{key}_cpu_us"] = {name: round(1e6 * cpu / served) for name, cpu in spent.items()}
            figures[f"{key}_rps"] = round(ok / result["seconds"], 1)
            figures[f"{key}_errors"] = result["errors"]
            figures[f"{key}_vs_seed"] = round(figures[f"{key}_rps"] / SEED_RPS[key], 2)
    return figures


def _cpu(processes: dict[str, tuple[int, bool]]) -> dict[str, float]:
    """CPU seconds so far of each process, and of the finished load generators (``load``)."""
    spent = {name: cpu_seconds(pid, children=children) for name, (pid, children) in processes.items()}
    finished = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent["load"] = finished.ru_utime + finished.ru_stime
    return spent


def _applied_after(port: int, *, timeout: float = 300.0) -> float:
    """Seconds from creating one job, right after the write phases, until scheduld has
    scheduled it (its ``estimatedNextRun`` appears): how far behind the writes scheduld is."""
    sent = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        job = {"id": "probe", "taskDefinition": "bench-task", "schedule": "0 0 0 * * 1 1 2099"}
        assert client.post("/jobs", json=job).status_code == 201
        while time.monotonic() - sent < timeout:
            if client.get("/jobs/probe").json().get("estimatedNextRun"):
                return round(time.monotonic() - sent, 2)
            time.sleep(0.05)
    return float("inf")


def _load(
    port: int, kind: str, concurrency: int, seconds: float, warmup: float, *, tag: str
) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            f"--port={port}",
            f"--kind={kind}",
            f"--ids={PRELOADED}",
            f"--concurrency={concurrency}",
            f"--seconds={seconds}",
            f"--warmup={warmup}",
            f"--tag={tag}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + warmup + 60,
    ).stdout
    result: dict[str, Any] = json.loads(output.splitlines()[-1])
    return result


async def _burst(port: int, jobs: int) -> tuple[dict[str, Any], list[tuple[str, float]]]:
    """Create ``jobs`` firing jobs through the API, 16 at a time; (figures, [(id, time of 201)])."""
    created: list[tuple[str, float]] = []
    ids = iter(range(jobs))
    started = time.time()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        async def creator() -> None:
            for n in ids:
                job_id = f"burst{n:05d}"
                reply = await client.post(
                    "/jobs", json={"id": job_id, "taskDefinition": "bench-task", "schedule": f"*/{PERIOD}"}
                )
                if reply.status_code != 201:
                    raise RuntimeError(f"POST {job_id}: {reply.status_code} {reply.text}")
                created.append((job_id, time.time()))

        await asyncio.gather(*(creator() for _ in range(16)))
    elapsed = created[-1][1] - started
    return {"creates": len(created), "creates_per_second": round(len(created) / elapsed, 1)}, created


async def _delete(job_ids: list[str], port: int) -> None:
    pending = iter(job_ids)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        async def deleter() -> None:
            for job_id in pending:
                reply = await client.delete(f"/jobs/{job_id}")
                if reply.status_code != 200:
                    raise RuntimeError(f"DELETE {job_id}: {reply.status_code} {reply.text}")

        await asyncio.gather(*(deleter() for _ in range(16)))


def _judge(
    burst: dict[str, Any], created: list[tuple[str, float]], arrivals: list[tuple[float, str, int]]
) -> dict[str, Any]:
    """Misses per boundary after each job's 201, and the lag of every herd after the burst."""
    fired: dict[str, dict[int, float]] = defaultdict(dict)  # job → boundary → first arrival
    for at, job_id, _count in arrivals:
        boundary = math.floor(at / PERIOD) * PERIOD
        fired[job_id].setdefault(boundary, at)
    last_201 = max(at for _, at in created)
    misses: dict[int, int] = defaultdict(int)
    first_lags: list[float] = []
    for job_id, at in created:
        boundary = math.ceil((at + SETTLE) / PERIOD) * PERIOD
        if boundary in fired[job_id]:
            first_lags.append((fired[job_id][boundary] - boundary) * 1000)
        else:
            misses[boundary] += 1
    # herds: boundaries every job had to fire at (after the last 201 and its settle time)
    first_full = math.ceil((last_201 + SETTLE) / PERIOD) * PERIOD
    herd_lags: list[float] = []
    each_p99: list[float] = []  # one herd late is not every herd late
    herd_missed = 0
    herds = 0
    for boundary in range(first_full, int(last_201 + WATCH) - PERIOD, PERIOD):
        herds += 1
        lags = [
            (fired[job_id][boundary] - boundary) * 1000 for job_id, _ in created if boundary in fired[job_id]
        ]
        herd_missed += len(created) - len(lags)
        herd_lags += lags
        each_p99.append(round(percentiles(lags)["p99"], 1) if lags else 0.0)
    first = percentiles(first_lags)
    herd = percentiles(herd_lags)
    return {
        "burst": {
            **burst,
            "misses": sum(misses.values()),
            "misses_by_boundary": {str(b - first_full): n for b, n in sorted(misses.items())},
            "first_fire_lag_ms_p99": round(first["p99"], 1),
        },
        "herd": {
            "herds": herds,
            "fires": len(herd_lags),
            "missed": herd_missed,
            "lag_ms_p50": round(herd["p50"], 1),
            "lag_ms_p99": round(herd["p99"], 1),
            "lag_ms_max": round(herd["max"], 1),
            "lag_ms_p99_each": each_p99,
            "seed_lag_ms_p99": SEED_HERD_P99_MS,
        },
    }
