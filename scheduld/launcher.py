"""RunTask from a few launcher processes, so a herd is not bound by one interpreter.

botocore spends about half a millisecond of CPU on each RunTask call (signing, serialising,
http.client), and one job's tasks cannot ride another job's call, so a herd of 1 000 jobs on
one second costs half a second of CPU under scheduld's interpreter lock before anything else
is done (bench/README.md, "Herds"). ``LaunchPool`` hands each call (its picklable RunTask
keyword arguments) to one of ``scheduler.launch_processes`` worker processes, each with its
own ECS client built as scheduld builds its own (``executor.ecs_client``), and returns the
response, or raises the error boto3 raised in the worker. Each worker has a pipe of its own
and a reader thread here: concurrent.futures' process pool cost scheduld about 0.3 ms of CPU
per call, half of what the call itself costs, this about a fifth of it.

Nothing about exactly-once changes: the leader claims each run before the launch, and the
client token still comes from the run id, so a call sent again (its worker died mid-call) is
answered by ECS with the first call's outcome instead of new tasks. A worker exits when its
pipe closes, so when scheduld does (even killed); a worker that dies is replaced at once and
the calls it held are sent once more. ``scheduler.launch_processes: 0`` keeps every call in
scheduld's own process.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import signal
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.config import Settings
from scheduld import metrics
from scheduld.executor import ecs_client, throttled

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)


class LauncherDied(BotoCoreError):
    """A RunTask call whose launcher process died twice under it: ECS may have started it
    (so the run is uncertain, as after a timeout); its client token makes a replay safe."""

    fmt = "the launcher process running RunTask died"


class LauncherCallFailed(BotoCoreError):
    """A botocore error of a worker that cannot be rebuilt as such in scheduld: its text."""

    fmt = "{error}"


class _WorkerDied(Exception):
    """The worker holding a call died before answering it."""


_Answer = tuple[dict[str, Any] | None, Exception | None, int]
"""A worker's answer: the response or the error boto3 raised, and the throttled attempts."""


class _Worker:
    """One launcher process, its pipe, and the calls it holds (answered in order)."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self.connection, theirs = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_serve, args=(theirs, settings), name="scheduld-launcher", daemon=True
        )
        self.process.start()
        theirs.close()  # only the worker holds its end: its pipe closes when it dies
        self.held: dict[int, Future[_Answer]] = {}
        self.send_lock = threading.Lock()

    def send(self, call: int, params: dict[str, Any], answer: Future[_Answer]) -> None:
        with self.send_lock:
            self.held[call] = answer
            try:
                self.connection.send((call, params))
            except OSError as exc:  # died: the reader fails what it held
                raise _WorkerDied() from exc

    def stop(self, timeout: float) -> None:
        with self.send_lock:
            try:
                self.connection.send(None)
            except OSError:
                pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class LaunchPool:
    """Thread-safe. ``run_task(params)`` behaves as ``ecs.run_task(**params)``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._count = settings.scheduler.launch_processes
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._calls = itertools.count()
        self._closed = threading.Event()

    def start(self) -> LaunchPool:
        """Start every worker now (each builds its boto3 client, about 0.6 s of CPU), so the
        first herd does not wait for them; returns at once (calls sent meanwhile wait)."""
        for slot in range(self._count):
            self._start(slot)
        return self

    def run_task(self, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2, 3):
            answer: Future[_Answer] = Future()
            try:
                self._least_busy().send(next(self._calls), params, answer)
                response, error, throttles = answer.result()
            except _WorkerDied:
                if attempt == 3 or self._closed.is_set():
                    raise LauncherDied() from None
                continue
            if throttles:
                metrics.RUN_TASK_THROTTLES.inc(throttles)
            if error is not None:
                raise error
            assert response is not None
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers once the calls under way are answered."""
        self._closed.set()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.stop(timeout)

    def _least_busy(self) -> _Worker:
        """The live worker holding fewest calls; a dead one is replaced within moments."""
        for _ in range(50):
            if self._closed.is_set():
                raise _WorkerDied()
            with self._lock:
                live = [worker for worker in self._workers if not worker.connection.closed]
            if live:
                return min(live, key=lambda worker: len(worker.held))
            self._closed.wait(0.1)
        raise _WorkerDied()

    def _start(self, slot: int) -> None:
        worker = _Worker(self._settings)
        with self._lock:
            if slot < len(self._workers):
                self._workers[slot] = worker
            else:
                self._workers.append(worker)
        threading.Thread(
            target=self._read, args=(slot, worker), name=f"launcher-{slot}", daemon=True
        ).start()

    def _read(self, slot: int, worker: _Worker) -> None:
        """Hand each answer to its caller; when the worker dies, fail what it held and start
        another in its place (unless closing)."""
        try:
            while True:
                call, answer = worker.connection.recv()
                worker.held.pop(call).set_result(answer)
        except (EOFError, OSError):
            pass
        with worker.send_lock:
            held, worker.held = worker.held, {}
        for future in held.values():
            future.set_exception(_WorkerDied())
        worker.connection.close()
        worker.process.join(5)
        if not self._closed.is_set():
            logger.warning(
                "a launcher process died (exit code %s); starting a new one", worker.process.exitcode
            )
            self._start(slot)


# --- in the worker processes -------------------------------------------------------------

_throttles = 0


def _serve(connection: Connection, settings: Settings) -> None:
    """A worker's life: answer calls in order until scheduld says stop or its pipe closes."""
    # Ctrl-C reaches the whole process group: scheduld decides when workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ecs = ecs_client(settings, pool=2)
    ecs.meta.events.register("needs-retry.ecs.RunTask", _count_throttle)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):  # scheduld is gone
            return
        if request is None:
            return
        call, params = request
        connection.send((call, _run_task(ecs, params)))


def _run_task(ecs: ECSClient, params: dict[str, Any]) -> _Answer:
    before = _throttles
    try:
        response = ecs.run_task(**params)
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
