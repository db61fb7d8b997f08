"""RunTask from a few launcher processes, so a herd is not bound by one interpreter.

botocore spends about half a millisecond of CPU on each RunTask call (signing, serialising,
http.client), and one job's tasks cannot ride another job's call, so a herd of 1 000 jobs on
one second costs half a second of CPU under scheduld's interpreter lock before anything else
is done (bench/README.md, "Herds"). ``LaunchPool`` hands each call (its picklable RunTask
keyword arguments) to one of ``scheduler.launch_processes`` worker processes, each with its
own ECS client built as scheduld builds its own (``executor.ecs_client``), and returns the
response, or raises the error boto3 raised in the worker. A worker sends each call as one
signed request first (scheduld/signed_runtask.py: a fraction of boto3's CPU) and through boto3
whenever ECS answers anything but 200. Each worker has a pipe of its own
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

import functools
import itertools
import logging
import multiprocessing
import queue
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from common.config import Settings
from scheduld import metrics
from scheduld.executor import ecs_client, throttled
from scheduld.signed_runtask import Handover, SignedRunTask

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)


LOST_CALLS = 3
"""A call is given up (uncertain, as after a timeout) once this many workers died under it:
two at once can die holding it before either is replaced."""
QUICK_DEATH_SECONDS = 10.0
MAX_RESTART_DELAY_SECONDS = 30.0


class LauncherDied(BotoCoreError):
    """A RunTask call whose launcher processes kept dying under it: ECS may have started it
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
    """One launcher process, its pipe, and the calls it holds."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self.connection, theirs = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_serve, args=(theirs, settings), name="scheduld-launcher", daemon=True
        )
        self.process.start()
        self.started = time.monotonic()
        theirs.close()  # only the worker holds its end: its pipe closes when it dies
        self.held: dict[int, Future[_Answer]] = {}
        self.send_lock = threading.Lock()
        self.generation = 1  # how many workers in a row died as they started in this slot
        self.dead = False  # a send failed: not chosen again while its reader replaces it

    def send(self, calls: list[tuple[int, dict[str, Any], Future[_Answer]]]) -> None:
        """Hand ``calls`` over in one pipe message."""
        with self.send_lock:
            for call, _, answer in calls:
                self.held[call] = answer
            try:
                self.connection.send([(call, params) for call, params, _ in calls])
            except BaseException as exc:
                for call, _, _ in calls:
                    self.held.pop(call, None)
                if isinstance(exc, OSError):  # it died; its reader replaces it
                    self.dead = True
                    raise _WorkerDied() from exc
                raise

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
        lost = 0  # sent to a worker that died before answering: sent again, up to LOST_CALLS
        while True:
            answer: Future[_Answer] = Future()
            try:
                worker = self._least_busy()
            except _WorkerDied:  # closing, or no worker came back in time
                raise LauncherDied() from None
            try:
                worker.send([(next(self._calls), params, answer)])
            except _WorkerDied:  # not sent: another worker takes it
                continue
            try:
                return _response(answer.result())
            except _WorkerDied:
                lost += 1
                if lost == LOST_CALLS:
                    raise LauncherDied() from None
                continue

    def run_tasks(self, calls: list[dict[str, Any]]) -> list[Future[dict[str, Any]]]:
        """Send ``calls`` at once, one pipe message per worker (a herd's launches); each
        future is answered as ``run_task`` returns or raises. A call whose worker dies is
        sent again through ``run_task`` (same client token)."""
        results: list[Future[dict[str, Any]]] = [Future() for _ in calls]
        try:
            live = self._live()
        except _WorkerDied:
            for result in results:
                result.set_exception(LauncherDied())
            return results
        chunk = -(-len(calls) // len(live))
        for start, worker in zip(range(0, len(calls), chunk), live, strict=False):
            sent: list[tuple[int, dict[str, Any], Future[_Answer]]] = []
            for index in range(start, min(start + chunk, len(calls))):
                answer: Future[_Answer] = Future()
                answer.add_done_callback(functools.partial(self._settle, calls[index], results[index]))
                sent.append((next(self._calls), calls[index], answer))
            try:
                worker.send(sent)
            except _WorkerDied:
                for _, _, answer in sent:
                    answer.set_exception(_WorkerDied())
        return results

    def _settle(
        self, params: dict[str, Any], result: Future[dict[str, Any]], answer: Future[_Answer]
    ) -> None:
        if isinstance(answer.exception(), _WorkerDied):  # sent again, on a thread of its own
            threading.Thread(
                target=self._again, args=(params, result), name="launcher-again", daemon=True
            ).start()
            return
        try:
            result.set_result(_response(answer.result()))
        except BaseException as exc:  # noqa: BLE001 - the call's own error, for its caller
            result.set_exception(exc)

    def _again(self, params: dict[str, Any], result: Future[dict[str, Any]]) -> None:
        try:
            result.set_result(self.run_task(params))
        except BaseException as exc:  # noqa: BLE001 - the call's own error, for its caller
            result.set_exception(exc)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers once the calls under way are answered."""
        self._closed.set()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.stop(timeout)

    def _least_busy(self) -> _Worker:
        """The live worker holding fewest calls; a dead one is replaced within moments."""
        return min(self._live(), key=lambda w: len(w.held))

    def _live(self) -> list[_Worker]:
        """The live workers (waiting a few seconds for one, if none is)."""
        for _ in range(50):
            if self._closed.is_set():
                raise _WorkerDied()
            with self._lock:
                live = [w for w in self._workers if not (w.dead or w.connection.closed)]
            if live:
                return live
            self._closed.wait(0.1)
        raise _WorkerDied()

    def _start(self, slot: int, generation: int = 1) -> None:
        worker = _Worker(self._settings)
        worker.generation = generation
        with self._lock:
            if slot < len(self._workers):
                self._workers[slot] = worker
            else:
                self._workers.append(worker)
        threading.Thread(target=self._read, args=(slot, worker), name=f"launcher-{slot}", daemon=True).start()

    def _read(self, slot: int, worker: _Worker) -> None:
        """Hand each answer to its caller; when the worker dies, fail what it held and start
        another in its place (unless closing)."""
        try:
            while True:
                for call, answer in worker.connection.recv():
                    worker.held.pop(call).set_result(answer)
        except (EOFError, OSError):
            pass
        worker.dead = True
        with worker.send_lock:
            held, worker.held = worker.held, {}
        for future in held.values():
            future.set_exception(_WorkerDied())
        worker.connection.close()
        worker.process.join(5)
        if self._closed.is_set():
            return
        # one that dies as it starts (say, cannot build its client) is restarted ever more slowly
        quick = time.monotonic() - worker.started < QUICK_DEATH_SECONDS
        delay = min(MAX_RESTART_DELAY_SECONDS, 2.0 ** (worker.generation - 1)) if quick else 0.0
        logger.warning(
            "a launcher process died (exit code %s); starting a new one in %.0f s",
            worker.process.exitcode,
            delay,
        )
        if not self._closed.wait(delay):
            self._start(slot, generation=worker.generation + 1 if quick else 1)


# --- in the worker processes -------------------------------------------------------------

_calling = threading.local()  # throttled attempts of the calls of this thread (botocore's hook runs in it)


def _serve(connection: Connection, settings: Settings) -> None:
    """A worker's life: answer calls until scheduld says stop or its pipe closes. Calls run on
    as many threads as scheduld has firing threads per worker: a RunTask mostly waits for ECS
    (a tenth of a second or more), so one call at a time would cap a worker's calls per second
    far below a herd's."""
    # Ctrl-C reaches the whole process group: scheduld decides when workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threads = -(-settings.scheduler.max_workers // max(1, settings.scheduler.launch_processes)) + 1
    session = botocore.session.get_session()
    ecs = ecs_client(settings, pool=threads, session=session)
    ecs.meta.events.register("needs-retry.ecs.RunTask", _count_throttle)
    signed = SignedRunTask.for_client(ecs, session) if settings.scheduler.signed_run_task else None
    answers: queue.SimpleQueue[tuple[int, _Answer] | None] = queue.SimpleQueue()
    gone = threading.Event()

    def answer(call: int, params: dict[str, Any]) -> None:
        try:
            answered = _run_task(ecs, signed, params)
        except Exception as exc:  # noqa: BLE001 - a call never answered would hold its fire forever
            answered = None, LauncherCallFailed(error=f"{type(exc).__name__}: {exc}"), 0
        answers.put((call, answered))

    def send_answers() -> None:
        """The answers ready at once go back in one message; None ends."""
        done = False
        while not done:
            ready: list[tuple[int, _Answer]] = []
            item = answers.get()
            while item is not None:
                ready.append(item)
                if len(ready) == 256:
                    break
                try:
                    item = answers.get_nowait()
                except queue.Empty:
                    break
            done = item is None
            if not ready:
                continue
            try:
                connection.send(ready)
            except OSError:  # scheduld is gone
                gone.set()
                return

    sender = threading.Thread(target=send_answers, name="answers", daemon=True)
    sender.start()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="runtask") as calls:
        while not gone.is_set():
            try:
                request = connection.recv()
            except (EOFError, OSError):  # scheduld is gone
                break
            if request is None:
                break
            for call, params in request:
                calls.submit(answer, call, params)
    answers.put(None)
    sender.join(10)
    if signed is not None:
        signed.close()


def _response(answer: _Answer) -> dict[str, Any]:
    """A worker's answer as ``ecs.run_task`` gives it: the response, or its error raised."""
    response, error, throttles = answer
    if throttles:
        metrics.RUN_TASK_THROTTLES.inc(throttles)
    if error is not None:
        raise error
    assert response is not None
    return response


def _run_task(ecs: ECSClient, signed: SignedRunTask | None, params: dict[str, Any]) -> _Answer:
    """A call as a signed request when it can go that way, else (or when that hands it over)
    through boto3: same parameters, same client token."""
    handed_over = 0
    if signed is not None:
        sent = signed.send(params)
        if not isinstance(sent, Handover):
            return sent, None, 0
        handed_over = int(sent.throttled)
        logger.debug("RunTask %s goes through botocore: %s", params.get("clientToken"), sent.reason)
    before = _throttled() - handed_over
    try:
        response = ecs.run_task(**params)
    except ClientError as exc:
        return None, ClientError(exc.response, exc.operation_name), _throttled() - before
    except BotoCoreError as exc:
        return None, _portable(exc), _throttled() - before
    return dict(response), None, _throttled() - before


def _portable(exc: BotoCoreError) -> BotoCoreError:
    """The same error without what it holds of this process (request, connection)."""
    try:
        return type(exc)(**exc.kwargs)
    except Exception:  # noqa: BLE001 - an error class with other arguments: keep its text
        return LauncherCallFailed(error=str(exc))


def _count_throttle(response: Any = None, **kwargs: Any) -> None:
    """botocore's needs-retry hook: returns None, so the retry decision stays botocore's."""
    if throttled(response):
        _calling.throttles = _throttled() + 1


def _throttled() -> int:
    count: int = getattr(_calling, "throttles", 0)
    return count
