"""SQLite job store: the embedded default.

WAL mode so webapi and scheduld (two processes on one machine) read while the other writes;
``BEGIN IMMEDIATE`` for writes; user fields and status live in separate columns so a status
write never touches what a user changed. One connection per thread, reopened after an error
(a connection opened while the file was read-only would otherwise stay read-only for ever).

Its file's identity and integrity are guarded by ``sqlite_file.StoreFile``: checked before
every write, so a removed or replaced file refuses writes instead of losing them.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from common.config import SQLiteSettings
from common.errors import (
    JobExistsError,
    JobNotFoundError,
    LeaseLostError,
    RunNotFoundError,
    StoreUnavailableError,
)
from common.models import ChangeEvent, ChangeOp, Job, JobStatus, Lease, Run, outcome_status, run_id
from common.store.base import PAGE_LIMIT, JobChange, OutboxEntry, RunRecord, Store, T, WriteWouldWait
from common.store.sqlite_file import StoreFile

logger = logging.getLogger(__name__)

_IDS_PER_QUERY = 500  # well under SQLite's bound on a statement's parameters (999 before 3.32)
_OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        body BLOB NOT NULL,
        recorded_at REAL NOT NULL,
        claimed_until REAL NOT NULL DEFAULT 0
    )"""
"""Row ids may be reused once the newest event is removed (no AUTOINCREMENT: its counter
update cost a quarter of a write's SQL, bench/README.md "Writes"), so an event's outbox id
carries its claim too, and a removal with a lost claim removes nothing (``remove_events``)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY NOT NULL,
        document BLOB NOT NULL,
        status BLOB NOT NULL DEFAULT '{}',
        version INTEGER NOT NULL DEFAULT 1
    )""",
    # one row per (job, scheduled time): the primary key makes a claim create-if-absent
    """CREATE TABLE IF NOT EXISTS runs (
        job_id TEXT NOT NULL,
        scheduled_for TEXT NOT NULL,
        token INTEGER NOT NULL,
        status TEXT NOT NULL,
        document BLOB NOT NULL,
        PRIMARY KEY (job_id, scheduled_for)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS runs_claimed ON runs (token) WHERE status = 'claimed'",
    "CREATE INDEX IF NOT EXISTS runs_pending ON runs (scheduled_for) "
    "WHERE status IN ('requested', 'retrying')",
    "CREATE INDEX IF NOT EXISTS runs_open ON runs (job_id, scheduled_for) "
    "WHERE status IN ('launched', 'partially_launched')",
    # change events recorded with the writes they announce; the relay sends and removes them
    _OUTBOX,
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY NOT NULL,
        holder TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_at REAL NOT NULL
    )""",
)


class SQLiteJobStore(Store):
    blocking = False  # local file: calls are short enough to run on the event loop

    def __init__(self, settings: SQLiteSettings) -> None:
        self._path = Path(settings.path)
        self._timeout = settings.busy_timeout_seconds
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ordinary_writers = threading.Lock()  # see _write: lease writes skip this queue
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = StoreFile(self._path)
        with self._translate(), self._write() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            _add_created_by(db)
            _outbox_without_autoincrement(db)
            self._file.adopt(db)
        self._file.settle()
        self.identity = self._file.identity

    # --- jobs (JobStore) ------------------------------------------------------------------

    def create_job(self, job: Job) -> Job:
        document = job.user_document()
        with self._translate(), self._write() as db:
            try:
                db.execute(
                    "INSERT INTO jobs (id, document, created_by) VALUES (?, ?, ?)",
                    (job.id, orjson.dumps(document), job.created_by),
                )
            except sqlite3.IntegrityError as exc:
                raise JobExistsError(job.id) from exc
            _record_event(db, "add", job.id)
        return Job.model_validate(document)

    def get_job(self, job_id: str) -> Job:
        with self._translate():
            row = self._db().execute("SELECT document, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        return _job(row)

    def get_jobs(self, job_ids: Collection[str]) -> dict[str, Job]:
        wanted = list(dict.fromkeys(job_ids))
        rows: list[tuple[Any, Any]] = []
        with self._translate():
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                query = f"SELECT document, status FROM jobs WHERE id IN ({','.join('?' * len(chunk))})"
                rows += self._db().execute(query, chunk).fetchall()
        jobs = [_job(row) for row in rows]
        return {job.id: job for job in jobs}

    def get_job_document(self, job_id: str) -> dict[str, Any]:
        with self._translate():
            row = self._db().execute("SELECT document, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        return _document(row)

    def list_job_documents(self, *, skip: int = 0, count: int = 10) -> list[dict[str, Any]]:
        return [_document(row) for row in self._page_rows(skip, count)]

    def update_job(self, job_id: str, change: JobChange) -> Job:
        with self._translate(), self._write() as db:
            row = db.execute("SELECT document, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            document = orjson.dumps(change(_job(row)).user_document())
            db.execute("UPDATE jobs SET document = ?, version = version + 1 WHERE id = ?", (document, job_id))
            _record_event(db, "modify", job_id)
            return _job((document, row[1]))

    def delete_job(self, job_id: str) -> None:
        with self._translate(), self._write() as db:
            if db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 0:
                raise JobNotFoundError(job_id)
            db.execute("DELETE FROM runs WHERE job_id = ?", (job_id,))
            _record_event(db, "remove", job_id)

    def list_jobs(self, *, skip: int = 0, count: int = 10) -> list[Job]:
        return [_job(row) for row in self._page_rows(skip, count)]

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

    def count_jobs_created_by(self, principal: str) -> int:
        with self._translate():
            query = "SELECT count(*) FROM jobs WHERE created_by = ?"
            (total,) = self._db().execute(query, (principal,)).fetchone()
        return int(total)

    def update_status(self, job_id: str, status: JobStatus) -> None:
        with self._translate(), self._write() as db:
            _update_status(db, job_id, status)

    def update_statuses(self, statuses: Mapping[str, JobStatus]) -> list[str]:
        missing: list[str] = []
        with self._translate(), self._write() as db:
            for job_id, status in statuses.items():
                try:
                    _update_status(db, job_id, status)
                except JobNotFoundError:
                    missing.append(job_id)
        return missing

    # --- run log (RunLog) -----------------------------------------------------------------

    def claim_run(self, run: Run, lease: Lease) -> bool:
        return self.claim_runs([run], lease)[0]

    def claim_runs(self, runs: Sequence[Run], lease: Lease) -> list[bool]:
        with self._translate(), self._write() as db:
            self._check_lease(db, lease)
            return [_claim_run(db, run, lease) for run in runs]

    def finish_run(self, run: Run) -> None:
        with self._translate(), self._write() as db:
            _finish_run(db, run)

    def record_run(
        self, run: Run, status: JobStatus, *, keep: int, older_than: datetime | None = None
    ) -> bool:
        return self.record_runs([RunRecord(run, status, keep, older_than)])[0]

    def record_runs(self, records: Sequence[RunRecord]) -> list[bool]:
        with self._translate(), self._write() as db:
            return [_record_run(db, record) for record in records]

    def unfinished_runs(self, *, older_than_token: int, limit: int = 1000) -> list[Run]:
        with self._translate():
            rows = (
                self._db()
                .execute(
                    "SELECT document FROM runs WHERE status = 'claimed' AND token < ? LIMIT ?",
                    (older_than_token, limit),
                )
                .fetchall()
            )
        return [Run.model_validate(orjson.loads(row[0])) for row in rows]

    def list_runs(self, job_id: str, *, skip: int = 0, count: int = 10) -> list[Run]:
        with self._translate():
            rows = (
                self._db()
                .execute(
                    "SELECT document FROM runs WHERE job_id = ? ORDER BY scheduled_for DESC LIMIT ? OFFSET ?",
                    (job_id, count, skip),
                )
                .fetchall()
            )
        return [Run.model_validate(orjson.loads(row[0])) for row in rows]

    def open_runs(self, *, after: str | None = None, limit: int = 1000) -> list[Run]:
        job_id, scheduled_for = after.split("@", 1) if after else ("", "")
        with self._translate():
            rows = (
                self._db()
                .execute(
                    "SELECT document FROM runs WHERE status IN ('launched', 'partially_launched') "
                    "AND (job_id, scheduled_for) > (?, ?) ORDER BY job_id, scheduled_for LIMIT ?",
                    (job_id, scheduled_for, limit),
                )
                .fetchall()
            )
        return [Run.model_validate(orjson.loads(row[0])) for row in rows]

    def record_outcome(self, run: Run) -> bool:
        key = (run.job_id, _time_key(run.scheduled_for))
        with self._translate(), self._write() as db:
            written = db.execute(
                "UPDATE runs SET status = ?, document = ? WHERE job_id = ? AND scheduled_for = ? "
                "AND status IN ('launched', 'partially_launched')",
                (run.status, orjson.dumps(run.to_document()), *key),
            ).rowcount
            if not written:
                return False
            if not run.in_flight:
                row = db.execute("SELECT status FROM jobs WHERE id = ?", (run.job_id,)).fetchone()
                if row is not None:
                    previous = JobStatus.model_validate(orjson.loads(row[0]))
                    _update_status(db, run.job_id, outcome_status(previous, run))
        return True

    def get_run(self, job_id: str, scheduled_for: datetime) -> Run:
        with self._translate():
            row = (
                self._db()
                .execute(
                    "SELECT document FROM runs WHERE job_id = ? AND scheduled_for = ?",
                    (job_id, _time_key(scheduled_for)),
                )
                .fetchone()
            )
        if row is None:
            raise RunNotFoundError(job_id, run_id(job_id, scheduled_for))
        return Run.model_validate(orjson.loads(row[0]))

    def request_runs(self, runs: list[Run]) -> list[Run]:
        stored: list[Run] = []
        with self._translate(), self._write() as db:
            for run in runs:
                if run.idempotency_key is not None:
                    row = db.execute(
                        "SELECT document FROM runs WHERE job_id = ? "
                        "AND json_extract(CAST(document AS TEXT), '$.idempotencyKey') = ?",
                        (run.job_id, run.idempotency_key),
                    ).fetchone()
                    if row is not None:
                        stored.append(Run.model_validate(orjson.loads(row[0])))
                        continue
                key = (run.job_id, _time_key(run.scheduled_for))
                inserted = db.execute(
                    "INSERT OR IGNORE INTO runs (job_id, scheduled_for, token, status, document) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (*key, run.token, run.status, orjson.dumps(run.to_document())),
                ).rowcount
                if inserted:
                    stored.append(run)
                else:
                    row = db.execute(
                        "SELECT document FROM runs WHERE job_id = ? AND scheduled_for = ?", key
                    ).fetchone()
                    stored.append(Run.model_validate(orjson.loads(row[0])))
            for job_id in dict.fromkeys(run.job_id for run in runs):
                _record_event(db, "run", job_id)
        return stored

    def pending_runs(self, *, limit: int = 1000) -> list[Run]:
        with self._translate():
            rows = (
                self._db()
                .execute(
                    "SELECT document FROM runs WHERE status IN ('requested', 'retrying') "
                    "ORDER BY scheduled_for LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [Run.model_validate(orjson.loads(row[0])) for row in rows]

    def reclaim_run(self, run: Run, lease: Lease, *, expect: str) -> bool:
        with self._translate(), self._write() as db:
            self._check_lease(db, lease)
            changed = db.execute(
                "UPDATE runs SET token = ?, status = ?, document = ? "
                "WHERE job_id = ? AND scheduled_for = ? AND status = ? AND token <= ?",
                (
                    lease.token,
                    run.status,
                    orjson.dumps(run.model_copy(update={"token": lease.token}).to_document()),
                    run.job_id,
                    _time_key(run.scheduled_for),
                    expect,
                    lease.token,
                ),
            ).rowcount
        return bool(changed)

    def prune_runs(self, job_id: str, *, keep: int, older_than: datetime | None = None) -> int:
        with self._translate(), self._write() as db:
            return _prune_runs(db, job_id, keep=keep, older_than=older_than)

    # --- outbox (Outbox) ------------------------------------------------------------------

    def claim_events(self, *, limit: int = 100, claim_seconds: float = 10.0) -> list[OutboxEntry]:
        now = time.time()
        with self._translate():  # a read first: an idle relay's poll takes no write lock
            if (
                self._db().execute("SELECT 1 FROM outbox WHERE claimed_until <= ? LIMIT 1", (now,)).fetchone()
                is None
            ):
                return []
        until = now + claim_seconds
        with self._translate(), self._write() as db:
            rows = db.execute(
                "UPDATE outbox SET claimed_until = ? WHERE id IN "
                "(SELECT id FROM outbox WHERE claimed_until <= ? ORDER BY id LIMIT ?) "
                "RETURNING id, body, recorded_at",
                (until, now, limit),
            ).fetchall()
        rows.sort()
        return [
            OutboxEntry(
                id=f"{row[0]}@{until!r}",  # the claim: see _OUTBOX
                event=ChangeEvent.model_validate_json(row[1]),
                recorded_at=datetime.fromtimestamp(row[2], UTC),
            )
            for row in rows
        ]

    def remove_events(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        claims = [entry_id.partition("@") for entry_id in ids]
        with self._translate(), self._write() as db:
            db.executemany(
                "DELETE FROM outbox WHERE id = ? AND claimed_until = ?",
                [(int(row_id), float(claim)) for row_id, _, claim in claims],
            )

    def outbox_backlog(self) -> tuple[int, datetime | None]:
        with self._translate():
            count, oldest = self._db().execute("SELECT count(*), min(recorded_at) FROM outbox").fetchone()
        return int(count), (datetime.fromtimestamp(oldest, UTC) if oldest is not None else None)

    # --- leases (LeaseStore) --------------------------------------------------------------

    def acquire_lease(self, name: str, *, holder: str, ttl: float) -> Lease | None:
        now = time.time()
        with self._translate(), self._write(lease=True) as db:
            row = db.execute(
                "SELECT holder, token, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                token = 1
            elif row[0] == holder and row[2] > now:
                token = row[1]  # renewal keeps the token
            elif row[2] <= now:
                token = row[1] + 1  # expired: a new term, whoever takes it
            else:
                return None
            db.execute(
                "INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, token = excluded.token, "
                "expires_at = excluded.expires_at",
                (name, holder, token, now + ttl),
            )
        return Lease(name=name, holder=holder, token=token, expires_at=datetime.fromtimestamp(now + ttl, UTC))

    def release_lease(self, lease: Lease) -> None:
        with self._translate(), self._write(lease=True) as db:
            db.execute(
                "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?",
                (lease.name, lease.holder, lease.token),
            )

    def _check_lease(self, db: sqlite3.Connection, lease: Lease) -> None:
        row = db.execute(
            "SELECT holder, token, expires_at FROM leases WHERE name = ?", (lease.name,)
        ).fetchone()
        if row is None or row[0] != lease.holder or row[1] != lease.token or row[2] <= time.time():
            raise LeaseLostError(lease.holder, lease.token)

    def verify(self) -> None:
        """The file is still the one opened, and answers a read."""
        self._file.check()
        with self._translate():
            self._db().execute("SELECT 1 FROM jobs LIMIT 1").fetchall()

    def close(self) -> None:
        """Waits for a write under way (one still queued for SQLite's lock, at shutdown): a
        connection closed under a running statement crashes the interpreter."""
        with self._write_lock, self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # --- internals ------------------------------------------------------------------------

    def _page_rows(self, skip: int, count: int) -> list[tuple[Any, Any]]:
        # The inner query walks only the primary-key index, never the documents.
        with self._translate():
            rows: list[tuple[Any, Any]] = (
                self._db()
                .execute(
                    "SELECT document, status FROM jobs WHERE id IN "
                    "(SELECT id FROM jobs ORDER BY id LIMIT ? OFFSET ?) ORDER BY id",
                    (count, skip),
                )
                .fetchall()
            )
        return rows

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

    def _drop_connection(self) -> None:
        """Forget this thread's connection after an error; the next call opens a fresh one."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            return
        self._local.connection = None
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        with contextlib.suppress(sqlite3.Error):
            connection.close()

    def try_write(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Writes that start at once: this process's writers are idle (their locks are free)
        and no other process holds SQLite's write lock (``BEGIN IMMEDIATE`` with no busy wait).
        Once begun, a WAL write transaction waits for nothing."""
        self._local.at_once = True
        try:
            return write(*args, **kwargs)
        finally:
            self._local.at_once = False

    @contextlib.contextmanager
    def _write(self, *, lease: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue, not deadlock.

        Threads of this process queue on a lock first: SQLite's own busy handler waits by
        sleeping in growing steps (up to 100 ms), which under load costs far more than the
        writes. Other processes still meet the busy handler, rarely.

        Ordinary writers queue on a first lock, so at most one of them competes for the write
        lock; a lease write goes straight to the write lock and so waits for one write at
        most, however many fires queue behind it (a busy leader must not miss its renewal).
        """
        self._file.check()  # until settled, there is nothing to compare with
        db = self._db()
        at_once = getattr(self._local, "at_once", False)
        queued: list[threading.Lock] = []  # not an ExitStack: a few µs a write (bench/README.md)
        try:
            for lock in (self._write_lock,) if lease else (self._ordinary_writers, self._write_lock):
                if not lock.acquire(blocking=not at_once):
                    raise WriteWouldWait
                queued.append(lock)
            if at_once:
                _begin_without_waiting(db, self._timeout)
            else:
                db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
        finally:
            for lock in reversed(queued):
                lock.release()

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """sqlite3's errors become StoreUnavailableError (no path in the message: it reaches
        clients; the log has it); domain errors pass through. The failed connection goes."""
        try:
            yield
        except sqlite3.Error as exc:
            logger.warning("SQLite store %s failed: %s", self._path, exc)
            self._drop_connection()
            raise StoreUnavailableError(f"SQLite error: {exc}") from exc


def _add_created_by(db: sqlite3.Connection) -> None:
    """The indexed column job quotas count by; added to databases made before it existed
    (their jobs have no creator and count for nobody)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if "created_by" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN created_by TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_created_by ON jobs (created_by) WHERE created_by IS NOT NULL")


def _outbox_without_autoincrement(db: sqlite3.Connection) -> None:
    """Databases made while the outbox had AUTOINCREMENT: rebuilt as ``_OUTBOX``, rows kept."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
    if "AUTOINCREMENT" not in sql.upper():
        return
    db.execute("ALTER TABLE outbox RENAME TO outbox_autoincrement")
    db.execute(_OUTBOX)
    db.execute(
        "INSERT INTO outbox (id, body, recorded_at, claimed_until) "
        "SELECT id, body, recorded_at, claimed_until FROM outbox_autoincrement"
    )
    db.execute("DROP TABLE outbox_autoincrement")


def _begin_without_waiting(db: sqlite3.Connection, busy_timeout: float) -> None:
    """BEGIN IMMEDIATE, or WriteWouldWait if another process holds the write lock."""
    db.execute("PRAGMA busy_timeout=0")
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise WriteWouldWait from exc
    finally:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")


def _record_event(db: sqlite3.Connection, op: ChangeOp, job_id: str) -> None:
    """The change event of a write, in the write's own transaction (the outbox)."""
    event = ChangeEvent(op=op, job_id=job_id)
    db.execute(
        "INSERT INTO outbox (body, recorded_at) VALUES (?, ?)",
        (event.to_json(), event.sent_at.timestamp()),
    )


def _time_key(moment: datetime) -> str:
    """Fixed-width UTC text, so ordering text orders time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _document(row: tuple[Any, Any]) -> dict[str, Any]:
    """Stored documents are validated on the way in: merge them as they are."""
    document: dict[str, Any] = orjson.loads(row[0])
    status: dict[str, Any] = orjson.loads(row[1])
    return document | status


def _job(row: tuple[Any, Any]) -> Job:
    document: dict[str, Any] = orjson.loads(row[0])
    status: dict[str, Any] = orjson.loads(row[1])
    return Job.model_validate(document | status)


def _update_status(db: sqlite3.Connection, job_id: str, status: JobStatus) -> None:
    row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFoundError(job_id)
    merged = {k: v for k, v in (orjson.loads(row[0]) | status.changes()).items() if v is not None}
    db.execute("UPDATE jobs SET status = ? WHERE id = ?", (orjson.dumps(merged), job_id))


def _claim_run(db: sqlite3.Connection, run: Run, lease: Lease) -> bool:
    """Create-if-absent of ``run``, or the take-over of a claim whose claimer died."""
    key = (run.job_id, _time_key(run.scheduled_for))
    query = "SELECT token, status FROM runs WHERE job_id = ? AND scheduled_for = ?"
    existing = db.execute(query, key).fetchone()
    document = orjson.dumps(run.to_document())
    if existing is None:
        db.execute(
            "INSERT INTO runs (job_id, scheduled_for, token, status, document) VALUES (?, ?, ?, ?, ?)",
            (*key, lease.token, run.status, document),
        )
        return True
    token, status = existing
    if status == "claimed" and token < lease.token:  # its claimer died before finishing
        db.execute(
            "UPDATE runs SET token = ?, status = ?, document = ? WHERE job_id = ? AND scheduled_for = ?",
            (lease.token, run.status, document, *key),
        )
        return True
    return False


def _record_run(db: sqlite3.Connection, record: RunRecord) -> bool:
    _finish_run(db, record.run)
    _prune_runs(db, record.run.job_id, keep=record.keep, older_than=record.older_than)
    try:
        _update_status(db, record.run.job_id, record.status)
    except JobNotFoundError:
        return False
    return True


def _finish_run(db: sqlite3.Connection, run: Run) -> None:
    db.execute(
        "UPDATE runs SET status = ?, document = ? WHERE job_id = ? AND scheduled_for = ? AND token = ?",
        (run.status, orjson.dumps(run.to_document()), run.job_id, _time_key(run.scheduled_for), run.token),
    )


def _prune_runs(db: sqlite3.Connection, job_id: str, *, keep: int, older_than: datetime | None) -> int:
    # runs still waiting to launch (requested, retrying) are never pruned
    removed = db.execute(
        "DELETE FROM runs WHERE job_id = ? AND scheduled_for < ("
        " SELECT scheduled_for FROM runs WHERE job_id = ?"
        " ORDER BY scheduled_for DESC LIMIT 1 OFFSET ?)"
        " AND status NOT IN ('requested', 'retrying')",
        (job_id, job_id, max(0, keep - 1)),
    ).rowcount
    if older_than is not None:
        removed += db.execute(
            "DELETE FROM runs WHERE job_id = ? AND scheduled_for < ?"
            " AND status NOT IN ('requested', 'retrying')",
            (job_id, _time_key(older_than)),
        ).rowcount
    return int(removed)
