"""API throughput and latency: webapi (one uvicorn worker, SQLite store) against a bare
FastAPI endpoint in the same run, with the load generator (bench/load.py) in a process of its
own. Client and server share this machine's cores.

Scenarios: GET /jobs/{id}; GET /jobs?skip=&count=10 on random pages (a third among the last
ones) with 10 000 jobs stored; PUT /jobs/{id}; POST /jobs; at 16 and 64 connections. The jobs
are written straight into the SQLite file before webapi starts (``harness.preload``).

Writes publish a change event to SQS. Two variants: ``fast_sqs``, a constant-time fake SQS
(bench/fake_aws.py), to show webapi's own cost; then ``moto_sqs``, the moto server as asked,
its queue consumed as scheduld would (``_Drain``). moto's SendMessage costs time in
proportion to the messages its queue holds, so ``sqs_floor`` measures what moto alone
sustains (bench/sqs_floor.py, under the same drain): the bound of the ``moto_sqs`` writes.

``instrumentation``: GET and POST at 16 connections (fast SQS) against three webapi servers:
metrics off (``METRICS__ENABLED=false``; request ids stay), metrics on (the default), and
metrics on with the JSON access and audit lines at INFO (production logging). Each
instrumented server is loaded *together* with the "off" one, ``INSTRUMENTATION_ROUNDS`` rounds
of ``INSTRUMENTATION_SECONDS``, so every round is a pair measured in the same moments of the
shared machine (bench/load.py ``together``), both servers on one core and the load generator
on the other (``servers_on_one_core``: otherwise a round's pair differed by which server
shared a core with the load generator). The capacity a setup costs is 1 − cpu_off /
cpu_setup from the two servers' CPU per request in a round; ``<setup>_cost_pct`` is the median
over the rounds. Served req/s (``*_rps_lost_pct``) and p99 are for information: they also move
with how the kernel shared the cores. Per setup, ``cpu_us_rounds`` (and ``off_cpu_us_rounds``)
show the noise. ``BENCH_API_ONLY=instrumentation python -m bench api`` runs that part alone;
``BENCH_API_ROUNDS`` sets the rounds.
bench/request_cpu.py measures the same costs in-process.

Reads run before writes, and moto runs last, so no scenario pays for a queue a previous
one left behind. Per scenario, besides req/s and latency: ``server_cpu_ms``, the CPU time the
server process spent per request of the measured phase (bench/load.py reads it from /proc
when its warm-up is over and when its last reply is in), which depends far less on how the
cores were shared than req/s, and ``server_cores``, how busy the server was.

``get_vs_bare`` (per variant and concurrency) is webapi's GET capacity as a share of the bare
endpoint's, from the two servers loaded at the same time on one core for ``VS_BARE_ROUNDS``
rounds (the median of cpu_bare / cpu_get per round): served alone minutes apart, as the req/s rows are,
one GET measured 110 µs and 170 µs of CPU in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.fake_aws import FakeAWS, client
from bench.harness import MotoServer, component, free_port, moto_server, preload, wait_up

JOBS = 10_000
CONCURRENCY = (16, 64)
KINDS = ("get", "list", "put", "post")
SECONDS = 4.0

# Reference figures of the original Flask/uwsgi implementation on this machine (16 clients).
REFERENCE = {"get": 3450, "list": 990, "put": 600, "post": 520}

TARGETS: list[tuple[str, str, str, float, str]] = (
    [
        ("api", f"{variant}.c16.{kind}.rps", ">=", 3 * REFERENCE[kind], f"{kind} ≥ 3× reference ({variant})")
        for variant in ("moto_sqs", "fast_sqs")
        for kind in ("list", "put", "post")
    ]
    + [
        ("api", "moto_sqs.c16.get_vs_bare", ">=", 0.8, "GET ≥ 80% of bare FastAPI (16 clients)"),
        ("api", "moto_sqs.c16.get.p99_ms", "<=", 5, "GET p99 at 16 clients, ms"),
    ]
    + [
        (
            "api",
            f"instrumentation.{kind}.{setup}_cost_pct",
            "<=",
            10,
            f"{what}: {kind.upper()} capacity lost, % (server CPU per request)",
        )
        for kind in ("get", "post")
        for setup, what in (("metrics", "metrics"), ("metrics_access_log", "metrics + JSON lines"))
    ]
)
INSTRUMENTATION_ROUNDS = 16
INSTRUMENTATION_SECONDS = 2.0
PAIRED_WARMUP = 0.2
VS_BARE_ROUNDS = 8
VS_BARE_SECONDS = 1.0
WRITES_UNLIMITED = {"WEBAPI__LIMITS__WRITE_RATE": "", "WEBAPI__LIMITS__MAX_JOBS": "0"}
"""One load client writes far faster than a person: no write rate or job quota (else POSTs
measure 429 and 403 replies)."""
INSTRUMENTATION = {
    "off": {"METRICS__ENABLED": "false", "LOG_LEVEL": "WARNING"},
    "metrics": {"METRICS__ENABLED": "true", "LOG_LEVEL": "WARNING"},
    "metrics_access_log": {"METRICS__ENABLED": "true", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"},
}


PARTS = ("bare", "instrumentation", "fast_sqs", "moto_sqs")


def run(quick: bool = False) -> dict[str, Any]:
    """Every part, or those named in ``BENCH_API_ONLY`` (comma-separated, e.g.
    ``BENCH_API_ONLY=instrumentation python -m bench api``); ``bare`` comes with either SQS part."""
    seconds = 2.0 if quick else SECONDS
    parts = _parts(os.environ.get("BENCH_API_ONLY", ""))
    figures: dict[str, Any] = {}
    with moto_server() as moto, tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as running:
        fake = FakeAWS().start()
        try:
            bare = running.enter_context(_bare_server()) if "bare" in parts else None
            if bare is not None:
                port, pid = bare
                figures["bare"] = {f"c{c}": _load(port, "bare", c, seconds, server=pid) for c in CONCURRENCY}
            if "instrumentation" in parts:
                figures["instrumentation"] = _instrumentation(
                    moto=moto,
                    fake=fake,
                    tmp=Path(tmp),
                    seconds=0.5 if quick else INSTRUMENTATION_SECONDS,
                    rounds=int(os.environ.get("BENCH_API_ROUNDS", 6 if quick else INSTRUMENTATION_ROUNDS)),
                )
            for variant in ("fast_sqs", "moto_sqs"):
                if variant in parts:
                    assert bare is not None  # _parts adds it
                    figures[variant] = _webapi(
                        variant, moto=moto, fake=fake, tmp=Path(tmp), seconds=seconds, bare=bare, quick=quick
                    )
        finally:
            fake.stop()
    figures["reference_c16"] = REFERENCE
    return figures


def _parts(only: str) -> set[str]:
    chosen = {part.strip() for part in only.split(",") if part.strip()} or set(PARTS)
    unknown = chosen - set(PARTS)
    if unknown:
        raise SystemExit(f"BENCH_API_ONLY: unknown part(s) {sorted(unknown)}; any of {', '.join(PARTS)}")
    if chosen & {"fast_sqs", "moto_sqs"}:
        chosen.add("bare")  # their get_vs_bare
    return chosen


@contextlib.contextmanager
def _bare_server() -> Iterator[tuple[int, int]]:
    """The bare FastAPI endpoint (bench/bare_app.py): (port, pid)."""
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "bench.bare_app", str(port)])
    try:
        wait_up(port, path="/jobs/x")
        yield port, bare.pid
    finally:
        bare.terminate()
        bare.wait(timeout=10)


def _webapi(
    variant: str,
    *,
    moto: MotoServer,
    fake: FakeAWS,
    tmp: Path,
    seconds: float,
    bare: tuple[int, int],
    quick: bool,
) -> dict[str, Any]:
    db = tmp / f"{variant}.db"
    _preload(db)
    port = free_port()
    extra = {"WEBAPI__PORT": str(port), "LOG_LEVEL": "WARNING", **WRITES_UNLIMITED}
    if variant == "fast_sqs":
        extra["AWS_ENDPOINT_URL_SQS"] = fake.url
    figures: dict[str, Any] = {f"c{c}": {} for c in CONCURRENCY}
    log = tmp / f"{variant}.log"
    with (
        component("webapi", moto=moto, sqlite_path=db, log=log, extra=extra) as server,
        _Drain(moto) as drain,
    ):
        wait_up(port)
        for concurrency in CONCURRENCY:
            figures[f"c{concurrency}"]["get_vs_bare"] = _get_vs_bare(
                bare, (port, server.pid), concurrency=concurrency, rounds=3 if quick else VS_BARE_ROUNDS
            )
        for kind in KINDS:
            for concurrency in CONCURRENCY:
                fake.messages = fake.batches = 0
                tag = f"{variant}{concurrency}"
                result = _load(port, kind, concurrency, seconds, server=server.pid, tag=tag)
                if variant == "fast_sqs" and kind in ("put", "post"):
                    result["messages_per_sqs_call"] = round(fake.messages / max(1, fake.batches), 1)
                figures[f"c{concurrency}"][kind] = result
                if variant == "moto_sqs" and kind in ("put", "post"):
                    drain.wait_empty(timeout=30)
        if variant == "moto_sqs":
            figures["sqs_floor"] = _sqs_floor(moto, seconds=min(seconds, 3.0))
            drain.wait_empty(timeout=30)
    return figures


def _get_vs_bare(bare: tuple[int, int], webapi: tuple[int, int], *, concurrency: int, rounds: int) -> float:
    """webapi's GET capacity as a share of the bare endpoint's: both loaded at once, round by
    round (bench/load.py ``together``), the median of cpu_bare / cpu_get. Each served alone
    minutes apart, as the req/s rows are, the same code measured 110 and 170 µs a GET."""
    bare_rounds, get_rounds = _together(
        [bare, webapi], "get", seconds=VS_BARE_SECONDS, rounds=rounds, concurrency=concurrency
    )
    paired = zip(bare_rounds, get_rounds, strict=True)
    ratios = [b["server_cpu_ms"] / max(1e-9, g["server_cpu_ms"]) for b, g in paired]  # bare, get
    return round(statistics.median(ratios), 2)


def _instrumentation(
    *, moto: MotoServer, fake: FakeAWS, tmp: Path, seconds: float, rounds: int
) -> dict[str, Any]:
    """Server CPU per request with metrics (and the JSON lines) off and on, each server on a
    store of its own (on a shared one, every server's outbox relay would also send the others'
    events); each instrumented server loaded together with the "off" one, round by round."""
    seen: dict[str, dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = {}
    with contextlib.ExitStack() as running:
        servers: dict[str, tuple[int, int]] = {}
        for setup, env in INSTRUMENTATION.items():
            db = tmp / f"instrumentation-{setup}.db"
            _preload(db)
            port = free_port()
            extra = {"WEBAPI__PORT": str(port), "AWS_ENDPOINT_URL_SQS": fake.url, **WRITES_UNLIMITED, **env}
            log = tmp / f"instrumentation-{setup}.log"
            server = running.enter_context(
                component("webapi", moto=moto, sqlite_path=db, log=log, extra=extra)
            )
            servers[setup] = (port, server.pid)
        for port, _ in servers.values():
            wait_up(port)
        for kind in ("get", "post"):
            seen[kind] = {}
            for setup in INSTRUMENTATION.keys() - {"off"}:
                off, on = _together([servers["off"], servers[setup]], kind, seconds=seconds, rounds=rounds)
                seen[kind][setup] = (off, on)
    return {kind: instrumentation_costs(pairs) for kind, pairs in seen.items()}


def instrumentation_costs(
    pairs: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
) -> dict[str, Any]:
    """Per instrumented setup, from its rounds paired with the "off" server's of the same
    moments: the capacity it costs and, for information, what it cost in served req/s.

    The server is CPU-bound under this load, so what it can serve is 1 / (CPU per request):
    a round's cost is 100 × (1 − cpu_off / cpu_setup), the share of "off"'s capacity lost;
    ``<setup>_cost_pct`` is the median over the rounds, which one disturbed round cannot move.
    ``<setup>_rps_lost_pct``, the same from served req/s, also moves with how the kernel shared
    the cores between the two servers and the load generator.
    """
    figures: dict[str, Any] = {}
    for setup, (off, on) in pairs.items():
        cpu_off, cpu_on = _cpu_us(off), _cpu_us(on)
        figures[setup] = {
            "cpu_us": round(statistics.median(cpu_on), 1),
            "cpu_us_rounds": [round(value) for value in cpu_on],
            "off_cpu_us": round(statistics.median(cpu_off), 1),
            "off_cpu_us_rounds": [round(value) for value in cpu_off],
            "rps": round(statistics.median(result["rps"] for result in on), 1),
            "off_rps": round(statistics.median(result["rps"] for result in off), 1),
            "p99_ms": round(statistics.median(result["p99_ms"] for result in on), 2),
            "errors": sum(result["errors"] for result in [*off, *on]),
            "rounds": len(on),
        }
        figures[f"{setup}_cost_pct"] = round(
            statistics.median(_capacity_lost(a, b) for a, b in zip(cpu_off, cpu_on, strict=True)), 1
        )
        figures[f"{setup}_rps_lost_pct"] = round(
            statistics.median(_lost(a["rps"], b["rps"]) for a, b in zip(off, on, strict=True)), 1
        )
    return figures


def _cpu_us(results: list[dict[str, Any]]) -> list[float]:
    return [1000 * result["server_cpu_ms"] for result in results]


def _preload(db: Path) -> None:
    preload(
        db,
        [{"id": f"job{n:05d}", "taskDefinition": "bench-task", "schedule": "0 0 0"} for n in range(JOBS)],
    )


def _capacity_lost(cpu_before: float, cpu_after: float) -> float:
    return round(100 * (1 - cpu_before / max(1e-9, cpu_after)), 1)


def _lost(before: float, after: float) -> float:
    return round(100 * (before - after) / max(1.0, before), 1)


class _Drain:
    """Consumes the moto ops queue as scheduld would (receive + delete), so it stays short."""

    def __init__(self, moto: MotoServer) -> None:
        self._sqs = client("sqs", moto.url)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Drain:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait_empty(self, *, timeout: float) -> bool:
        """Wait until a pass over every queue found nothing (bounded by ``timeout``)."""
        self._idle.clear()
        return self._idle.wait(timeout)

    def _run(self) -> None:
        urls: list[str] = []
        listed = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - listed > 1.0:  # queues webapi or sqs_floor created
                    urls, listed = self._sqs.list_queues().get("QueueUrls", []), time.monotonic()
                found = sum(self._take(url) for url in urls)
            except Exception as exc:  # noqa: BLE001 - a bench helper: keep draining
                sys.stderr.write(f"drain: {exc}\n")
                found = 0
            if not found:  # like scheduld: poll again at once while there is something to take
                self._idle.set()
                self._stop.wait(0.05)

    def _take(self, url: str) -> int:
        messages = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if messages:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        return len(messages)


def _sqs_floor(moto: MotoServer, *, seconds: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.sqs_floor", "--endpoint", moto.url, "--seconds", str(seconds)]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _load(
    port: int,
    kind: str,
    concurrency: int,
    seconds: float,
    *,
    server: int,
    tag: str = "",
    warmup: float = 1.0,
) -> dict[str, Any]:
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
        "--warmup",
        str(warmup),
        "--tag",
        tag,
        "--server-pid",
        str(server),
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + warmup + 60
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result.pop("warmup_requests", None)
    cpu = _cpu_per_request(result)
    result["server_cores"] = round(cpu / max(1e-3, result["seconds"]), 2)
    return result


def _cpu_per_request(result: dict[str, Any]) -> float:
    """``server_cpu_s`` of a bench/load.py result (the measured phase only, warm-up left out)
    becomes ``server_cpu_ms`` per request; returns the seconds."""
    cpu: float = result.pop("server_cpu_s")
    result["server_cpu_ms"] = round(1000 * cpu / max(1, result["requests"]), 3)
    return cpu


def _together(
    servers: list[tuple[int, int]], kind: str, *, seconds: float, rounds: int, concurrency: int = 16
) -> list[list[dict[str, Any]]]:
    """One load process loading every (port, pid) at once for ``rounds`` rounds (bench/load.py
    ``together``); per server, its rounds' results with ``server_cpu_ms``."""
    ports = ",".join(str(port) for port, _ in servers)
    pids = ",".join(str(pid) for _, pid in servers)
    tag = f"i{kind}" + ports.replace(",", "p")  # POSTed ids unique per pass
    command = [
        *(sys.executable, "-m", "bench.load", "--kind", kind, "--ids", str(JOBS)),
        *("--concurrency", str(concurrency)),
        *("--ports", ports, "--server-pids", pids, "--rounds", str(rounds), "--tag", tag, "--one-core"),
        *("--seconds", str(seconds), "--warmup", str(PAIRED_WARMUP)),
    ]
    limit = rounds * (seconds + PAIRED_WARMUP + 2) + 60
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=limit).stdout
    targets: list[list[dict[str, Any]]] = json.loads(output.strip().splitlines()[-1])["targets"]
    for results in targets:
        for result in results:
            _cpu_per_request(result)
    return targets
