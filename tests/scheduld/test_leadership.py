"""Leadership through the store's lease: one leader, renewals, stepping down in time."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from common.config import SQLiteSettings
from common.models import Lease
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
