"""How webapi calls its store from the event loop: reads and writes, each where it cannot
stall the loop."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from common.store.base import JobStore, WriteWouldWait
from webapi.deadline import STORE, waiting_on

T = TypeVar("T")

RETRY_PAUSES = (0.0005, 0.001, 0.002, 0.004)
"""Seconds between tries on the loop of a write that would wait, the last repeated until
``LOOP_WAIT_SECONDS``. Another process's write (scheduld's) holds SQLite's lock for a few
milliseconds; SQLite's own busy handler, in a thread, sleeps in steps up to 100 ms, during
which this process's writers queue behind it (bench/README.md, "Writes")."""
LOOP_WAIT_SECONDS = 1.0
"""How long a write waits on the loop before the thread pool waits for it, in SQLite's busy
handler, up to the store's busy timeout."""

_waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Any, asyncio.Lock]]
_waiting = weakref.WeakKeyDictionary()


async def read(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store read, on the loop or in the thread pool as ``JobStore.blocking`` says."""
    with waiting_on(STORE):
        if store.blocking:
            return await run_in_threadpool(method, *args, **kwargs)
        return method(*args, **kwargs)


async def write(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store write: on the loop when it can start at once (``try_write``: no thread
    hand-off). One that would wait queues behind this process's other waiting writes, and
    the first in the queue tries again after short pauses, for up to ``LOOP_WAIT_SECONDS``;
    past that the thread pool waits for it, since only there may it block."""
    if not store.blocking:
        try:
            return store.try_write(method, *args, **kwargs)
        except WriteWouldWait:
            pass
        with waiting_on(STORE):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LOOP_WAIT_SECONDS  # the time in the queue counts too
            queue = _queue(store)
            first = not queue.locked()  # its try just failed: pause before the next
            async with queue:
                pauses = iter(RETRY_PAUSES)
                pause = next(pauses) if first else 0.0  # behind another: the store just took one
                while loop.time() < deadline:
                    await asyncio.sleep(pause)
                    try:
                        return store.try_write(method, *args, **kwargs)
                    except WriteWouldWait:
                        pause = next(pauses, pause)
    with waiting_on(STORE):
        return await run_in_threadpool(method, *args, **kwargs)


def _queue(store: JobStore) -> asyncio.Lock:
    """This loop's queue of writes to ``store`` that found it busy."""
    per_store = _waiting.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    lock = per_store.get(store)
    if lock is None:
        lock = per_store[store] = asyncio.Lock()
    return lock
