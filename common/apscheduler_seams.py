"""Every place the project reaches into APScheduler 3's internals, and why: nothing else
subclasses or reads a private part of it (scheduld/scheduler.py and common/schedule.py,
common/expressions.py use only what this module exports and APScheduler's public API).

Checked against APScheduler >=3.11,<3.12 (3.11.3); tests/common/test_apscheduler_seams.py
drives each seam below through a real scheduler or trigger and fails, naming the seam, on an
upgrade that breaks it; ``CHECKED`` is the range it accepts. Each seam buys a measured cost
(bench/firing.py, cold start and herds) or a syntax APScheduler lacks; on APScheduler 4 the
first four go: its scheduler passes the scheduled fire time to jobs and builds triggers cheaply.

Scheduler side (used by scheduld/scheduler.py):

1. ``FireTimeExecutor._do_submit_job``: an executor that runs each job at once on the
   scheduler's thread, as APScheduler's own ``DebugExecutor`` does, so a job learns the
   *scheduled* time it runs for (the run's key, exactly-once firing) and the fires of each
   second are counted (one ECS listing serves a herd). Uses ``run_job``,
   ``job._jobstore_alias`` and ``_run_job_success``/``_run_job_error``. scheduld's job only
   hands its fire over (scheduld/herd.py); a thread pool's hand-off per job cost more than
   the job: APScheduler's part of a 1 000-job herd went from 63–130 to 30–34 µs of CPU a
   fire (bench/README.md, "scheduld's CPU per herd fire").
2. ``presigned``: APScheduler checks each added job's callable with ``inspect.signature``,
   which honours a ``__signature__`` attribute; a precomputed one saves most of that check.

Trigger side (used by common/schedule.py and common/expressions.py, in both processes):

3. ``SharedFieldsCronTrigger.FIELDS_MAP``: CronTrigger builds each field through
   ``FIELDS_MAP[name](name, exprs, is_default)``; a cached factory shares compiled fields
   (immutable once built) between triggers of equal fields.
4. ``metered_next_fire``: CronTrigger's next-fire search calls each field's
   ``get_next_value`` and may otherwise walk year by year to 9999; a twin trigger (built
   through ``__new__`` and its five slots) whose ``fields`` charge a step budget bounds it.
5. ``DayExpression`` and ``ExtendedCronTrigger.DAY_EXPRESSIONS``: a field compiles its text
   with the first of its ``COMPILERS`` whose ``value_re`` matches; an expression answers
   ``get_next_value(date, field)``. Extra day-of-month expressions (EventBridge's ``15W``)
   are added there.
6. ``ExtendedCronTrigger.fields_accept`` and ``refused_field``: read ``fields``
   (``REAL``, ``get_value``, ``get_next_value``) and build one field alone.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import AllExpression
from apscheduler.triggers.cron.fields import BaseField, DayOfMonthField

CHECKED = ((3, 11), (3, 12))
"""APScheduler versions these seams were checked against: from (inclusive), to (exclusive)."""

_current = threading.local()


def current_run_time() -> datetime | None:
    """In a job run by ``FireTimeExecutor``: the scheduled time this run is for."""
    run_time: datetime | None = getattr(_current, "run_time", None)
    return run_time


# --- scheduler side -------------------------------------------------------------------------


class FireTimeExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each job at once on the scheduler's thread, telling it which scheduled time it
    runs for. For jobs that return at once: one that blocks holds up every later fire.

    As in APScheduler's ``DebugExecutor``, a job's instance count is back to zero when
    ``submit_job`` returns (the run is over), so ``max_instances`` never refuses a run: a
    job that must not overlap its previous fire checks that itself (scheduld/herd.py)."""

    def __init__(self) -> None:
        super().__init__()
        self._submitted: Counter[datetime] = Counter()
        self._submitted_lock = threading.Lock()

    def submitted(self, run_time: datetime) -> int:
        """Fires submitted so far for ``run_time``: how big its herd is."""
        with self._submitted_lock:
            return self._submitted[run_time]

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        run_time = run_times[-1]  # coalesced: one run time per submission
        with self._submitted_lock:
            if run_time not in self._submitted and len(self._submitted) >= 256:
                self._submitted = Counter({t: self._submitted[t] for t in sorted(self._submitted)[-128:]})
            self._submitted[run_time] += 1
        _current.run_time = run_time
        try:
            events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
        except BaseException as exc:  # noqa: BLE001 - reported as APScheduler reports it
            self._run_job_error(job.id, exc, exc.__traceback__)
        else:
            self._run_job_success(job.id, events)
        finally:
            _current.run_time = None


def presigned(fire: Callable[[str], None]) -> Callable[[str], None]:
    """``fire`` as a function carrying its own ``__signature__`` (seam 3)."""

    def fire_job(job_id: str) -> None:
        fire(job_id)

    fire_job.__signature__ = inspect.signature(fire_job)  # type: ignore[attr-defined]
    return fire_job


# --- trigger side ---------------------------------------------------------------------------


COMPILED_FIELDS_KEPT = 4096
"""Distinct compiled fields kept for sharing (each is one field's expression)."""


@functools.lru_cache(maxsize=COMPILED_FIELDS_KEPT)
def _compiled_field(field_class: type[BaseField], name: str, exprs: str, is_default: bool) -> BaseField:
    return field_class(name, exprs, is_default)


class SearchBudgetExceeded(ValueError):
    """The next-fire search took more field steps than it was given."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"no fire time found within {steps} search steps")
        self.steps = steps


class _Budget(threading.local):
    """The steps left to the search running on this thread."""

    steps = 0
    left = 0


_budget = _Budget()


class _MeteredField:
    """A compiled field that charges one step of this thread's budget per ``get_next_value``
    (seam 4): the only way into CronTrigger's search loop."""

    __slots__ = ("_next", "name", "is_default", "REAL", "get_value", "get_min", "get_max")

    def __init__(self, field: BaseField) -> None:
        self._next = field.get_next_value
        self.name = field.name
        self.is_default = field.is_default
        self.REAL = field.REAL
        self.get_value = field.get_value
        self.get_min = field.get_min
        self.get_max = field.get_max

    def get_next_value(self, dateval: datetime) -> int | None:
        _budget.left -= 1
        if _budget.left < 0:
            raise SearchBudgetExceeded(_budget.steps)
        value: int | None = self._next(dateval)
        return value


def _metered_twin(
    trigger: CronTrigger, metered_field: Callable[[BaseField], _MeteredField] = _MeteredField
) -> CronTrigger:
    """A plain CronTrigger with the same settings whose fields charge the budget."""
    twin = CronTrigger.__new__(CronTrigger)
    twin.timezone = trigger.timezone
    twin.start_date = trigger.start_date
    twin.end_date = trigger.end_date
    twin.jitter = trigger.jitter
    twin.fields = [metered_field(field) for field in trigger.fields]
    return twin


_shared_metered_fields: dict[int, tuple[BaseField, _MeteredField]] = {}
"""The metered field of each shared compiled field, by the field's id (compiled fields compare
by their expressions and have no hash); the field is kept beside it, so an id reused by
another object after the first was freed is recognised."""


def _shared_metered_field(field: BaseField) -> _MeteredField:
    """One metered field per shared compiled field, as the compiled fields are shared (seam 3):
    each trigger making its own eight was a third of a 100 000-job cold start
    (bench/README.md, "Cold start")."""
    entry = _shared_metered_fields.get(id(field))
    if entry is None or entry[0] is not field:
        if len(_shared_metered_fields) >= COMPILED_FIELDS_KEPT:
            _shared_metered_fields.clear()  # as many as compiled fields are kept, at most
        entry = _shared_metered_fields[id(field)] = (field, _MeteredField(field))
    return entry[1]


def metered_next_fire(
    trigger: CronTrigger, previous: datetime | None, now: datetime, *, steps: int
) -> datetime | None:
    """CronTrigger's own ``get_next_fire_time`` in at most ``steps`` field steps (seam 4);
    SearchBudgetExceeded beyond. Only the fields' search runs: a subclass's own
    ``get_next_fire_time`` (DST handling, bounds) is the caller's to apply."""
    twin = trigger.metered() if isinstance(trigger, SharedFieldsCronTrigger) else _metered_twin(trigger)
    outer = _budget.steps, _budget.left
    _budget.steps = _budget.left = steps
    try:
        result: datetime | None = CronTrigger.get_next_fire_time(twin, previous, now)
    finally:
        _budget.steps, _budget.left = outer
    return result


class SharedFieldsCronTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger whose compiled fields are shared with other triggers of equal fields
    (seam 3). Compiling its eight fields is most of a CronTrigger's construction, and
    schedules repeat field values (``0`` hours, ``*`` years), so a 100 000-job cold start
    compiles a few hundred fields instead of 800 000."""

    __slots__ = ("_twin",)
    FIELDS_MAP = {
        name: functools.partial(_compiled_field, field_class)
        for name, field_class in CronTrigger.FIELDS_MAP.items()
    }

    def metered(self) -> CronTrigger:
        """Its metered twin, made once (triggers do not change once built)."""
        twin: CronTrigger | None = getattr(self, "_twin", None)
        if twin is None:
            twin = self._twin = _metered_twin(self, _shared_metered_field)
        return twin


class DayExpression(AllExpression):  # type: ignore[misc]
    """An extra day-of-month expression for ``ExtendedCronTrigger.DAY_EXPRESSIONS`` (seam 5).

    APScheduler builds it with ``value_re``'s named groups as keyword arguments when the
    field's text matches; ``next_day`` gives the first matching day of the month from
    ``from_day`` on, or None."""

    value_re: ClassVar[re.Pattern[str]]

    def __init__(self) -> None:
        super().__init__(None)

    def next_day(self, year: int, month: int, from_day: int) -> int | None:
        raise NotImplementedError

    def get_next_value(self, date: datetime, field: Any) -> int | None:
        return self.next_day(date.year, date.month, date.day)


class ExtendedCronTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger whose day-of-month field also accepts the subclass's
    ``DAY_EXPRESSIONS`` (seam 5), and which can check a moment against its fields (seam 6)."""

    __slots__ = ()
    DAY_EXPRESSIONS: ClassVar[tuple[type[DayExpression], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        compilers = [*DayOfMonthField.COMPILERS, *cls.DAY_EXPRESSIONS]
        day_field = type(f"{cls.__name__}DayField", (DayOfMonthField,), {"COMPILERS": compilers})
        cls.FIELDS_MAP = {**CronTrigger.FIELDS_MAP, "day": day_field}

    def fields_accept(self, moment: datetime) -> bool:
        """Whether every field of this trigger matches ``moment`` (local time, as is)."""
        return all(f.get_next_value(moment) == f.get_value(moment) for f in self.fields if f.REAL)

    @classmethod
    def refused_field(cls, fields: dict[str, str]) -> str | None:
        """The first of ``fields`` (CronTrigger keyword arguments) that does not compile."""
        for name, value in fields.items():
            try:
                cls.FIELDS_MAP[name](name, value)
            except ValueError:
                return name
        return None
