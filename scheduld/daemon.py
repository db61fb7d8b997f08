"""scheduld's life: load the schedule, consume change events, reconcile, shut down cleanly.

The store is the truth. A change event only names a job: whatever its ``op``, the job is
re-read and the schedule made to match, so late, duplicated or reordered messages are
harmless. A message is acked only once applied; one that does not parse goes to the
dead-letter queue at once; one whose handling keeps failing is dead-lettered by SQS's redrive
policy. A periodic reconcile heals lost messages and changes made while scheduld was down.
Outages are logged and retried with capped exponential backoff; no thread dies silently.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.bus.base import EventBus, ReceivedMessage
from common.config import Settings
from common.errors import JobNotFoundError, SchedulerError
from common.models import Job, JobStatus, Lease
from common.retry import retrying
from common.schedule import ScheduleError
from common.store.base import Store
from scheduld import metrics, pacing
from scheduld.collector import paused_for_load, thaw
from scheduld.deadletter import DeadLetters
from scheduld.executor import TaskLauncher
from scheduld.firing import Firing
from scheduld.leadership import Leadership, replica_id
from scheduld.pacing import Pacer
from scheduld.scheduler import Schedule, Scheduled
from scheduld.tracking import TaskEvents, Tracker, consume_events, track_until
from scheduld.triggers import TriggerRegistry

logger = logging.getLogger(__name__)
ESTIMATES_PER_WRITE = 100
"""estimatedNextRun values written in one store write: a burst of new jobs costs a write per
hundred, not one each (bench/README.md, "Writes")."""


@dataclass
class BatchOutcome:
    """What one received batch came to, per message (as Powertools' batch processing reports)."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    """Left for SQS to deliver again because scheduld stopped leading mid-batch."""

    @property
    def all_failed(self) -> bool:
        return bool(self.failed) and not self.succeeded


class Daemon:
    """One scheduld replica: leads (runs the schedule, consumes events) or stands by."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        bus: EventBus,
        launcher: TaskLauncher,
        triggers: TriggerRegistry,
        replica: str | None = None,
        dead_letters: DeadLetters | None = None,
        tracker: Tracker | None = None,
        task_events: TaskEvents | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._settings = settings.scheduler
        self._retry = settings.retry
        self._visibility_timeout = float(settings.sqs.visibility_timeout_seconds)
        self._tracking = settings.tracking
        self._tracker = tracker
        self._task_events = task_events
        self._store = store
        self._bus = bus
        self._stop = threading.Event()
        self._active = threading.Event()
        self._estimates: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.replica = replica or replica_id()
        self._leadership = Leadership(
            store,
            holder=self.replica,
            ttl=settings.scheduler.lease_ttl_seconds,
            on_elected=self._elected,
            on_deposed=self._deposed,
        )
        self._schedule = Schedule(settings.scheduler, self._fire_later)
        self._retired: list[Schedule] = []  # schedules of earlier terms; fires may still run
        self._term = 0
        self._term_lock = threading.Lock()
        self._pacer = pacer or Pacer(settings.scheduler.backfill_runs_per_second)
        self._firing = Firing(
            store=store,
            launcher=launcher,
            triggers=triggers,
            next_fire_time=lambda job_id: self._schedule.next_fire_time(job_id),
            on_missing=lambda job_id: self._schedule.remove(job_id),
            lease=self._leadership.current,
            replica=self.replica,
            first_fire_after=lambda job, after, until: self._schedule.first_fire_after(job, after, until),
            fires_due=lambda moment: self._schedule.fires_due(moment),
            settings=settings.scheduler,
            dead_letters=dead_letters,
            on_changed=self._changed,
            retry=settings.retry,
            on_recorded=tracker.add if tracker is not None else None,
            admit=self._pacer.admit,
        )
        self._pending_wake = threading.Event()
        self.loaded = threading.Event()
        self.last_reconcile: datetime | None = None
        metrics.observe_state(
            leading=lambda: self.leading, jobs_scheduled=lambda: len(self.schedule.scheduled_ids())
        )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start competing for leadership; the leader loads every job and fires them.

        Jobs are added before the scheduler starts, so a cold start does not wake the
        scheduler thread once per job; events received meanwhile wait in the queue.
        """
        self._spawn("lease", lambda: self._leadership.run(self._stop))
        self._spawn("consume", self._consume_loop)
        self._spawn("reconcile", self._reconcile_loop)
        self._spawn("estimates", self._estimate_loop)
        self._spawn("pending", self._pending_loop)
        if self._tracker is not None:
            tracker, events = self._tracker, self._task_events
            self._spawn(
                "tracking",
                lambda: track_until(
                    self._stop,
                    tracker,
                    leading=lambda: self.leading,
                    settings=self._tracking,
                    events=events is not None,
                ),
            )
            if events is not None:
                self._spawn(
                    "task-events",
                    lambda: consume_events(self._stop, tracker, events, leading=lambda: self.leading),
                )

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling, let fires under way finish (bounded), stop the scheduler, step down."""
        timeout = self._settings.shutdown_timeout_seconds if timeout is None else timeout
        logger.info("scheduld stopping (waiting up to %.0f s for launches under way)", timeout)
        self._stop.set()
        self._active.clear()

        def close_all() -> None:
            with self._term_lock:
                schedules = [*self._retired, self._schedule]
            for schedule in schedules:
                schedule.shutdown(wait=True)
            self._firing.drain()  # fires handed over to the herd (scheduld/herd.py)

        closer = threading.Thread(target=close_all, daemon=True)
        closer.start()
        closer.join(timeout)
        if closer.is_alive():
            logger.warning("launches still under way after %.0f s; stopping anyway", timeout)
        for thread in self._threads:
            thread.join(timeout=2)
        logger.info("scheduld stopped")

    def request_stop(self) -> None:
        """Signal-safe: only sets the flag ``wait`` returns on."""
        self._stop.set()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    @property
    def leadership(self) -> Leadership:
        return self._leadership

    @property
    def leading(self) -> bool:
        return self._active.is_set() and self._leadership.current() is not None

    # --- leadership --------------------------------------------------------------------------

    def _elected(self, lease: Lease) -> None:
        with self._term_lock:
            self._term += 1
            term = self._term
        self._spawn("activate", lambda: self._activate(lease, term), restart=False)

    def _activate(self, lease: Lease, term: int) -> None:
        """Take over: finish runs a dead leader left claimed, load every job, start firing."""

        def take_over() -> int:
            if self._term != term:
                raise _Superseded
            # side by side: a herd leaves hundreds of runs claimed when its leader dies, and
            # each waits for its RunTask answer (the same client tokens: no task twice)
            unfinished = self._store.unfinished_runs(older_than_token=lease.token)
            with ThreadPoolExecutor(self._settings.max_workers, thread_name_prefix="recover") as recovering:
                list(recovering.map(lambda run: self._firing.recover(run, lease), unfinished))
            with paused_for_load():
                return self.reconcile(catch_up=True)

        policy = retrying(self._retry, temporary=SchedulerError, logger=logger, stop_event=self._stop)
        try:
            count = policy(take_over)
        except (_Superseded, SchedulerError):  # a newer term, or stopping during an outage
            return
        with self._term_lock:
            if self._term != term or self._stop.is_set():
                return
            # active first: the scheduler fires the missed fires kept by the catch-up at once
            self._active.set()
            with paused_for_load():  # starting adds every job put before to APScheduler's store
                self._schedule.start()
        logger.info("leading: %d jobs scheduled", count)
        self.loaded.set()

    def _deposed(self) -> None:
        with self._term_lock:
            self._term += 1
            self._active.clear()
            self._schedule.shutdown(wait=False)
            self._retired.append(self._schedule)
            self._schedule = self._schedule.fresh()
            thaw()  # the retired schedule's objects, frozen by its load, can be collected
        self.loaded.clear()

    # --- loops -------------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None], *, restart: bool = True) -> None:
        body = self._guarded(name, target) if restart else target
        thread = threading.Thread(target=body, name=f"scheduld-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guarded(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def logged() -> None:
            try:
                target()
            except Exception:
                logger.exception("scheduld %s loop crashed; restarting it", name)
                raise

        policy = retrying(self._retry, temporary=Exception, logger=logger, stop_event=self._stop)

        def run() -> None:
            with contextlib.suppress(Exception):  # only once stopping: logged above
                policy(logged)

        return run

    def _reconcile_loop(self) -> None:
        interval = self._settings.reconcile_interval_seconds
        while not self._stop.wait(interval):
            if not self.leading:
                continue
            try:
                self.reconcile()
            except SchedulerError as exc:
                logger.warning("reconcile failed (%s); next try in %.0f s", exc.message, interval)

    def _consume_loop(self) -> None:
        """Receive, handle every message of the batch, then receive again.

        Never sleeps inside a batch: each message is handled and its outcome reported. Waits
        come only between receives, after a receive failed or a whole batch failed (the store
        is likely down), exponentially up to the retry cap and never past the visibility
        timeout, after which SQS delivers the failed messages again anyway.
        """
        policy = retrying(
            self._retry,
            temporary=(SchedulerError, _BatchFailed),
            logger=logger,
            stop_event=self._stop,
            cap=self._visibility_timeout,
        )

        def receive_and_handle() -> None:
            outcome = self.handle_batch(self._bus.receive())
            if outcome.all_failed:
                raise _BatchFailed(outcome.failed)

        while not self._stop.is_set():
            if not self.leading:  # standbys leave the ops queue to the leader
                self._stop.wait(0.2)
                continue
            with contextlib.suppress(SchedulerError, _BatchFailed):  # only once stopping
                policy(receive_and_handle)

    def handle_batch(self, messages: list[ReceivedMessage]) -> BatchOutcome:
        """Apply each message on its own (a job named twice in the batch is re-read once), then
        ack the applied ones in one call; a failed one is left for SQS to deliver again."""
        outcome = BatchOutcome()
        applied: list[ReceivedMessage] = []
        synced: set[str] = set()
        read = self._read_jobs(messages)
        for message in messages:
            if self._stop.is_set() or not self.leading:
                outcome.unhandled.append(message.message_id)  # unacked: SQS delivers it again
            elif message.event is None:
                done = self._dead_letter(message)
                (outcome.succeeded if done else outcome.failed).append(message.message_id)
            elif self.apply(message, synced=synced, read=read):
                applied.append(message)
            else:
                outcome.failed.append(message.message_id)
        outcome.succeeded.extend(self._ack(applied, outcome))
        if outcome.failed:
            logger.warning(
                "change events: %d applied, %d failed (%s), to be delivered again",
                len(outcome.succeeded),
                len(outcome.failed),
                ", ".join(outcome.failed),
            )
        return outcome

    def _ack(self, applied: list[ReceivedMessage], outcome: BatchOutcome) -> list[str]:
        """Ack the applied messages; those not deleted count as failed (delivered again)."""
        if not applied:
            return []
        try:
            not_deleted = set(self._bus.ack_batch(applied))
        except SchedulerError as exc:
            logger.warning("%d applied change events not acked (%s): delivered again", len(applied), exc)
            not_deleted = {message.message_id for message in applied}
        outcome.failed.extend(m.message_id for m in applied if m.message_id in not_deleted)
        acked = [m for m in applied if m.message_id not in not_deleted]
        metrics.EVENTS_CONSUMED.labels(result="applied").inc(sum(len(m.events) for m in acked))
        return [m.message_id for m in acked]

    def _estimate_loop(self) -> None:
        """Keeps estimatedNextRun current off the hot paths (startup, event handling)."""
        while not self._stop.is_set():
            if not self._active.wait(0.5):
                continue  # during a takeover, estimates queue up until the schedule runs
            try:
                job_ids = [self._estimates.get(timeout=0.5)]
            except queue.Empty:
                continue
            with contextlib.suppress(queue.Empty):  # those waiting too, in the same write
                while len(job_ids) < ESTIMATES_PER_WRITE:
                    job_ids.append(self._estimates.get_nowait())
            estimates = {
                job_id: JobStatus(estimated_next_run=self._schedule.next_fire_time(job_id))
                for job_id in dict.fromkeys(job_ids)
            }
            try:
                self._store.update_statuses(estimates)  # deleted jobs meanwhile are skipped
            except SchedulerError as exc:
                logger.warning(
                    "estimatedNextRun of %d jobs not written (%s): %s",
                    len(estimates),
                    exc.message,
                    ", ".join(list(estimates)[:10]),
                )

    def _pending_loop(self) -> None:
        """Runs waiting for the leader: retries that are due, requested (manual and backfill)
        runs. Polled, and woken at once by a run event; the store is the truth either way."""
        deferred = False  # a paced run waits: look again when its turn comes
        while not self._stop.is_set():
            poll = self._settings.pending_poll_seconds
            self._pending_wake.wait(min(poll, max(0.01, self._pacer.retry_in())) if deferred else poll)
            self._pending_wake.clear()
            deferred = False
            lease = self._leadership.current()
            if not self.leading or lease is None:
                continue
            try:
                runs = self._store.pending_runs()
            except SchedulerError as exc:
                logger.warning(
                    "pending runs not read (%s); next try in %.0f s",
                    exc.message,
                    self._settings.pending_poll_seconds,
                )
                continue
            now = datetime.now(UTC)
            for run in runs:
                if self._stop.is_set() or not self.leading:
                    break
                try:
                    if run.status == "retrying" and (run.next_attempt_at or now) <= now:
                        self._firing.retry(run, lease)
                    elif run.status == "requested" and not (deferred and pacing.paced(run)):
                        deferred = not self._firing.run_requested(run, lease)
                except SchedulerError as exc:  # LeaseLostError included: the next pass sees
                    logger.warning("run %s not handled (%s); retried later", run.run_id, exc.message)
                    break
                except Exception:  # one bad run must never stop the others
                    logger.exception("run %s crashed its handler; retried later", run.run_id)

    def _changed(self, job_id: str) -> None:
        """scheduld itself changed a job (suspended it): make the schedule match."""
        try:
            self.sync_job(job_id)
        except SchedulerError as exc:
            logger.warning("job %s: schedule not updated (%s); the reconcile will", job_id, exc.message)

    # --- applying changes --------------------------------------------------------------------

    def _dead_letter(self, message: ReceivedMessage) -> bool:
        """Move a message that is no change event to the dead-letter queue (which acks it)."""
        try:
            self._bus.dead_letter(message, reason=message.error or "not a change event")
        except SchedulerError as exc:
            logger.warning("message %s not dead-lettered (%s); delivered again", message.message_id, exc)
            return False
        metrics.EVENTS_CONSUMED.labels(result="dead_lettered").inc()
        metrics.EVENTS_DEAD_LETTERED.inc()
        return True

    def _read_jobs(self, messages: list[ReceivedMessage]) -> Mapping[str, Job] | None:
        """The jobs a batch's events name, read in one call (bench/README.md, "Writes"): each
        read comes after the write its event announces, as a read per event would. None if
        the store failed: each event then reads its own job (and fails on its own)."""
        job_ids = {event.job_id for message in messages for event in message.events if event.op != "run"}
        if not job_ids:
            return {}
        try:
            return self._store.get_jobs(job_ids)
        except SchedulerError as exc:
            logger.warning("jobs of %d change events not read together (%s)", len(job_ids), exc.message)
            return None

    def apply(
        self,
        message: ReceivedMessage,
        *,
        synced: set[str] | None = None,
        read: Mapping[str, Job] | None = None,
    ) -> bool:
        """Apply every change event of a message (the caller acks it); True when applied.
        ``synced``: jobs already re-read in this batch, which a later event need not re-read;
        ``read``: the batch's jobs as read together (``_read_jobs``)."""
        synced = set() if synced is None else synced
        try:
            for event in message.events:
                if event.op == "run":  # requested runs wait in the store: wake their loop
                    self._pending_wake.set()
                elif event.job_id not in synced:
                    self.sync_job(event.job_id, read=read)
                    synced.add(event.job_id)
            logger.debug("applied %d change events of message %s", len(message.events), message.message_id)
            return True
        except SchedulerError as exc:
            logger.warning(
                "message %s not applied (%s); it will be delivered again", message.message_id, exc.message
            )
        except Exception:
            logger.exception("message %s crashed its handler; it will be retried", message.message_id)
        metrics.EVENTS_CONSUMED.labels(result="retried").inc()
        return False

    def sync_job(self, job_id: str, *, read: Mapping[str, Job] | None = None) -> None:
        """Make the schedule match the store for one job; ``read``: jobs just read from the
        store, where one that is missing was not found."""
        try:
            job = self._store.get_job(job_id) if read is None else read[job_id]
        except (JobNotFoundError, KeyError):
            self._schedule.remove(job_id)
            return
        scheduled = self._put(job)
        if scheduled is not None:
            next_fire = scheduled.next_run or "none (suspended/ended)"
            logger.info("job %s scheduled: next fire %s", job_id, next_fire)

    def reconcile(self, *, catch_up: bool = False) -> int:
        """Diff the whole schedule against the store and fix it; returns the jobs seen."""
        started = time.monotonic()
        seen: set[str] = set()
        drift = 0
        for job in self._store.iter_jobs():
            seen.add(job.id)
            drift += self._put(job, catch_up=catch_up) is not None
        for stale in self._schedule.scheduled_ids() - seen:
            logger.info("job %s is no longer stored; unscheduling it", stale)
            self._schedule.remove(stale)
            drift += 1
        if not catch_up:  # at takeover every job is new to the schedule: that is no drift
            metrics.RECONCILE_DRIFT.inc(drift)
        metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
        self.last_reconcile = datetime.now(UTC)
        metrics.RECONCILE_LAST.set(self.last_reconcile.timestamp())
        return len(seen)

    def _put(self, job: Job, *, catch_up: bool = False) -> Scheduled | None:
        try:
            scheduled = self._schedule.put(job, catch_up=catch_up)
        except ScheduleError as exc:  # stored before a parser change, say: skip, never crash
            logger.error("job %s has an unschedulable schedule %r: %s", job.id, job.schedule, exc)
            return None
        if scheduled is not None and job.estimated_next_run != scheduled.next_run:
            self._estimates.put(job.id)
        return scheduled

    def _fire_later(self, job_id: str, scheduled: datetime) -> None:
        if self._stop.is_set() or not self._active.is_set():
            logger.info("job %s: not firing at %s, scheduld is stopping", job_id, scheduled)
            return
        self._firing.hand_off(job_id, scheduled.astimezone(UTC))


class _Superseded(Exception):
    """A takeover outlived its leadership term."""


class _BatchFailed(Exception):
    """Every message of a batch failed: likely an outage, so back off before the next receive."""

    def __init__(self, message_ids: list[str]) -> None:
        super().__init__(f"all {len(message_ids)} messages of the batch failed")
