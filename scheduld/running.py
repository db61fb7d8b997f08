"""Running-task counts for the fires of one scheduled second, from one shared listing.

Every fire needs its job's running count. Counted per job, that is a ListTasks call per fire
(plus DescribeTasks when tasks are listed), so a herd of 1 000 jobs on one second pays 1 000
calls: half of its CPU. When more fires are due on a second than listing the cluster's live
tasks costs in calls, the first of them lists them once (grouped by ``startedBy``) and the
others of that second use the listing, waiting for it if it is under way; otherwise each
counts its own job. A lone fire therefore costs what it always did.

A listing is taken after its second began and is used only for fires of that second and
only while younger than ``MAX_AGE``: as fresh as their own calls would have been, since a job
fires once per second. If it fails, each fire counts its own job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime

logger = logging.getLogger(__name__)

CountOne = Callable[[str], int]
"""Live tasks carrying one ``startedBy`` marker."""
ListAll = Callable[[], tuple[Counter[str], int]]
"""Live tasks of the cluster per ``startedBy`` marker, and the API calls that took."""

MAX_AGE = 1.0
"""Seconds a listing may serve fires after it was taken."""


class SharedRunningCounts:
    """Thread-safe; ``count`` answers as ``count_one`` would."""

    def __init__(self, count_one: CountOne, list_all: ListAll) -> None:
        self._count_one = count_one
        self._list_all = list_all
        self._listing_calls = 2  # a cluster under 100 live tasks: one ListTasks, one DescribeTasks
        self._lock = threading.Lock()
        self._listings: dict[datetime, tuple[float, Future[Counter[str] | None]]] = {}

    def count(self, marker: str, *, second: datetime, fires: int) -> int:
        """Live tasks of ``marker``, for a fire scheduled at ``second`` with ``fires`` fires
        due on that second (this one included)."""
        listing = self._listing(second, fires)
        counts = None if listing is None else listing.result()
        return self._count_one(marker) if counts is None else counts[marker]

    def _listing(self, second: datetime, fires: int) -> Future[Counter[str] | None] | None:
        now = time.monotonic()
        with self._lock:
            taken = self._listings.get(second)
            if taken is not None and now - taken[0] <= MAX_AGE:
                return taken[1]
            if fires <= self._listing_calls:
                return None
            listing: Future[Counter[str] | None] = Future()
            self._listings = {s: v for s, v in self._listings.items() if now - v[0] <= MAX_AGE}
            self._listings[second] = (now, listing)
        try:
            counts, self._listing_calls = self._list_all()
        except Exception as exc:  # noqa: BLE001 - the fires then count their own jobs
            logger.warning("listing the cluster's running tasks failed (%s); counting per job", exc)
            listing.set_result(None)
        else:
            logger.debug(
                "one listing (%d calls) serves the %d fires of %s", self._listing_calls, fires, second
            )
            listing.set_result(counts)
        return listing
