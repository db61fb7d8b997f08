"""Propagation: PUT a schedule change on webapi → scheduld has applied it.

Both components run as processes against one SQLite file and the moto server's SQS. scheduld
writes ``estimatedNextRun`` as soon as it has rescheduled a job, so "applied" is observed
through the real API: GET /jobs/{id} until estimatedNextRun matches the new schedule.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.fake_aws import FakeAWS
from bench.harness import component, free_port, moto_server, percentiles, wait_for_line, wait_up

CHANGES = 60


def run(quick: bool = False) -> dict[str, Any]:
    changes = 15 if quick else CHANGES
    port = free_port()
    with moto_server() as moto, tempfile.TemporaryDirectory() as tmp:
        fake = FakeAWS().start()
        db = Path(tmp) / "jobs.db"
        extra = {
            "WEBAPI__PORT": str(port),
            "AWS_ENDPOINT_URL_ECS": fake.url,
            "SCHEDULER__RECONCILE_INTERVAL_SECONDS": "600",  # only events may propagate
            "WEBAPI__LIMITS__WRITE_RATE": "",  # changes come as fast as the bench can send them
            "LOG_LEVEL": "INFO",
        }
        with (
            component("webapi", moto=moto, sqlite_path=db, log=Path(tmp) / "webapi.log", extra=extra),
            component("scheduld", moto=moto, sqlite_path=db, log=Path(tmp) / "scheduld.log", extra=extra),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
        ):
            wait_for_line(Path(tmp) / "scheduld.log", "jobs scheduled", timeout=60)
            wait_up(client.base_url.port or 80)
            assert (
                client.post(
                    "/jobs", json={"id": "p", "taskDefinition": "t", "schedule": "0 0 0 1 * * 1"}
                ).status_code
                == 201
            )
            samples = []
            for n in range(changes):
                hour = n % 24
                sent = time.perf_counter()
                assert client.put("/jobs/p", json={"schedule": f"0 0 {hour} * * 1 1"}).status_code == 200
                while True:
                    estimate = client.get("/jobs/p").json().get("estimatedNextRun")
                    if estimate and datetime.fromisoformat(estimate).astimezone(UTC).hour == hour:
                        break
                    if time.perf_counter() - sent > 10:
                        raise TimeoutError(f"change {n} not applied within 10 s")
                    time.sleep(0.002)
                samples.append((time.perf_counter() - sent) * 1000)
        fake.stop()
    stats = percentiles(samples)
    return {
        "changes": len(samples),
        "ms_p50": round(stats["p50"], 1),
        "ms_p99": round(stats["p99"], 1),
        "ms_max": round(stats["max"], 1),
    }
