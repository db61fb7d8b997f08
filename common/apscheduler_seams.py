"""Where scheduld reaches into APScheduler 3's internals, and why; the trigger-side seams are
the schedule parser's (common/schedule.py, since webapi builds triggers too).

Checked against APScheduler >=3.11,<3.12 (3.11.3); tests/common/test_apscheduler_seams.py fails
on an upgrade that breaks any of them, and ``CHECKED`` is the range it accepts. Each seam buys
a measured cost (bench/firing.py, cold start and herds); on APScheduler 4 they all go:
its scheduler passes the scheduled fire time to jobs and builds triggers cheaply.

1. ``FireTimeExecutor._do_submit_job``: APScheduler's thread-pool executor, overridden so a job
   learns the *scheduled* time it runs for (the run's key, exactly-once firing) and counts the
   fires of each second (one ECS listing serves a herd). Uses ``run_job``,
   ``job._jobstore_alias``, ``_run_job_success``/``_run_job_error`` and ``self._pool``.
2. ``shutdown_pool``: wait for fires under way after the scheduler was shut down without
   waiting (APScheduler keeps no public handle on the pool).
3. ``presigned``: APScheduler checks each added job's callable with ``inspect.signature``,
   which honours a ``__signature__`` attribute; a precomputed one saves most of that check.
4. In common/schedule.py: ``SharedFieldsCronTrigger.FIELDS_MAP`` (CronTrigger builds each
   field through ``FIELDS_MAP[name](name, exprs, is_default)``; a cached factory shares
   compiled fields between triggers) and the metered next-fire search (a twin trigger whose
   ``fields`` charge a step budget). Checked against the same ``CHECKED`` range.
"""

from __future__ import annotations

import inspect
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor

CHECKED = ((3, 11), (3, 12))
"""APScheduler versions these seams were checked against: from (inclusive), to (exclusive)."""

_current = threading.local()


def current_run_time() -> datetime | None:
    """In a job run by ``FireTimeExecutor``: the scheduled time this run is for."""
    run_time: datetime | None = getattr(_current, "run_time", None)
    return run_time


class FireTimeExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """APScheduler's thread pool, but the job learns which scheduled time it runs for."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers)
        self._submitted: Counter[datetime] = Counter()
        self._submitted_lock = threading.Lock()

    def submitted(self, run_time: datetime) -> int:
        """Fires submitted so far for ``run_time``: how big its herd is."""
        with self._submitted_lock:
            return self._submitted[run_time]

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        with self._submitted_lock:
            if run_times[-1] not in self._submitted and len(self._submitted) >= 256:
                self._submitted = Counter({t: self._submitted[t] for t in sorted(self._submitted)[-128:]})
            self._submitted[run_times[-1]] += 1

        def run() -> Any:
            _current.run_time = run_times[-1]  # coalesced: one run time per submission
            return run_job(job, job._jobstore_alias, run_times, self._logger.name)

        def done(future: Any) -> None:
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run).add_done_callback(done)


def shutdown_pool(executor: FireTimeExecutor) -> None:
    """Wait for the executor's jobs under way, even after a shutdown that did not wait."""
    executor._pool.shutdown(wait=True)  # noqa: SLF001


def presigned(fire: Callable[[str], None]) -> Callable[[str], None]:
    """``fire`` as a function carrying its own ``__signature__`` (seam 3)."""

    def fire_job(job_id: str) -> None:
        fire(job_id)

    fire_job.__signature__ = inspect.signature(fire_job)  # type: ignore[attr-defined]
    return fire_job
