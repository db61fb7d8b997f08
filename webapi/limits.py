"""Quotas and write rates (``webapi.limits``): no one client can fill the store or flood it.

Write rates use the ``limits`` library (sliding-window counters in memory, expired by the
library): well kept, a few µs per write, and its window statistics give the ``Retry-After``
without a hand-written token bucket. Reads are not rate-limited. Counters live in this process:
with several webapi containers, each enforces the rate on its own.

Job quotas are checked against the store before a create. Two creates racing for the last
slot may both pass (the check is not a transaction): a quota can be exceeded by at most the
number of creates in flight at that moment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.concurrency import run_in_threadpool

from common.config import LimitsSettings, Settings
from common.errors import QuotaExceededError, RateLimitedError
from common.store.base import JobStore
from webapi.deadline import STORE, waiting_on
from webapi.principal import Principal

T = TypeVar("T")


class WriteLimiter:
    """``webapi.limits.write_rate`` per key (a principal, or a client address)."""

    def __init__(self, settings: LimitsSettings) -> None:
        self.rate = settings.write_rate
        self._items: list[RateLimitItem] = parse_many(self.rate) if self.rate else []
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def hit(self, key: str, whose: str) -> None:
        """Count one write; RateLimitedError (with seconds to wait) if over the rate."""
        for item in self._items:
            if not self._limiter.hit(item, key):
                reset, _ = self._limiter.get_window_stats(item, key)
                raise RateLimitedError(whose, self.rate, max(1, math.ceil(reset - time.time())))


def check_write_rate(request: Request, principal: Principal) -> None:
    """Called by ``authorize`` for writes, once the caller is known (not a dependency of its
    own: FastAPI would solve one more per request, even for the reads it skips; bench/README.md).
    Per principal when tokens are on (one token, one budget, wherever it calls from), per
    client address otherwise."""
    limiter: WriteLimiter = request.app.state.write_limiter
    if not limiter.rate:
        return
    if request.app.state.authenticator.mode == "tokens":
        limiter.hit(f"principal:{principal.name}", principal.name)
    else:
        address = request.client.host if request.client else "unknown"
        limiter.hit(f"client:{address}", f"client {address}")


async def check_job_quota(store: JobStore, principal: Principal, settings: Settings) -> None:
    """QuotaExceededError if one more job would pass ``max_jobs``, or, with tokens,
    ``max_jobs_per_principal`` for the caller (counted by ``Job.created_by``)."""
    limits = settings.webapi.limits
    if limits.max_jobs and await _count(store, store.count_jobs) >= limits.max_jobs:
        raise QuotaExceededError("webapi.limits.max_jobs", limits.max_jobs, "this server")
    if settings.auth.mode == "tokens" and limits.max_jobs_per_principal:
        mine = await _count(store, store.count_jobs_created_by, principal.name)
        if mine >= limits.max_jobs_per_principal:
            raise QuotaExceededError(
                "webapi.limits.max_jobs_per_principal", limits.max_jobs_per_principal, principal.name
            )


async def _count(store: JobStore, method: Callable[..., int], *args: str) -> int:
    with waiting_on(STORE):
        if store.blocking:
            return await run_in_threadpool(method, *args)
        return method(*args)
