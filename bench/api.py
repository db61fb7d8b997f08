"""API throughput and latency: webapi (one uvicorn worker, SQLite store) against a bare
FastAPI endpoint in the same run, with the load generator (bench/load.py) in a process of its
own. Client and server share this machine's cores.

Scenarios: GET /jobs/{id}; GET /jobs?skip=&count=10 on random pages (a third among the last
ones) with 10 000 jobs stored; PUT /jobs/{id}; POST /jobs; at 16 and 64 connections.

Writes publish a change event to SQS. Two variants: ``moto_sqs``, the moto server as asked
(its queue is purged every 0.5 s, as scheduld would drain it: moto's SendMessage slows down as
its queue grows), and ``fast_sqs``, a constant-time fake SQS, to show webapi's own cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import boto3

from bench.fake_aws import FakeAWS
from bench.harness import MotoServer, component, free_port, moto_server, preload, wait_up

JOBS = 10_000
CONCURRENCY = (16, 64)
SECONDS = 4.0

# Reference figures of the original Flask/uwsgi implementation on this machine (16 clients).
REFERENCE = {"get": 3450, "list": 990, "put": 600, "post": 520}

TARGETS: list[tuple[str, str, str, float, str]] = [
    ("api", f"{variant}.c16.{kind}.rps", ">=", 3 * REFERENCE[kind], f"{kind} ≥ 3× reference ({variant})")
    for variant in ("moto_sqs", "fast_sqs")
    for kind in ("list", "put", "post")
] + [
    ("api", "moto_sqs.c16.get_vs_bare", ">=", 0.8, "GET ≥ 80% of bare FastAPI (16 clients)"),
    ("api", "moto_sqs.c16.get.p99_ms", "<=", 5, "GET p99 at 16 clients, ms"),
]


def run(quick: bool = False) -> dict[str, Any]:
    seconds = 2.0 if quick else SECONDS
    figures: dict[str, Any] = {}
    with moto_server() as moto, tempfile.TemporaryDirectory() as tmp:
        fake = FakeAWS().start()
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.bare_app", str(bare_port)])
        try:
            wait_up(bare_port, path="/jobs/x")
            figures["bare"] = {f"c{c}": _load(bare_port, "bare", c, seconds) for c in CONCURRENCY}
            for variant in ("moto_sqs", "fast_sqs"):
                db = Path(tmp) / f"{variant}.db"
                preload(
                    db,
                    [
                        {"id": f"job{n:05d}", "taskDefinition": "bench-task", "schedule": "0 0 0"}
                        for n in range(JOBS)
                    ],
                )
                port = free_port()
                extra = {"WEBAPI__PORT": str(port), "LOG_LEVEL": "WARNING"}
                if variant == "fast_sqs":
                    extra["AWS_ENDPOINT_URL_SQS"] = fake.url
                with (
                    component(
                        "webapi", moto=moto, sqlite_path=db, log=Path(tmp) / f"{variant}.log", extra=extra
                    ),
                    _Drain(moto),
                ):
                    wait_up(port)
                    figures[variant] = {}
                    for concurrency in CONCURRENCY:
                        section: dict[str, Any] = {
                            kind: _load(port, kind, concurrency, seconds, tag=f"{variant}{concurrency}")
                            for kind in ("get", "list", "put", "post")
                        }
                        bare_rps = figures["bare"][f"c{concurrency}"]["rps"]
                        section["get_vs_bare"] = round(section["get"]["rps"] / max(1.0, bare_rps), 2)
                        figures[variant][f"c{concurrency}"] = section
        finally:
            bare.terminate()
            bare.wait(timeout=10)
            fake.stop()
    figures["reference_c16"] = REFERENCE
    return figures


class _Drain:
    """Consumes the moto ops queue as scheduld would (receive + delete), so it stays short."""

    def __init__(self, moto: MotoServer) -> None:
        self._sqs = boto3.client(
            "sqs",
            endpoint_url=moto.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Drain:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                for url in self._sqs.list_queues().get("QueueUrls", []):
                    messages = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                        "Messages", []
                    )
                    if messages:
                        entries = [
                            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                            for n, m in enumerate(messages)
                        ]
                        self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - a bench helper: keep draining
                sys.stderr.write(f"drain: {exc}\n")


def _load(port: int, kind: str, concurrency: int, seconds: float, tag: str = "") -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--port",
        str(port),
        "--kind",
        kind,
        "--ids",
        str(JOBS),
        "--concurrency",
        str(concurrency),
        "--seconds",
        str(seconds),
        "--tag",
        tag,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result
