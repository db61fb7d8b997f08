"""``storecalls.write``: a write that would wait for another process's short transaction is
tried again on the event loop, and only a longer wait moves it to the thread pool."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from common.config import SQLiteSettings
from common.models import Job
from common.store.sqlite import SQLiteJobStore
from tests.contract.test_jobs import make_job
from webapi.storecalls import RETRY_PAUSES, write


def _writes_while_held(tmp_path: Path, hold_seconds: float | None) -> tuple[Job, bool]:
    """Create a job while another connection (as another process) holds the write lock, for
    ``hold_seconds`` or (None) until just after the first try found it held; returns the
    stored job and whether it was written on the loop's thread."""
    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db", busy_timeout_seconds=5))
    other = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    if hold_seconds is not None:
        threading.Timer(hold_seconds, other.execute, ("ROLLBACK",)).start()
    writers: list[int] = []

    def create(job: Job) -> Job:
        if not writers and hold_seconds is None:  # released once this try has failed
            asyncio.get_running_loop().call_soon(other.execute, "ROLLBACK")
        writers.append(threading.get_ident())
        return store.create_job(job)

    async def main() -> tuple[Job, int]:
        return await write(store, create, make_job("a")), threading.get_ident()

    try:
        created, loop_thread = asyncio.run(main())
        assert store.get_job("a").id == created.id == "a"
        return created, writers[-1] == loop_thread
    finally:
        other.close()
        store.close()


def test_a_short_wait_is_retried_on_the_loop(tmp_path: Path) -> None:
    _, on_loop = _writes_while_held(tmp_path, hold_seconds=None)
    assert on_loop


def test_a_long_wait_moves_to_the_thread_pool(tmp_path: Path) -> None:
    _, on_loop = _writes_while_held(tmp_path, hold_seconds=sum(RETRY_PAUSES) + 0.5)
    assert not on_loop
