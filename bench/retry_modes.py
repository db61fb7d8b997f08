"""Throttled RunTask herds under botocore's retry modes, with and without a client-side bucket.

A fake ECS on 127.0.0.1 admits ``--limit`` RunTask calls a second (a server-side token
bucket, as ECS's API throttling) and answers ThrottlingException beyond it. ``--threads``
callers each send ``--calls`` RunTask calls; the script reports, per configuration, the wall
time, the throttled answers the server gave and the calls that failed after all attempts.

    .venv/bin/python -m bench.retry_modes --limit 20 --threads 16 --calls 10
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from bench.fake_aws import client
from tests.servers import AWSJSONEndpoint

logger = logging.getLogger("bench.retry_modes")


class Bucket:
    """``rate`` tokens a second, bursts up to ``rate``: ECS's throttling on the server side,
    and the hand-written client-side limiter scheduld used before botocore's adaptive mode."""

    def __init__(self, rate: float) -> None:
        self._rate, self._tokens, self._updated = rate, rate, time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token: 0 if taken, else the seconds until one is free."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate

    def acquire(self) -> None:
        while (wait := self.take()) > 0:
            time.sleep(wait)


class ThrottlingECS(AWSJSONEndpoint):
    def __init__(self, limit: float) -> None:
        super().__init__()
        self._bucket = Bucket(limit)
        self.admitted = 0
        self.throttled = 0

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._bucket.take() > 0:
            self.throttled += 1
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        self.admitted += 1
        return 200, {"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:1:task/c/x"}], "failures": []}


def measure(mode: str, bucket: float, *, limit: float, threads: int, calls: int) -> dict[str, Any]:
    with ThrottlingECS(limit) as ecs:
        retries: Any = {"mode": mode, "max_attempts": 5}
        ecs_client = client("ecs", ecs.url, Config(retries=retries, max_pool_connections=threads))
        limiter = Bucket(bucket) if bucket else None
        failed = 0
        lock = threading.Lock()

        def caller() -> None:
            nonlocal failed
            for _ in range(calls):
                if limiter:
                    limiter.acquire()
                try:
                    ecs_client.run_task(cluster="c", taskDefinition="td")
                except ClientError:
                    with lock:
                        failed += 1

        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(threads):
                pool.submit(caller)
        elapsed = time.monotonic() - started
        return {
            "mode": mode,
            "client_bucket": bucket or "off",
            "seconds": round(elapsed, 2),
            "throttled_answers": ecs.throttled,
            "failed_calls": failed,
            "launched": ecs.admitted,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=20)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--bucket", type=float, default=0, help="client bucket rate (default: --limit)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for mode, bucket in (("standard", 0.0), ("standard", args.bucket or args.limit), ("adaptive", 0.0)):
        result = measure(mode, bucket, limit=args.limit, threads=args.threads, calls=args.calls)
        logger.info("%s", result)


if __name__ == "__main__":
    main()
