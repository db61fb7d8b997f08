"""Scale: 100 000 jobs in the store.

cold start  scheduld process start → "loaded N jobs into the schedule", and its peak RSS.
deep pages  GET /jobs?skip=…&count=10 latency on the first pages versus the last pages.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.fake_aws import FakeAWS
from bench.harness import (
    component,
    free_port,
    moto_server,
    peak_rss_mib,
    percentiles,
    preload,
    wait_for_line,
    wait_up,
)

JOBS = 100_000
PAGE_SAMPLES = 300


def run(quick: bool = False) -> dict[str, Any]:
    jobs = 10_000 if quick else JOBS
    documents = [
        {
            "id": f"s{i:06d}",
            "taskDefinition": "bench-task",
            "schedule": f"{i % 60} {(i // 60) % 60} {(i // 3600) % 24}",
        }
        for i in range(jobs)
    ]
    figures: dict[str, Any] = {"jobs": jobs}
    with moto_server() as moto, tempfile.TemporaryDirectory() as tmp:
        fake = FakeAWS().start()
        db = Path(tmp) / "jobs.db"
        started = time.perf_counter()
        preload(db, documents)
        figures["preload_s"] = round(time.perf_counter() - started, 1)
        log = Path(tmp) / "scheduld.log"
        extra = {
            "AWS_ENDPOINT_URL_ECS": fake.url,
            "SCHEDULER__RECONCILE_INTERVAL_SECONDS": "600",
            "LOG_LEVEL": "INFO",
        }
        began = time.time()
        with component("scheduld", moto=moto, sqlite_path=db, log=log, extra=extra) as scheduld:
            loaded = wait_for_line(log, "jobs scheduled", timeout=300)
            figures["cold_start_s"] = round(loaded - began, 2)
            time.sleep(1.0)
            figures["peak_rss_mib"] = round(peak_rss_mib(scheduld.pid), 1)
        port = free_port()
        with (
            component(
                "webapi",
                moto=moto,
                sqlite_path=db,
                log=Path(tmp) / "webapi.log",
                extra={"WEBAPI__PORT": str(port)},
            ),
            httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            wait_up(client.base_url.port or 80)
            figures["shallow_page_ms"] = _page_latency(client, range(0, 100, 10))
            figures["deep_page_ms"] = _page_latency(client, range(jobs - 100, jobs, 10))
        fake.stop()
    return figures


def _page_latency(client: httpx.Client, skips: range) -> dict[str, float]:
    samples = []
    for _ in range(PAGE_SAMPLES):
        skip = random.choice(skips)
        sent = time.perf_counter()
        response = client.get(f"/jobs?skip={skip}&count=10")
        samples.append((time.perf_counter() - sent) * 1000)
        assert response.status_code == 200 and len(response.json()["jobs"]) == 10
    stats = percentiles(samples)
    return {"p50": round(stats["p50"], 2), "p99": round(stats["p99"], 2)}
