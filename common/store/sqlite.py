"""SQLite job store: the embedded default.

WAL mode so webapi and scheduld (two processes on one machine) read while the other writes;
``BEGIN IMMEDIATE`` for writes; user fields and status live in separate columns so a status
write never touches what a user changed. One connection per thread.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from common.config import SQLiteSettings
from common.errors import JobExistsError, JobNotFoundError, StoreUnavailableError
from common.models import Job, JobStatus
from common.store.base import PAGE_LIMIT, JobChange, JobStore

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY NOT NULL,
    document BLOB NOT NULL,
    status BLOB NOT NULL DEFAULT '{}',
    version INTEGER NOT NULL DEFAULT 1
);
"""


class SQLiteJobStore(JobStore):
    blocking = False  # local file: calls are short enough to run on the event loop

    def __init__(self, settings: SQLiteSettings) -> None:
        self._path = Path(settings.path)
        self._timeout = settings.busy_timeout_seconds
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._translate():
            self._db().execute(_SCHEMA)

    # --- JobStore ------------------------------------------------------------------------

    def create_job(self, job: Job) -> Job:
        with self._translate(), self._write() as db:
            try:
                db.execute(
                    "INSERT INTO jobs (id, document) VALUES (?, ?)",
                    (job.id, orjson.dumps(job.user_document())),
                )
            except sqlite3.IntegrityError as exc:
                raise JobExistsError(job.id) from exc
        return Job.model_validate(job.user_document())

    def get_job(self, job_id: str) -> Job:
        with self._translate():
            row = self._db().execute("SELECT document, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        return _job(row)

    def update_job(self, job_id: str, change: JobChange) -> Job:
        with self._translate(), self._write() as db:
            row = db.execute("SELECT document, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            updated = change(_job(row))
            db.execute(
                "UPDATE jobs SET document = ?, version = version + 1 WHERE id = ?",
                (orjson.dumps(updated.user_document()), job_id),
            )
            return _job((orjson.dumps(updated.user_document()), row[1]))

    def delete_job(self, job_id: str) -> None:
        with self._translate(), self._write() as db:
            if db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 0:
                raise JobNotFoundError(job_id)

    def list_jobs(self, *, skip: int = 0, count: int = 10) -> list[Job]:
        # The inner query walks only the primary-key index, never the documents.
        with self._translate():
            rows = (
                self._db()
                .execute(
                    "SELECT document, status FROM jobs WHERE id IN "
                    "(SELECT id FROM jobs ORDER BY id LIMIT ? OFFSET ?) ORDER BY id",
                    (count, skip),
                )
                .fetchall()
            )
        return [_job(row) for row in rows]

    def scan_jobs(self, *, after: str | None = None, limit: int = PAGE_LIMIT) -> list[Job]:
        with self._translate():
            rows = (
                self._db()
                .execute(
                    "SELECT document, status FROM jobs WHERE id > ? ORDER BY id LIMIT ?",
                    (after or "", limit),
                )
                .fetchall()
            )
        return [_job(row) for row in rows]

    def count_jobs(self) -> int:
        with self._translate():
            (total,) = self._db().execute("SELECT count(*) FROM jobs").fetchone()
        return int(total)

    def update_status(self, job_id: str, status: JobStatus) -> None:
        changes = status.changes()
        with self._translate(), self._write() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            merged = {k: v for k, v in (orjson.loads(row[0]) | changes).items() if v is not None}
            db.execute("UPDATE jobs SET status = ? WHERE id = ?", (orjson.dumps(merged), job_id))

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # --- internals -----------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue, not deadlock."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """sqlite3's errors become StoreUnavailableError; domain errors pass through."""
        try:
            yield
        except sqlite3.Error as exc:
            logger.warning("SQLite store %s failed: %s", self._path, exc)
            raise StoreUnavailableError(f"sqlite {self._path}: {exc}") from exc


def _job(row: tuple[Any, Any]) -> Job:
    document: dict[str, Any] = orjson.loads(row[0])
    status: dict[str, Any] = orjson.loads(row[1])
    return Job.model_validate(document | status)
