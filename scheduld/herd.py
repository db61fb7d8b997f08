"""Herds: the fires due at once are handled as one batch, on one thread.

A thousand jobs on one second used to be a thousand fires each doing alone what they all do
alike: a read, a claim transaction, a RunTask hand-off to the launcher processes, a record
transaction, an INFO line and metric updates, with a thread hand-off at each step: about 1.4
ms of scheduld's CPU a fire (bench/README.md, "Herds"). Here APScheduler's job function
(still one per job, run on the scheduler's thread) hands its fire to ``Herd.fire``: the
herd thread takes every fire waiting at each turn of its loop and gives them to
``fire_many`` (one claim of all their runs, the RunTask calls sent in one message per
launcher process), then, as launches are answered, gives the ones answered by then to
``complete_many`` (one record of all their runs). A fire the batch does not handle (a catch-up,
overlap ``replace``, more than one RunTask call...) is handed back to its own thread, which
fires it alone as before.

APScheduler's job function only hands its fire over (``wait=False``), so a whole herd is
handed over within milliseconds and batches are large; waiting there for each fire would
hold up the scheduler's thread. What APScheduler's thread pool guaranteed
while its job ran is kept here: one fire of a job at a time (a fire of a job whose previous
fire is under way is skipped, as APScheduler skips it, with a warning), and ``drain`` lets a
shutdown wait for the fires under way. The herd thread starts with the first fire and ends
after a second with nothing to do.

Python's cyclic garbage collector is paused while fires are under way (scheduld/collector.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from scheduld.collector import CollectorPause

logger = logging.getLogger(__name__)

IDLE_SECONDS = 1.0
"""The herd thread ends after this long without a fire or an answer."""
RECORD_WINDOW_SECONDS = 0.05
"""How long the first answer of a batch waits for others, to be recorded with them."""


class Fire:
    """One fire waiting in a herd, and how its own thread goes on once it is handled."""

    __slots__ = ("job_id", "scheduled", "started", "lag", "is_handled", "_finish", "done")

    def __init__(
        self,
        job_id: str,
        scheduled: datetime,
        finish: Callable[[Fire, Callable[[], object] | None], None],
        *,
        waited: bool = True,
    ) -> None:
        self.job_id = job_id
        self.scheduled = scheduled
        self.started = time.monotonic()
        self.lag = (datetime.now(UTC) - scheduled).total_seconds()
        """From the scheduled time to the fire's hand-off to the herd."""
        self.is_handled = False
        """The batch is done with it (``handled``)."""
        self._finish = finish
        self.done = threading.Event() if waited else None
        """Set once the fire is over (recorded, or fired alone); None when nobody waits."""

    def handled(self, *, alone: Callable[[], object] | None = None) -> None:
        """The batch is done with this fire; ``alone``, if given, fires it by itself next, on
        a thread of its own."""
        self.is_handled = True
        self._finish(self, alone)


class Launch(Protocol):
    """A batch's launch under way: its fire, and its answer to come."""

    @property
    def fire(self) -> Fire: ...

    @property
    def answer(self) -> Future[Any]: ...


L = TypeVar("L", bound=Launch)


class Herd(Generic[L]):
    """Thread-safe. ``fire`` returns once the fire was handled (recorded, or fired alone).

    ``fire_many`` starts a batch: it returns the launches under way, and every fire of the
    batch it does not return is handled by then. ``complete_many`` records answered
    launches and handles their fires. ``alone`` fires one by itself: the fallback for fires
    a failed batch left unhandled (neither of the two is expected to raise)."""

    def __init__(
        self,
        fire_many: Callable[[list[Fire]], list[L]],
        complete_many: Callable[[list[L]], object],
        alone: Callable[[Fire], object],
        *,
        alone_threads: int = 8,
    ) -> None:
        self._fire_many = fire_many
        self._complete_many = complete_many
        self._alone = alone
        self._fires: list[Fire] = []
        self._answered: list[L] = []
        self._running = False
        lock = threading.Lock()
        self._wake = threading.Condition(lock)  # the herd thread has work
        self._idle = threading.Condition(lock)  # no fire is under way
        self._in_flight: dict[str, Fire] = {}
        self._under_way = 0  # launches not answered yet, or answered and not taken
        # each launch by its answer to come: a callback holding its launch would make a
        # cycle (launch → answer → callback → launch) that only the garbage collector frees
        self._unanswered: dict[Future[Any], L] = {}
        self._answered_since = 0.0
        self._collector = CollectorPause()
        self._alone_threads = ThreadPoolExecutor(max_workers=alone_threads, thread_name_prefix="fire-alone")

    def fire(self, job_id: str, scheduled: datetime, *, wait: bool = True) -> None:
        """Fire ``job_id`` for ``scheduled``; with ``wait``, return once the fire is over.

        A job whose previous fire is still under way is not fired again (APScheduler's one
        instance of a job at a time, which no longer sees fires once handed over)."""
        with self._wake:
            under_way = self._in_flight.get(job_id)
            if under_way is None:
                fire = self._in_flight[job_id] = Fire(job_id, scheduled, self._finish, waited=wait)
                self._fires.append(fire)
                self._collector.pause()
                self._wake_up()
        if under_way is not None:
            logger.warning(
                "job %s: fire at %s skipped: its fire at %s is still under way",
                job_id,
                scheduled.isoformat(),
                under_way.scheduled.isoformat(),
            )
            return
        if fire.done is not None:
            fire.done.wait()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no fire is under way (shutdown); False if some still are."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._in_flight, timeout)

    def handled(self, fires: list[Fire]) -> None:
        """As ``fire.handled()`` for each of ``fires``, in one go."""
        with self._wake:
            for fire in fires:
                fire.is_handled = True
                if self._in_flight.get(fire.job_id) is fire:
                    del self._in_flight[fire.job_id]
            if not self._in_flight:
                self._collector.resume(idle=True)
                self._idle.notify_all()
        for fire in fires:
            if fire.done is not None:
                fire.done.set()

    def _finish(self, fire: Fire, alone: Callable[[], object] | None) -> None:
        if alone is not None:
            self._alone_threads.submit(self._fire_alone, fire, alone)
        else:
            self.handled([fire])

    def _fire_alone(self, fire: Fire, alone: Callable[[], object]) -> None:
        try:
            alone()
        finally:
            self.handled([fire])

    def _answered_now(self, answer: Future[Any]) -> None:
        with self._wake:
            launch = self._unanswered.pop(answer)
            if not self._answered:
                self._answered_since = time.monotonic()
            self._answered.append(launch)
            # the herd thread waits for the first answer, then for all of them or the window's
            # end: woken for each answer, it would only go back to waiting (a thread switch each)
            if len(self._answered) == 1 or len(self._answered) >= self._under_way:
                self._wake_up()

    def _wake_up(self) -> None:
        """The herd thread has work: wake it, or start it (it ends when idle). Locked."""
        if not self._running:
            self._running = True
            threading.Thread(target=self._run, name="herd", daemon=True).start()
        self._wake.notify()

    def _run(self) -> None:
        while self._turn():
            pass

    def _turn(self) -> bool:
        """One turn of the herd thread: the work waiting, if any came (False: idle, ended).
        What a turn handled is freed once it returns, not kept until the next one."""
        with self._wake:
            if not self._wait_for_work():
                self._running = False
                # launches unanswered for a second: the collector need not wait for them
                self._collector.resume(idle=not self._in_flight)
                return False
            fires, self._fires = self._fires, []
            answered, self._answered = self._answered, []
            self._under_way -= len(answered)
        if answered:  # first: their fires' threads have waited longest
            self._complete(answered)
        if fires:
            self._start(fires)
        return True

    def _wait_for_work(self) -> bool:
        """Wait for fires, or for answers worth recording: all those under way, or whatever
        came within ``RECORD_WINDOW_SECONDS`` of the first (answers trickle in one by one:
        recorded as they come, a herd's records would be a transaction each). Locked; False
        when idle."""
        while True:
            if self._fires:
                return True
            if self._answered:
                waited = time.monotonic() - self._answered_since
                if len(self._answered) >= self._under_way or waited >= RECORD_WINDOW_SECONDS:
                    return True
                self._wake.wait(RECORD_WINDOW_SECONDS - waited)
            elif not self._wake.wait(IDLE_SECONDS) and not (self._fires or self._answered):
                return False

    def _complete(self, answered: list[L]) -> None:
        try:
            self._complete_many(answered)
        except Exception:  # a bug: never leave a fire's thread waiting
            logger.exception("recording %d fires failed", len(answered))
        for launch in answered:
            if not launch.fire.is_handled:
                launch.fire.handled()

    def _start(self, fires: list[Fire]) -> None:
        try:
            launches = self._fire_many(fires)
        except Exception:  # a bug: each fire not yet handled fires alone
            logger.exception("a batch of %d fires failed; firing them one by one", len(fires))
            for fire in fires:
                if not fire.is_handled:
                    fire.handled(alone=lambda fire=fire: self._alone(fire))  # type: ignore[misc]
            return
        with self._wake:
            self._under_way += len(launches)
            self._unanswered.update((launch.answer, launch) for launch in launches)
        for launch in launches:
            launch.answer.add_done_callback(self._answered_now)
