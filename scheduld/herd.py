"""Herds: the fires due at once are handled as one batch, on one thread.

A thousand jobs on one second used to be a thousand fires each doing alone what they all do
alike: a read, a claim transaction, a RunTask hand-off to the launcher processes, a record
transaction, an INFO line and metric updates, with a thread hand-off at each step: about 1.4
ms of scheduld's CPU a fire (bench/README.md, "Herds"). Here APScheduler's job function
(still one per job, on its executor's threads) hands its fire to ``Herd.fire`` and waits: the
herd thread takes every fire waiting at each turn of its loop and gives them to
``fire_many`` (one claim of all their runs, the RunTask calls sent in one message per
launcher process), then, as launches are answered, gives the ones answered by then to
``complete_many`` (one record of all their runs). A fire the batch does not handle (a catch-up,
overlap ``replace``, more than one RunTask call...) is handed back to its own thread, which
fires it alone as before.

The job function returns only once its fire is recorded, so APScheduler's own guarantees
hold as they did: one instance of a job at a time, and a shutdown that waits for the fires
under way. The herd thread starts with the first fire and ends after a second with nothing
to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)

IDLE_SECONDS = 1.0
"""The herd thread ends after this long without a fire or an answer."""


class Fire:
    """One fire waiting in a herd, and how its own thread goes on once it is handled."""

    __slots__ = ("job_id", "scheduled", "started", "lag", "_handled", "_alone")

    def __init__(self, job_id: str, scheduled: datetime) -> None:
        self.job_id = job_id
        self.scheduled = scheduled
        self.started = time.monotonic()
        self.lag = (datetime.now(UTC) - scheduled).total_seconds()
        """From the scheduled time to the fire's hand-off to the herd."""
        self._handled = threading.Event()
        self._alone: Callable[[], object] | None = None

    def handled(self, *, alone: Callable[[], object] | None = None) -> None:
        """The batch is done with this fire; ``alone``, if given, runs next on its own thread."""
        self._alone = alone
        self._handled.set()

    @property
    def is_handled(self) -> bool:
        return self._handled.is_set()

    def wait(self) -> None:
        self._handled.wait()
        if self._alone is not None:
            self._alone()


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
    ) -> None:
        self._fire_many = fire_many
        self._complete_many = complete_many
        self._alone = alone
        self._fires: list[Fire] = []
        self._answered: list[L] = []
        self._running = False
        self._wake = threading.Condition()

    def fire(self, job_id: str, scheduled: datetime) -> None:
        fire = Fire(job_id, scheduled)
        with self._wake:
            self._fires.append(fire)
            self._wake_up()
        fire.wait()

    def _answered_now(self, launch: L) -> None:
        with self._wake:
            self._answered.append(launch)
            self._wake_up()

    def _wake_up(self) -> None:
        """The herd thread has work: wake it, or start it (it ends when idle). Locked."""
        if not self._running:
            self._running = True
            threading.Thread(target=self._run, name="herd", daemon=True).start()
        self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not (self._fires or self._answered):
                    self._wake.wait(IDLE_SECONDS)
                if not (self._fires or self._answered):
                    self._running = False
                    return
                fires, self._fires = self._fires, []
                answered, self._answered = self._answered, []
            if answered:  # first: their fires' threads have waited longest
                self._complete(answered)
            if fires:
                self._start(fires)

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
        for launch in launches:
            launch.answer.add_done_callback(lambda _, launch=launch: self._answered_now(launch))  # type: ignore[misc]
