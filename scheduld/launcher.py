"""RunTask from a few launcher processes, so a herd is not bound by one interpreter.

botocore spends about half a millisecond of CPU on each RunTask call (signing, serialising,
http.client), and one job's tasks cannot ride another job's call, so a herd of 1 000 jobs on
one second costs half a second of CPU under scheduld's interpreter lock before anything else
is done (bench/README.md, "Herds"). ``LaunchPool`` hands each call (its picklable RunTask
keyword arguments) to one of ``scheduler.launch_processes`` worker processes, each with its
own ECS client built as scheduld builds its own (``executor.ecs_client``), and returns the
response, or raises the error boto3 raised in the worker.

Nothing about exactly-once changes: the leader claims each run before the launch, and the
client token still comes from the run id, so a call sent again (its worker died mid-call) is
answered by ECS with the first call's outcome instead of new tasks. Workers watch scheduld and
exit when it does (even when it was killed); a worker that dies is replaced: the process pool
is rebuilt and the calls it held are sent once more. ``scheduler.launch_processes: 0`` keeps
every call in scheduld's own process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.config import Settings
from scheduld import metrics
from scheduld.executor import ecs_client, throttled

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 1.0


class LauncherDied(BotoCoreError):
    """A RunTask call whose launcher process died twice under it: ECS may have started it
    (so the run is uncertain, as after a timeout); its client token makes a replay safe."""

    fmt = "the launcher process running RunTask died"


class LauncherCallFailed(BotoCoreError):
    """A botocore error of a worker that cannot be rebuilt as such in scheduld: its text."""

    fmt = "{error}"


class LaunchPool:
    """Thread-safe. ``run_task(params)`` behaves as ``ecs.run_task(**params)``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._processes = settings.scheduler.launch_processes
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._executor = self._new_executor()
        self._watch = threading.Thread(target=self._watch_workers, name="launcher-watch", daemon=True)

    def start(self) -> LaunchPool:
        """Start every worker now (each builds its boto3 client, about 0.6 s of CPU), so the
        first herd does not wait for them, and watch them; returns at once."""
        for _ in range(self._processes):
            self._executor.submit(_ready)
        self._watch.start()
        return self

    def run_task(self, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            executor = self._executor
            try:
                response, error, throttles = self._submit(executor, params).result()
            except BrokenProcessPool:
                self._replace(executor)
                if attempt == 2:
                    raise LauncherDied() from None
                continue
            if throttles:
                metrics.RUN_TASK_THROTTLES.inc(throttles)
            if error is not None:
                raise error
            assert response is not None
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop the workers once the calls under way are answered."""
        with self._lock:
            self._closed.set()
            executor = self._executor
        executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, executor: ProcessPoolExecutor, params: dict[str, Any]) -> Future[_Answer]:
        if self._closed.is_set():
            raise LauncherDied()
        return executor.submit(_run_task, params)

    def _watch_workers(self) -> None:
        """Replace the workers as soon as one dies, not at the next launch: the pool knows a
        worker died at once and then refuses new calls, which this notices within a second."""
        while not self._closed.wait(WATCH_INTERVAL_SECONDS):
            executor = self._executor
            try:
                executor.submit(_ready)
            except BrokenProcessPool:
                self._replace(executor)
            except RuntimeError:  # shut down meanwhile: closing
                return

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("spawn"),  # never fork a threaded process
            initializer=_init_worker,
            initargs=(self._settings,),
        )

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A worker died: every call it or its siblings held failed. Build a new pool, once
        per broken one, and start its workers."""
        with self._lock:
            if self._executor is not broken or self._closed.is_set():
                return
            logger.warning("a launcher process died; starting %d new ones", self._processes)
            self._executor = self._new_executor()
            fresh = self._executor
        broken.shutdown(wait=False, cancel_futures=True)
        for _ in range(self._processes):
            fresh.submit(_ready)


_Answer = tuple[dict[str, Any] | None, Exception | None, int]
"""A worker's answer: the response or the error boto3 raised, and the throttled attempts."""

# --- in the worker processes -------------------------------------------------------------

_ecs: ECSClient | None = None
_throttles = 0


def _init_worker(settings: Settings) -> None:
    global _ecs
    # Ctrl-C reaches the whole process group: the parent decides when workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, name="launcher-watch", daemon=True).start()
    _ecs = ecs_client(settings, pool=2)
    _ecs.meta.events.register("needs-retry.ecs.RunTask", _count_throttle)


def _exit_with_parent() -> None:
    """scheduld is gone (even killed): nothing else would end this process."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(0)


def _ready() -> bool:
    return _ecs is not None


def _run_task(params: dict[str, Any]) -> _Answer:
    global _throttles
    assert _ecs is not None, "launcher worker not initialised"
    before = _throttles
    try:
        response = _ecs.run_task(**params)
    except ClientError as exc:
        return None, ClientError(exc.response, exc.operation_name), _throttles - before
    except BotoCoreError as exc:
        return None, _portable(exc), _throttles - before
    return dict(response), None, _throttles - before


def _portable(exc: BotoCoreError) -> BotoCoreError:
    """The same error without what it holds of this process (request, connection)."""
    try:
        return type(exc)(**exc.kwargs)
    except Exception:  # noqa: BLE001 - an error class with other arguments: keep its text
        return LauncherCallFailed(error=str(exc))


def _count_throttle(response: Any = None, **kwargs: Any) -> None:
    """botocore's needs-retry hook: returns None, so the retry decision stays botocore's."""
    global _throttles
    if throttled(response):
        _throttles += 1
