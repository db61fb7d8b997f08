"""Server CPU per request, without a network or a load generator: the webapi app and the bare
FastAPI endpoint (bench/bare_app.py) called in-process through ASGI, in the same run.

Each scenario sends ``count`` requests one after another on one event loop (uvloop, as
webapi is served) and divides the process CPU time (``time.process_time``: every thread,
so store writes in the thread pool count too) by ``count``; the figure is the minimum over
``repeats`` rounds, which is the least disturbed by other processes on a shared machine.
What it leaves out is the HTTP server (uvicorn/httptools), the same for both apps.

Scenarios: ``bare`` (the ceiling), ``get`` GET /jobs/{id}, ``list`` GET /jobs?skip=&count=10,
``put`` PUT /jobs/{id}, ``post`` POST /jobs, ``delete`` DELETE /jobs/{id} (of the jobs ``post``
created), with ``auth.mode: none`` as the test profile
serves them; ``get_token`` is ``get`` with ``auth.mode: tokens`` and a read token. The store is
SQLite in a temporary directory with ``JOBS`` jobs; the bus accepts every event at once, so
writes show webapi's own cost.

Instrumentation, in the same rounds: ``get`` and ``post`` are served with metrics on and no
access line (LOG_LEVEL=WARNING, as above); ``*_nometrics`` with metrics off; ``*_json`` with
metrics on and the JSON access line at INFO (the production profile); ``*_text`` with metrics
on and text logs at DEBUG (where text mode writes its access line). Log lines go to a file,
as a process's stderr would. ``instrumentation.<kind>.<what>_cost_pct`` is the share of the
request's CPU that ``what`` adds, which is the throughput it costs a CPU-bound server
(``100 × (cpu_with − cpu_without) / cpu_with``). The HTTP server's own CPU is not in these
figures, so they overstate what a served request loses.

    .venv/bin/python -m bench request_cpu          # as a section of python -m bench
    .venv/bin/python -m bench.request_cpu          # alone, prints one JSON line
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import orjson

from bench.harness import preload
from common.bus.base import EventBus, ReceivedMessage
from common.config import AuthSettings, MetricsSettings, Settings, SQLiteSettings, StoreSettings
from common.logging import LogFormat, configure_logging
from common.models import ChangeEvent
from common.store.sqlite import SQLiteJobStore

JOBS = 1000
TOKEN = "bench-read-token"

ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]

TARGETS: list[tuple[str, str, str, float, str]] = [
    ("request_cpu", "get_vs_bare", "<=", 1.25, "GET CPU ≤ 1.25× bare FastAPI (in-process)"),
] + [
    (
        "request_cpu",
        f"instrumentation.{kind}.{what}_cost_pct",
        "<=",
        10,
        f"{label} cost, % of {kind.upper()} CPU (in-process)",
    )
    for kind in ("get", "post")
    for what, label in (
        ("metrics", "metrics"),
        ("json_log", "JSON log lines"),
        ("all", "metrics + JSON logs"),
    )
]
INSTRUMENTED = ("get", "post")
"""Scenarios measured again with metrics off and with access lines (``Variant``)."""


class AcceptingBus(EventBus):
    """Takes every event at once: writes measure webapi, not a queue."""

    def __init__(self) -> None:
        self.published = 0

    def publish(self, event: ChangeEvent) -> str:
        self.published += 1
        return str(self.published)

    async def publish_async(self, event: ChangeEvent) -> str:
        return self.publish(event)

    def receive(self, *, max_messages: int = 10, wait_seconds: float | None = None) -> list[ReceivedMessage]:
        return []

    def ack(self, message: ReceivedMessage) -> None:
        pass

    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        pass

    def dead_letters(self, *, max_messages: int = 10) -> list[ReceivedMessage]:
        return []


class Scenario:
    """Pre-built ASGI requests for one route, cycled through; each reply's status is checked."""

    def __init__(
        self,
        app: ASGIApp,
        requests: list[tuple[str, str, bytes]],
        *,
        status: int,
        headers: list[tuple[bytes, bytes]],
        logs: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.status = status
        self.logs = logs  # sets up logging as this scenario's process would have it
        self.scopes = [(_scope(method, target, headers, body), body) for method, target, body in requests]
        self.index = 0

    def set_up_logs(self) -> None:
        if self.logs is not None:
            self.logs()

    async def one(self) -> None:
        scope, body = self.scopes[self.index % len(self.scopes)]
        self.index += 1
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(dict(scope, state={}), receive, send)
        if status != self.status:
            raise RuntimeError(f"{scope['method']} {scope['path']}: {status}, expected {self.status}")


def _scope(method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    path, _, query = target.partition("?")
    all_headers = [(b"host", b"127.0.0.1:5000"), *headers]
    if body:
        all_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": all_headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 5000),
    }


async def _cpu_per_request(scenarios: dict[str, Scenario], *, count: int, repeats: int) -> dict[str, float]:
    """µs of process CPU per request for each scenario, the minimum over ``repeats`` rounds
    (after a warm-up); the scenarios take turns within each round, so a busy moment on a
    shared machine hits all of them alike rather than the one that happened to run then."""
    for scenario in scenarios.values():
        scenario.set_up_logs()
        for _ in range(min(200, count)):
            await scenario.one()
    best = dict.fromkeys(scenarios, float("inf"))
    for _ in range(repeats):
        for name, scenario in scenarios.items():
            scenario.set_up_logs()
            gc.collect()
            started = time.process_time()
            for _ in range(count):
                await scenario.one()
            best[name] = min(best[name], (time.process_time() - started) / count)
    return {f"{name}_us": round(seconds * 1e6, 1) for name, seconds in best.items()}


def _requests(kind: str, n: int, *, prefix: str = "new") -> list[tuple[str, str, bytes]]:
    if kind in ("get", "get_token", "bare"):
        return [("GET", f"/jobs/job{(i * 7919) % JOBS:05d}", b"") for i in range(n)]
    if kind == "list":
        return [("GET", f"/jobs?skip={(i * 7919) % (JOBS - 10)}&count=10", b"") for i in range(n)]
    if kind == "put":
        return [
            ("PUT", f"/jobs/job{(i * 7919) % JOBS:05d}", orjson.dumps({"taskCount": 1 + i % 50}))
            for i in range(n)
        ]
    if kind == "delete":  # the jobs the post scenario created, in the order it created them
        return [("DELETE", f"/jobs/{prefix}{i:07d}", b"") for i in range(n)]
    if kind == "post":
        return [
            (
                "POST",
                "/jobs",
                orjson.dumps({"taskDefinition": "bench-task", "id": f"{prefix}{i:07d}", "schedule": "0 0 0"}),
            )
            for i in range(n)
        ]
    raise ValueError(kind)


def measure(*, count: int, repeats: int, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Build both apps over a fresh store and measure the scenarios (``only`` those named,
    besides ``bare``, and their instrumentation variants) in one event loop."""
    from bench.bare_app import app as bare_app
    from webapi import create_app
    from webapi.tokens import token_hash

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cpu.db"
        preload(
            db,
            [{"id": f"job{n:05d}", "taskDefinition": "bench-task", "schedule": "0 0 0"} for n in range(JOBS)],
        )
        tokens = Path(tmp) / "tokens.yaml"
        tokens.write_text(
            json.dumps({"tokens": [{"name": "bench", "sha256": token_hash(TOKEN), "roles": ["read"]}]})
        )
        settings = Settings(
            store=StoreSettings(sqlite=SQLiteSettings(path=db)), auth=AuthSettings(mode="none")
        )
        # one loop writes far faster than a person: no write rate or job quota (as run() says)
        unlimited = settings.webapi.limits.model_copy(update={"write_rate": "", "max_jobs": 0})
        settings = settings.model_copy(
            update={"webapi": settings.webapi.model_copy(update={"limits": unlimited})}
        )
        store = SQLiteJobStore(settings.store.sqlite)
        bus = AcceptingBus()
        app = create_app(settings, store=store, bus=bus)
        token_app = create_app(
            settings.model_copy(update={"auth": AuthSettings(mode="tokens", tokens_file=tokens)}),
            store=store,
            bus=bus,
        )
        variants = {
            "nometrics": create_app(
                settings.model_copy(update={"metrics": MetricsSettings(enabled=False)}), store=store, bus=bus
            ),
            "json": create_app(settings.model_copy(update={"log_format": "json"}), store=store, bus=bus),
            "text": app,
        }
        log_file = (Path(tmp) / "webapi.log").open("a", buffering=1)  # as stderr: line-buffered
        quiet = _logs(log_file, "WARNING", "text")
        variant_logs = {
            "nometrics": quiet,
            "json": _logs(log_file, "INFO", "json"),
            "text": _logs(log_file, "DEBUG", "text"),
        }
        total = count * (repeats + 1) + 200
        root = logging.getLogger()
        logged = (
            root.handlers[:],
            root.level,
            logging.logThreads,
            logging.logProcesses,
            logging.logMultiprocessing,
        )

        def scenario(kind: str, app: ASGIApp, logs: Callable[[], None] = quiet, **kw: Any) -> Scenario:
            status = 201 if kind == "post" else 200
            writes = kind in ("post", "delete")
            requests = _requests(kind, total if writes else 1000, prefix=kw.pop("prefix", "new"))
            return Scenario(app, requests, status=status, headers=kw.pop("headers", []), logs=logs)

        scenarios = {
            "bare": scenario("bare", bare_app),
            "get": scenario("get", app),
            "get_token": scenario("get", token_app, headers=[(b"authorization", f"Bearer {TOKEN}".encode())]),
            "list": scenario("list", app),
            "put": scenario("put", app),
            "post": scenario("post", app),
            "delete": scenario("delete", app),  # after post: it deletes what post created
        }
        if only:
            needed = {"bare", *only, *(("post",) if "delete" in only else ())}
            scenarios = {name: scenario for name, scenario in scenarios.items() if name in needed}
        for kind in INSTRUMENTED:
            if kind in scenarios:
                for variant, variant_app in variants.items():
                    name = f"{kind}_{variant}"
                    scenarios[name] = scenario(kind, variant_app, variant_logs[variant], prefix=name)
        try:
            figures = _run(scenarios, count=count, repeats=repeats)
        finally:
            # as it was: this may run inside another process (the tests)
            root.handlers[:], level, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = (
                logged
            )
            root.setLevel(level)
            log_file.close()
            store.close()
    if "get_us" in figures:
        figures["get_vs_bare"] = round(figures["get_us"] / figures["bare_us"], 2)
    figures["instrumentation"] = {
        kind: _instrumentation_costs(figures, kind) for kind in INSTRUMENTED if f"{kind}_us" in figures
    }
    figures["count"], figures["repeats"] = count, repeats
    return figures


def _instrumentation_costs(figures: dict[str, Any], kind: str) -> dict[str, float]:
    """What metrics and access lines add to one request's CPU, in % of the request with them."""

    def cost(with_it: str, without: str) -> float:
        on: float = figures[f"{kind}{with_it}_us"]
        off: float = figures[f"{kind}{without}_us"]
        return round(100 * (on - off) / on, 1)

    return {
        "metrics_cost_pct": cost("", "_nometrics"),
        "json_log_cost_pct": cost("_json", ""),
        "text_log_cost_pct": cost("_text", ""),
        "all_cost_pct": cost("_json", "_nometrics"),
    }


def _logs(stream: TextIO, level: str, fmt: LogFormat) -> Callable[[], None]:
    """Logging as webapi configures it (``configure_logging``), ``stream`` as its stderr."""

    def set_up() -> None:
        stderr, sys.stderr = sys.stderr, stream
        try:
            configure_logging(level, component="webapi", fmt=fmt)
        finally:
            sys.stderr = stderr

    return set_up


def _run(scenarios: dict[str, Scenario], *, count: int, repeats: int) -> dict[str, Any]:
    measuring = _cpu_per_request(scenarios, count=count, repeats=repeats)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return dict(asyncio.run(measuring))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return dict(runner.run(measuring))


def run(quick: bool = False) -> dict[str, Any]:
    """In a process of its own, with the test profile (as bench/api.py serves webapi)."""
    command = [sys.executable, "-m", "bench.request_cpu", *(["--quick"] if quick else [])]
    # as bench/api.py: one loop writes far faster than a person, so no write rate or job quota
    env = {
        **os.environ,
        "RUN_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "WEBAPI__LIMITS__WRITE_RATE": "",
        "WEBAPI__LIMITS__MAX_JOBS": "0",
    }
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env, timeout=900).stdout
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cpu")
    parser.add_argument("--quick", action="store_true", help="1 000 requests × 3 rounds (else 3 000 × 7)")
    parser.add_argument("--only", default="", help="comma-separated scenarios (bare always runs)")
    args = parser.parse_args(argv)
    only = tuple(name for name in args.only.split(",") if name)
    count, repeats = (1000, 3) if args.quick else (3000, 7)
    sys.stdout.write(json.dumps(measure(count=count, repeats=repeats, only=only)) + "\n")


if __name__ == "__main__":
    main()
