"""A small HTTP/1.1 load generator: asyncio, keep-alive connections, pre-built requests.

Runs in its own process (``python -m bench.load``) so it does not share an interpreter lock
with the server; prints one JSON line: requests, errors, seconds, latencies (ms) percentiles.
Every run is bounded by ``--seconds``. With ``--server-pid`` it also reports that process's
CPU seconds during the measured phase only (``server_cpu_s``): read from /proc the moment the
warm-up's last reply is in and the last measured reply is in, so the warm-up's requests (and
a server's first, costlier ones) are in neither the count nor the CPU. With ``--ports`` and
``--server-pids`` it loads several servers at once, ``--rounds`` times, and prints
``{"targets": [[result per round] per server]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import orjson

from bench.proc import cpu_seconds


def build_requests(kind: str, *, host: str, ids: int, count: int, tag: str = "") -> list[bytes]:
    """Pre-built request bytes for a scenario (cycled through by every connection)."""
    rng = random.Random(7)
    requests: list[bytes] = []

    def request(method: str, path: str, body: bytes | None = None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode() + (body or b"")

    for n in range(count):
        if kind == "get":
            requests.append(request("GET", f"/jobs/job{rng.randrange(ids):05d}"))
        elif kind == "list":
            # random pages, a third of them among the last pages
            skip = rng.randrange(ids - 10) if n % 3 else ids - 10 - rng.randrange(100)
            requests.append(request("GET", f"/jobs?skip={skip}&count=10"))
        elif kind == "put":
            body = orjson.dumps({"taskCount": 1 + n % 50})
            requests.append(request("PUT", f"/jobs/job{rng.randrange(ids):05d}", body))
        elif kind == "post":
            body = orjson.dumps(
                {
                    "taskDefinition": "bench-task",
                    "id": f"new{tag}{n:07d}",
                    "schedule": "0 0 0",
                }
            )
            requests.append(request("POST", "/jobs", body))
        elif kind == "delete":  # the jobs a "post" run with the same tag and layout created
            requests.append(request("DELETE", f"/jobs/new{tag}{n:07d}"))
        elif kind == "bare":
            requests.append(request("GET", f"/jobs/job{rng.randrange(ids):05d}"))
    return requests


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    deadline: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    try:
        while time.perf_counter() < deadline:
            payload = requests[index % len(requests)]
            index += 1
            sent = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - sent) * 1000)
            if status >= 400:
                errors.append(status)
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pid: int | None = None,
) -> dict[str, Any]:
    warm: list[float] = []
    await asyncio.gather(
        *(
            _connection(host, port, requests, i * 1500, time.perf_counter() + warmup, warm, [])
            for i in range(concurrency)
        )
    )
    latencies: list[float] = []
    errors: list[int] = []
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(
                host, port, requests, len(requests) // 2 + i * 1500, started + seconds, latencies, errors
            )
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu_before if server_pid else None
    ordered = sorted(latencies)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0  # noqa: E731
    result: dict[str, Any] = {
        "requests": len(latencies),
        "warmup_requests": len(warm),
        "errors": len(errors),
        "error_statuses": sorted(set(errors))[:5],
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(at(0.50), 2),
        "p99_ms": round(at(0.99), 2),
    }
    if cpu is not None:
        result["server_cpu_s"] = round(cpu, 3)
    return result


async def together(
    targets: list[tuple[int, int]],
    kind: str,
    *,
    ids: int,
    concurrency: int,
    seconds: float,
    warmup: float,
    rounds: int,
    tag: str,
) -> list[list[dict[str, Any]]]:
    """``run`` against every (port, server pid) at once, ``concurrency`` connections each,
    ``rounds`` times; per target, its rounds' results. The servers share every moment of the
    machine, so whatever else takes the cores (a neighbour on the host) hits them alike, and
    each round's figures are a pair taken under the same conditions. Loaded in turn instead,
    two identical servers measured 7–22 % apart."""
    results: list[list[dict[str, Any]]] = [[] for _ in targets]
    for round_ in range(rounds):
        measured = await asyncio.gather(
            *(
                run(
                    "127.0.0.1",
                    port,
                    build_requests(
                        kind, host=f"127.0.0.1:{port}", ids=ids, count=40_000, tag=f"{tag}t{index}r{round_}"
                    ),
                    concurrency=concurrency,
                    seconds=seconds,
                    warmup=warmup,
                    server_pid=pid,
                )
                for index, (port, pid) in enumerate(targets)
            )
        )
        for index, result in enumerate(measured):
            results[index].append(result)
    return results


@contextlib.contextmanager
def servers_on_one_core(pids: list[int]) -> Iterator[None]:
    """Every thread of the servers on one core and this process on the others, restored
    afterwards. Two servers loaded together then take turns on the same core, beside the
    same neighbour: a round's two figures differ by what the servers do, not by which of
    them shared a core with the load generator that round (an A/A pair's rounds spread far
    less: bench/README.md, "One core for paired servers"). With a single core, nothing
    changes."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        yield
        return
    mine = os.sched_getaffinity(0)
    saved: dict[int, set[int]] = {}
    try:
        for thread in (thread for pid in pids for thread in _threads(pid)):
            with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
                saved[thread] = os.sched_getaffinity(thread)
                os.sched_setaffinity(thread, {cores[0]})
        os.sched_setaffinity(0, set(cores[1:]))
        yield
    finally:
        os.sched_setaffinity(0, mine)
        for thread, cpus in saved.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(thread, cpus)


def _threads(pid: int) -> list[int]:
    """The ids of a process's threads (sched_setaffinity sets one thread's cores)."""
    return [int(task) for task in os.listdir(f"/proc/{pid}/task")]


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """uvloop when installed (webapi depends on it): a cheaper client leaves more of the
    shared cores to the server under test. ``BENCH_LOAD_LOOP=asyncio`` forces asyncio."""
    if os.environ.get("BENCH_LOAD_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--port", type=int, help="the server (else --ports)")
    parser.add_argument("--ports", help="comma-separated: servers loaded together, --rounds times")
    parser.add_argument("--server-pids", help="comma-separated, one per --ports entry")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="with --ports: the servers share one core, the load the others",
    )
    parser.add_argument("--kind", required=True, choices=["get", "list", "put", "post", "delete", "bare"])
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--tag", default="", help="makes POSTed ids unique per run")
    parser.add_argument("--server-pid", type=int, help="report this process's CPU in the measured phase")
    args = parser.parse_args()
    if args.ports:
        ports, pids = args.ports.split(","), [int(pid) for pid in args.server_pids.split(",")]
        with servers_on_one_core(pids) if args.one_core else contextlib.nullcontext():
            rounds = _event_loop_runner()(
                together(
                    [(int(port), pid) for port, pid in zip(ports, pids, strict=True)],
                    args.kind,
                    ids=args.ids,
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    rounds=args.rounds,
                    tag=args.tag,
                )
            )
        sys.stdout.write(json.dumps({"targets": rounds}) + "\n")
        return 0
    if args.port is None:
        parser.error("--port or --ports is required")
    requests = build_requests(
        args.kind,
        host=f"127.0.0.1:{args.port}",
        ids=args.ids,
        count=200_000 if args.kind in ("post", "delete") else 20_000,
        tag=args.tag,
    )
    result = _event_loop_runner()(
        run(
            "127.0.0.1",
            args.port,
            requests,
            concurrency=args.concurrency,
            seconds=args.seconds,
            warmup=args.warmup,
            server_pid=args.server_pid,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
