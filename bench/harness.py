"""Shared benchmark plumbing: servers on 127.0.0.1, component processes, statistics."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from common.config import SQLiteSettings
from common.models import Job
from common.store.sqlite import SQLiteJobStore
from tests.servers import ROOT, MotoServer, component_env, free_port, moto_server, stop_process

__all__ = [
    "ROOT",
    "MotoServer",
    "free_port",
    "moto_server",
    "percentiles",
    "preload",
    "component",
    "peak_rss_mib",
]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of ``values`` (same unit), 0s when empty."""
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": at(0.50),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "n": len(ordered),
    }


def preload(path: Path, jobs: Sequence[dict[str, Any]]) -> None:
    """Write jobs straight into a SQLite store file (one transaction per 1 000)."""
    store = SQLiteJobStore(SQLiteSettings(path=path))
    db = store._db()  # noqa: SLF001 - bulk load for benchmarks only
    import orjson

    for start in range(0, len(jobs), 1000):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO jobs (id, document) VALUES (?, ?)",
            [
                (job["id"], orjson.dumps(Job.model_validate(job).user_document()))
                for job in jobs[start : start + 1000]
            ],
        )
        db.execute("COMMIT")
    store.close()


@contextlib.contextmanager
def component(
    name: str, *, moto: MotoServer, sqlite_path: Path, log: Path, extra: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """An ecs-scheduler process (webapi or scheduld) with RUN_ENV=test, stopped on exit."""
    env = component_env(moto=moto, sqlite_path=sqlite_path, extra={"COMPONENT_NAME": name, **(extra or {})})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        stop_process(process, grace=20)


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for_line(log: Path, needle: str, *, timeout: float, since: int = 0) -> float:
    """Wait until ``needle`` appears in the log after byte ``since``; returns time.time() then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_bytes()[since:].decode(errors="replace"):
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(
        f"{needle!r} not in {log} after {timeout} s:\n{log.read_text(errors='replace')[-3000:]}"
    )


def env_flag(name: str, default: str) -> str:
    return os.environ.get(name, default)


def wait_up(port: int, path: str = "/", *, timeout: float = 60.0) -> None:
    """Wait until an HTTP server on 127.0.0.1:port answers ``path``."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing answers on port {port}")
