"""The SQLite outbox table as earlier versions made it (AUTOINCREMENT) is rebuilt on open,
its waiting events kept and sent as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.config import SQLiteSettings
from common.store.sqlite import SQLiteJobStore
from tests.contract.test_jobs import make_job


def test_an_autoincrement_outbox_is_rebuilt_with_its_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SQLiteJobStore(SQLiteSettings(path=path))
    store.create_job(make_job("a"))
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE outbox RENAME TO outbox_new")  # as the old schema made it
    db.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, "
        "recorded_at REAL NOT NULL, claimed_until REAL NOT NULL DEFAULT 0)"
    )
    db.execute("INSERT INTO outbox SELECT * FROM outbox_new")
    db.execute("DROP TABLE outbox_new")
    db.close()

    store = SQLiteJobStore(SQLiteSettings(path=path))
    store.create_job(make_job("b"))
    (sql,) = store._db().execute("SELECT sql FROM sqlite_master WHERE name = 'outbox'").fetchone()
    assert "AUTOINCREMENT" not in sql
    entries = store.claim_events(limit=10)
    assert [(entry.event.op, entry.event.job_id) for entry in entries] == [("add", "a"), ("add", "b")]
    store.remove_events([entry.id for entry in entries])
    assert store.outbox_backlog() == (0, None)
    store.close()
