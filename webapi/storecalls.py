"""How webapi calls its store from the event loop: reads and writes, each where it cannot
stall the loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from common.store.base import JobStore, WriteWouldWait
from webapi.deadline import STORE, waiting_on

T = TypeVar("T")


async def read(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store read, on the loop or in the thread pool as ``JobStore.blocking`` says."""
    with waiting_on(STORE):
        if store.blocking:
            return await run_in_threadpool(method, *args, **kwargs)
        return method(*args, **kwargs)


async def write(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store write: on the loop when it can start at once (``try_write``: no thread
    hand-off), else in the thread pool, since it may wait for another writer (up to the busy
    timeout), which must never stall the loop."""
    if not store.blocking:
        try:
            return store.try_write(method, *args, **kwargs)
        except WriteWouldWait:
            pass
    with waiting_on(STORE):
        return await run_in_threadpool(method, *args, **kwargs)
