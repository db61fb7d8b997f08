"""``storecalls.write``: a write that would wait for another process's transaction waits on
the event loop, queued behind this process's other waiting writes, and only a long wait
moves it to the thread pool. The other process is a second SQLite connection holding the
write lock, on a real file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import SQLiteSettings
from common.models import Job
from common.store.sqlite import SQLiteJobStore
from tests.contract.test_jobs import make_job
from webapi import storecalls
from webapi.storecalls import write


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db", busy_timeout_seconds=5))
    yield store
    store.close()


def _creates(
    store: SQLiteJobStore, tmp_path: Path, ids: list[str], *, held_for: float
) -> tuple[list[Job], list[int], int, int]:
    """Create the jobs concurrently through ``write`` while another connection to the file
    holds its write lock for ``held_for`` seconds, as another process would; (jobs, the thread
    of each try, the loop's thread, how often a ticker on the loop ran meanwhile)."""
    holder = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(held_for, holder.execute, ("ROLLBACK",)).start()
    threads: list[int] = []

    def create(job: Job) -> Job:
        threads.append(threading.get_ident())
        return store.create_job(job)

    async def main() -> tuple[list[Job], int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        jobs = await asyncio.gather(*(write(store, create, make_job(job_id)) for job_id in ids))
        ticking.cancel()
        return list(jobs), threading.get_ident(), ticks

    try:
        jobs, loop_thread, ticks = asyncio.run(main())
    finally:
        holder.close()
    return jobs, threads, loop_thread, ticks


def test_a_short_wait_is_retried_on_the_loop(store: SQLiteJobStore, tmp_path: Path) -> None:
    jobs, threads, loop_thread, ticks = _creates(store, tmp_path, ["a"], held_for=0.05)
    assert [job.id for job in jobs] == ["a"] and store.get_job("a").id == "a"
    assert set(threads) == {loop_thread}
    assert ticks >= 5  # the loop went on serving while the write waited 50 ms


def test_writes_that_find_the_store_busy_queue_and_one_of_them_tries(
    store: SQLiteJobStore, tmp_path: Path
) -> None:
    """Twenty writes during a 100 ms hold: each tries once, then only the first in the queue
    tries again (every 4 ms at most); the others follow once it is through."""
    ids = [f"job{n:02d}" for n in range(20)]
    jobs, threads, loop_thread, _ = _creates(store, tmp_path, ids, held_for=0.1)
    assert sorted(job.id for job in jobs) == ids
    assert len(store.get_jobs(ids)) == 20
    assert set(threads) == {loop_thread}
    # 20 first tries + at most 100 ms / (0.5, 1, 2, 4, 4 ... ms) ≈ 28 for the head + 19;
    # twenty writers each trying on their own would be ~500
    assert len(threads) <= 20 + 30 + 19


def test_a_long_wait_moves_to_the_thread_pool(
    store: SQLiteJobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storecalls, "LOOP_WAIT_SECONDS", 0.05)
    jobs, threads, loop_thread, ticks = _creates(store, tmp_path, ["a"], held_for=0.3)
    assert store.get_job("a").id == jobs[0].id
    assert threads[0] == loop_thread and threads[-1] != loop_thread  # SQLite's busy wait, in a thread
    assert ticks >= 50  # never on the loop


def test_the_time_in_the_queue_counts_towards_the_wait_on_the_loop(
    store: SQLiteJobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five writes during a long hold: past ``LOOP_WAIT_SECONDS`` from their first try, those
    still queued go to the thread pool without taking a turn at waiting on the loop each."""
    monkeypatch.setattr(storecalls, "LOOP_WAIT_SECONDS", 0.1)
    ids = [f"job{n}" for n in range(5)]
    jobs, threads, loop_thread, _ = _creates(store, tmp_path, ids, held_for=0.6)
    assert sorted(job.id for job in jobs) == ids
    on_loop = threads.count(loop_thread)
    assert len(threads) - on_loop == 5  # each written in the thread pool in the end
    # 5 first tries + the head's ≤ ~26 in 0.1 s + one each for the others; a fresh 0.1 s
    # for each in turn would be ~130
    assert on_loop <= 5 + 30 + 4
