"""The SQLite store notices its file removed or replaced, never starts empty over a used path
without saying so, and heals from transient errors by reopening its connection."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.config import SQLiteSettings
from common.errors import StoreUnavailableError
from common.models import Job
from common.store.sqlite import SQLiteJobStore
from common.store.sqlite_file import MARKER_SUFFIX


def _job(job_id: str) -> Job:
    return Job(id=job_id, task_definition="task", schedule="0 */5")


def _open(path: Path) -> SQLiteJobStore:
    return SQLiteJobStore(SQLiteSettings(path=path))


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def test_a_new_store_says_it_was_created_and_leaves_a_marker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "jobs.db"
    with caplog.at_level(logging.WARNING):
        store = _open(path)
    assert "created a new, empty job store" in caplog.text
    assert path.with_name(path.name + MARKER_SUFFIX).read_text().strip() == store.identity
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _open(path).close()  # reopening an existing store is silent
    assert "created" not in caplog.text


@pytest.mark.parametrize("remove", ["file", "directory"])
def test_writes_are_refused_once_the_file_is_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, remove: str
) -> None:
    path = tmp_path / "data" / "jobs.db"
    store = _open(path)
    store.create_job(_job("before"))
    if remove == "file":
        _remove_database(path)
    else:
        shutil.rmtree(path.parent)
    with caplog.at_level(logging.CRITICAL), pytest.raises(StoreUnavailableError, match="removed"):
        store.create_job(_job("lost"))
    assert any(
        r.levelno == logging.CRITICAL and "removed while in use" in r.getMessage() for r in caplog.records
    )
    with pytest.raises(StoreUnavailableError):
        store.verify()
    with pytest.raises(StoreUnavailableError) as refused:
        store.update_status("before", _job("before").status)
    assert str(path) not in refused.value.message  # clients get what failed, not where
    store.close()


def test_a_removed_database_with_its_marker_left_is_not_silently_recreated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    _open(path).close()
    _remove_database(path)
    with caplog.at_level(logging.CRITICAL), pytest.raises(StoreUnavailableError, match="missing"):
        _open(path)
    assert "refusing to open" in caplog.text and MARKER_SUFFIX in caplog.text
    assert not path.exists()


def test_a_replaced_database_is_refused_while_running_and_at_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, other = tmp_path / "a" / "jobs.db", tmp_path / "b" / "jobs.db"
    store, stranger = _open(path), _open(other)
    stranger.create_job(_job("stranger"))
    stranger.close()
    _remove_database(path)
    shutil.copy(other, path)
    with pytest.raises(StoreUnavailableError, match="replaced"):
        store.create_job(_job("x"))
    store.close()
    with caplog.at_level(logging.CRITICAL), pytest.raises(StoreUnavailableError, match="holds store"):
        _open(path)


def test_writes_resume_once_the_file_is_back(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = _open(path)
    store.create_job(_job("kept"))
    aside = tmp_path / "aside.db"
    path.rename(aside)
    with pytest.raises(StoreUnavailableError):
        store.create_job(_job("refused"))
    aside.rename(path)
    store.create_job(_job("after"))
    store.verify()
    assert [job.id for job in store.list_jobs()] == ["after", "kept"]
    store.close()


_READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    from pathlib import Path
    from common.config import SQLiteSettings
    from common.errors import StoreUnavailableError
    from common.models import Job
    from common.store.sqlite import SQLiteJobStore

    path = Path(sys.argv[1])
    store = SQLiteJobStore(SQLiteSettings(path=path, busy_timeout_seconds=1))
    job = lambda n: Job(id=n, task_definition="t", schedule="0")
    store.create_job(job("first"))
    os.chmod(path, 0o444)  # briefly read-only, while the store is in use
    outcome = []

    def worker():  # one thread, as one webapi pool thread: its connection opens read-only
        try:
            store.create_job(job("while-read-only"))
            outcome.append("accepted")
        except StoreUnavailableError as exc:
            outcome.append("refused: " + exc.message)
        os.chmod(path, 0o644)
        started = time.monotonic()
        while time.monotonic() - started < 10:
            try:
                store.create_job(job("after"))
                outcome.append(f"healed after {time.monotonic() - started:.2f} s")
                return
            except StoreUnavailableError:
                time.sleep(0.1)
        outcome.append("never healed")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    print("|".join(outcome))
    """
)


def test_a_connection_opened_while_the_file_was_read_only_is_reopened(tmp_path: Path) -> None:
    """As a process, with a really read-only file: permissions bind root only without
    CAP_DAC_OVERRIDE, so under root the script runs through ``setpriv`` with it dropped."""
    command = [sys.executable, "-c", _READ_ONLY_SCRIPT, str(tmp_path / "jobs.db")]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux): file modes would not bind")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    result = _run_in_project(command)
    assert result.returncode == 0, result.stderr
    refused, healed = result.stdout.strip().split("|")
    assert refused.startswith("refused") and "readonly" in refused
    assert healed.startswith("healed after"), result.stdout


_CLOSE_DURING_WRITE_SCRIPT = textwrap.dedent(
    """
    import sqlite3, sys, threading, time
    from pathlib import Path
    from common.config import SQLiteSettings
    from common.models import Job
    from common.store.sqlite import SQLiteJobStore

    path = Path(sys.argv[1])
    store = SQLiteJobStore(SQLiteSettings(path=path, busy_timeout_seconds=30))
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another process's write: the store's write waits
    late = Job(id="late", task_definition="t", schedule="0")
    writing = threading.Thread(target=store.create_job, args=(late,))
    writing.start()
    time.sleep(0.3)
    threading.Timer(0.5, blocker.rollback).start()
    store.close()  # as at shutdown, while the write still waits for its lock
    closed_after_write = not writing.is_alive()
    writing.join()
    print("closed after the write" if closed_after_write else "closed under the write")
    """
)


def test_closing_the_store_waits_for_a_write_under_way(tmp_path: Path) -> None:
    """Closing a connection under a running statement crashes the interpreter; at shutdown a
    write may still be waiting for SQLite's lock. Run in a process of its own, so a crash is
    a failure here rather than the end of the test run."""
    path = tmp_path / "jobs.db"
    _open(path).close()
    result = _run_in_project([sys.executable, "-c", _CLOSE_DURING_WRITE_SCRIPT, str(path)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "closed after the write"
    reopened = _open(path)
    try:
        assert reopened.get_job("late").id == "late"  # the write landed whole
    finally:
        reopened.close()


def _run_in_project(command: list[str]) -> subprocess.CompletedProcess[str]:
    """A script of these tests, run in a process of its own with the project importable."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
