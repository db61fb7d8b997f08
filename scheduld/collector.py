"""When scheduld pauses Python's cyclic garbage collector, and why.

Two moments allocate a great many objects that stay alive: a herd (its fires live until they
are recorded) and the load of every stored job when a replica starts leading. Python starts a
collection every 700 net allocations, and a full one each time the long-lived objects have
grown by a quarter; each full one traverses the whole heap, the schedule's jobs included.

- A herd pauses it from its first fire until no fire is under way (``CollectorPause``):
  80-120 ms of scheduld's 0.4-0.55 s of CPU per 1 000-job herd went to collections.
  Once idle, the herd's objects were freed by their reference counts (nothing in a herd makes
  a cycle of them) and the collector resumes with little to do.
- The load pauses it throughout (``paused_for_load``): 100 000 jobs set off about 2 300
  collections, twelve of them full, a quarter of the load's CPU (bench/README.md, "Cold start,
  second pass"). The jobs loaded are kept, not garbage: they are frozen out of the
  collector's sight until the schedule is dropped.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator

MAX_COLLECTOR_PAUSE_SECONDS = 10.0
"""The longest the garbage collector stays paused; fires under way for longer (a steady load
that never leaves the herd idle) let it run again until the herd is idle."""


class CollectorPause:
    """Python's cyclic garbage collector, paused from a herd's first fire until no fire is
    under way (or for ``MAX_COLLECTOR_PAUSE_SECONDS`` at most, then not again until then).
    Callers hold the herd's lock. A collector disabled before a herd stays disabled."""

    def __init__(self) -> None:
        self._since: float | None = None  # when this paused the collector
        self._held_off = False  # paused too long: not again before the herd is idle

    def pause(self) -> None:
        if self._since is None:
            if not self._held_off and gc.isenabled():
                gc.disable()
                self._since = time.monotonic()
        elif time.monotonic() - self._since > MAX_COLLECTOR_PAUSE_SECONDS:
            self.resume(idle=False)
            self._held_off = True

    def resume(self, *, idle: bool) -> None:
        """Let the collector run again; ``idle``: no fire is under way."""
        if self._since is not None:
            self._since = None
            gc.enable()
        if idle:
            self._held_off = False


@contextlib.contextmanager
def paused_for_load() -> Iterator[None]:
    """The collector paused while the body runs; one found disabled (by a herd) is left to
    whoever disabled it. What a body that returns has loaded is then frozen (``gc.freeze``):
    it is the schedule, alive for the term, so no later collection traverses it, the first
    after the pause included, which would otherwise find the whole load in its young
    generation. ``thaw`` when the schedule is dropped."""
    pausing = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if pausing:
            gc.enable()


def thaw() -> None:
    """Hand what loads froze back to the collector: a dropped schedule's cycles are freed."""
    gc.unfreeze()
