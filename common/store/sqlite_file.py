"""The SQLite store's file and its identity: never start empty over a used path, and notice
the file removed or replaced under a running process.

The database holds an identity row, mirrored in a marker file next to it (``<path>.identity``).
A store whose marker exists but whose file is missing or holds another identity refuses to open;
a store created from nothing says so in the log. While running, ``check()`` (before every
write) confirms that the path still names the file opened (device and inode): a removed or
replaced file is refused with StoreUnavailableError and one CRITICAL log line, instead of
writes acknowledged into an unlinked file that vanishes at the next restart.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from common.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

MARKER_SUFFIX = ".identity"
IDENTITY_TABLE = """CREATE TABLE IF NOT EXISTS store_identity (
    id TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL
)"""


class StoreFile:
    def __init__(self, path: Path) -> None:
        """Before the database is opened: refuse a missing file whose marker remains."""
        self.path = path
        self.marker = path.with_name(path.name + MARKER_SUFFIX)
        self.identity = ""
        self._file_id: tuple[int, int] | None = None
        self._lost: str | None = None
        self._existed = path.exists()
        self._expected = self.marker.read_text().strip() if self.marker.exists() else None
        if self._expected and not self._existed:
            self._refuse(f"its file is missing, though the store {self._expected} was created here")

    def adopt(self, db: sqlite3.Connection) -> None:
        """Inside the store's first write: read the identity row, or create it."""
        db.execute(IDENTITY_TABLE)
        row = db.execute("SELECT id FROM store_identity").fetchone()
        if row is not None:
            self.identity = str(row[0])
            return
        self.identity = uuid.uuid4().hex
        db.execute(
            "INSERT INTO store_identity (id, created_at) VALUES (?, ?)",
            (self.identity, datetime.now(UTC).isoformat()),
        )
        if not self._existed:  # not the other process, starting at the same time
            logger.warning("created a new, empty job store %s at %s", self.identity, self.path)

    def settle(self) -> None:
        """After that write committed: the identity matches the marker (or becomes it), and
        the file's device and inode are what ``check`` compares with from now on."""
        if self._expected and self.identity != self._expected:
            self._refuse(f"its file holds store {self.identity}, not the store {self._expected} created here")
        if not self._expected:
            staged = self.marker.with_name(self.marker.name + ".tmp")
            staged.write_text(self.identity + "\n")
            staged.replace(self.marker)
        stat = os.stat(self.path)
        self._file_id = (stat.st_dev, stat.st_ino)

    def check(self) -> None:
        """Refuse to go on with a file that was removed or replaced under this process."""
        if self._file_id is None:
            return
        try:
            stat = os.stat(self.path)
            problem = None if (stat.st_dev, stat.st_ino) == self._file_id else "replaced"
        except FileNotFoundError:
            problem = "removed"
        except OSError as exc:
            raise StoreUnavailableError(f"the job store file cannot be checked ({exc.strerror})") from exc
        if problem is None:
            if self._lost is not None:
                logger.warning("SQLite job store %s is back in place; writes resume", self.path)
                self._lost = None
            return
        if self._lost is None:
            logger.critical(
                "SQLite job store %s was %s while in use: every write is refused until the file "
                "is restored (its data is not lost while this process holds it open)",
                self.path,
                problem,
            )
            self._lost = problem
        raise StoreUnavailableError(f"the job store file was {problem} while in use; writes are refused")

    def _refuse(self, why: str) -> None:
        logger.critical(
            "refusing to open the SQLite job store at %s: %s. Restore the file, or remove %s "
            "to start with a new, empty store.",
            self.path,
            why,
            self.marker,
        )
        raise StoreUnavailableError(f"the job store cannot be opened: {why}")
