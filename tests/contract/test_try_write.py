"""``JobStore.try_write``: a write starts at once or not at all (WriteWouldWait, nothing done),
so an event loop can write without a thread hand-off and still never wait on a lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from common.config import SQLiteSettings
from common.errors import JobNotFoundError
from common.store.base import Store, WriteWouldWait
from common.store.sqlite import SQLiteJobStore
from tests.contract.test_jobs import make_job


def test_an_uncontended_write_happens_at_once_where_the_store_allows_it(store: Store) -> None:
    if store.blocking:  # a networked store always leaves the write to a thread
        with pytest.raises(WriteWouldWait):
            store.try_write(store.create_job, make_job("a"))
        with pytest.raises(JobNotFoundError):
            store.get_job("a")
        return
    store.try_write(store.create_job, make_job("a"))
    store.try_write(store.update_job, "a", lambda job: job.model_copy(update={"task_count": 2}))
    assert store.get_job("a").task_count == 2
    store.try_write(store.delete_job, "a")
    with pytest.raises(JobNotFoundError):
        store.get_job("a")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> SQLiteJobStore:
    return SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db", busy_timeout_seconds=5))


def test_while_another_process_writes_it_would_wait_and_does_nothing(
    sqlite_store: SQLiteJobStore, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    started = time.monotonic()
    with pytest.raises(WriteWouldWait):
        sqlite_store.try_write(sqlite_store.create_job, make_job("a"))
    assert time.monotonic() - started < 1  # no busy wait (the busy timeout is 5 s)
    other.execute("ROLLBACK")
    with pytest.raises(JobNotFoundError):
        sqlite_store.get_job("a")
    sqlite_store.try_write(sqlite_store.create_job, make_job("a"))  # free again: at once
    sqlite_store.create_job(make_job("b"))  # and ordinary writes still wait as before
    assert {job.id for job in sqlite_store.list_jobs()} == {"a", "b"}


def test_while_a_thread_of_this_process_writes_it_would_wait(sqlite_store: SQLiteJobStore) -> None:
    sqlite_store.create_job(make_job("a"))
    inside, release = threading.Event(), threading.Event()

    def slow_change(job: object) -> object:
        inside.set()
        release.wait(5)
        return job

    writer = threading.Thread(target=sqlite_store.update_job, args=("a", slow_change))
    writer.start()
    assert inside.wait(5)
    with pytest.raises(WriteWouldWait):
        sqlite_store.try_write(sqlite_store.create_job, make_job("b"))
    release.set()
    writer.join()
    with pytest.raises(JobNotFoundError):
        sqlite_store.get_job("b")
