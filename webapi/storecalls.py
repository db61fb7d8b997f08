"""How webapi calls its store from the event loop: reads and writes, each where it cannot
stall the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from common.store.base import JobStore, WriteWouldWait
from webapi.deadline import STORE, waiting_on

T = TypeVar("T")

RETRY_PAUSES = (0.0005, 0.001, 0.002)
"""Seconds between tries on the loop of a write that would wait. Another process's write
(scheduld's) holds the lock for well under a millisecond; SQLite's own busy handler sleeps
1 ms at least and then holds this process's writers queue, so every write behind it moves
to the thread pool too (bench/README.md, "Writes")."""


async def read(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store read, on the loop or in the thread pool as ``JobStore.blocking`` says."""
    with waiting_on(STORE):
        if store.blocking:
            return await run_in_threadpool(method, *args, **kwargs)
        return method(*args, **kwargs)


async def write(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store write: on the loop when it can start at once (``try_write``: no thread
    hand-off), tried again there after short pauses, else in the thread pool, since it may
    wait for another writer (up to the busy timeout), which must never stall the loop."""
    if not store.blocking:
        for pause in (*RETRY_PAUSES, None):
            try:
                return store.try_write(method, *args, **kwargs)
            except WriteWouldWait:
                if pause is None:
                    break
            with waiting_on(STORE):
                await asyncio.sleep(pause)
    with waiting_on(STORE):
        return await run_in_threadpool(method, *args, **kwargs)
