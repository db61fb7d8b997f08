"""Leadership through the store's lease: one leader, renewals, stepping down in time."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.config import SchedulerSettings, SQLiteSettings
from common.errors import LeaseLostError
from common.models import Job, JobStatus, Lease, Run
from common.store.sqlite import SQLiteJobStore
from scheduld.leadership import Leadership


def replica(store: SQLiteJobStore, holder: str, ttl: float, events: list[str]) -> Leadership:
    def elected(lease: Lease) -> None:
        events.append(f"{holder} elected {lease.token}")

    def deposed() -> None:
        events.append(f"{holder} deposed")

    return Leadership(store, holder=holder, ttl=ttl, on_elected=elected, on_deposed=deposed)


def test_one_leader_then_the_standby_after_expiry(tmp_path: Path) -> None:
    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db"))
    events: list[str] = []
    a, b = replica(store, "a", 0.6, events), replica(store, "b", 0.6, events)
    a.tick()
    b.tick()
    assert events == ["a elected 1"] and a.current() is not None and b.current() is None
    time.sleep(0.7)  # "a" stops renewing (it died)
    assert a.current() is None  # it would not fire any more either
    b.tick()
    assert events[-1] == "b elected 2"
    a.tick()  # "a" comes back: the lease is taken
    assert events[-1] == "a deposed" and a.current() is None
    store.close()


def test_a_leader_cut_off_from_the_store_stops_before_its_lease_expires(tmp_path: Path) -> None:
    """The store is really unavailable: another connection holds an exclusive lock."""
    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db", busy_timeout_seconds=0.05))
    events: list[str] = []
    leader = replica(store, "a", 1.5, events)
    leader.tick()
    elected_at = time.monotonic()
    lease = leader.current()
    assert lease is not None
    blocker = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        leader.tick()  # renewal fails, but the safety margin has not run out: still leading
        assert leader.current() is not None and events == ["a elected 1"]
        while leader.current() is not None:
            time.sleep(0.02)
        stopped_at = time.monotonic()
        leader.tick()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert events == ["a elected 1", "a deposed"]
    assert stopped_at - elected_at < 1.5  # it stopped acting as leader before the lease expired
    store.close()


def test_a_leader_busy_firing_a_thousand_jobs_keeps_its_lease(tmp_path: Path) -> None:
    """A fire pool's worth of threads claims and records runs of 1 000 jobs as fast as the
    store lets them, under the leader's lease, while the leader renews on its own thread at
    the default lifetime and a standby (its own connections, as another process) keeps
    bidding: the lease never changes hands and the leader never pauses."""
    ttl = SchedulerSettings().lease_ttl_seconds
    path = tmp_path / "jobs.db"
    store, standby_store = (
        SQLiteJobStore(SQLiteSettings(path=path)),
        SQLiteJobStore(SQLiteSettings(path=path)),
    )
    for n in range(1000):
        store.create_job(Job(id=f"job{n:04d}", task_definition="t", schedule="*"))
    events: list[str] = []
    leader, standby = replica(store, "a", ttl, events), replica(standby_store, "b", ttl, events)
    stop = threading.Event()
    leader.tick()
    lease = leader.current()
    assert lease is not None
    threads = [
        threading.Thread(target=leader.run, args=(stop,)),
        threading.Thread(target=standby.run, args=(stop,)),
    ]
    fires, paused, lost = [0], [0], [0]

    def fire_pool(worker: int) -> None:
        second = datetime.now(UTC).replace(microsecond=0)
        while not stop.is_set():
            second += timedelta(seconds=1)
            for n in range(worker, 1000, 32):
                if stop.is_set():
                    return  # the leader steps down when stopped: not a pause
                current = leader.current()
                if current is None:
                    paused[0] += 1
                    continue
                run = Run(job_id=f"job{n:04d}", scheduled_for=second, replica="a", token=current.token)
                try:
                    claimed = store.claim_run(run, current)
                except LeaseLostError:
                    lost[0] += not stop.is_set()  # a stopping leader releases its lease
                    continue
                if claimed:
                    store.record_run(
                        run.model_copy(update={"status": "launched"}), JobStatus(last_run=second), keep=5
                    )
                    fires[0] += 1

    threads += [threading.Thread(target=fire_pool, args=(w,)) for w in range(32)]
    for thread in threads:
        thread.start()
    time.sleep(4 * ttl)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    store.close()
    standby_store.close()
    assert fires[0] > 1000
    assert events[:1] == ["a elected 1"] and "b elected" not in " ".join(events)
    assert paused[0] == 0 and lost[0] == 0
