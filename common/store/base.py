"""The store's role interfaces: jobs, run log, leases. Each backend implements them all (``Store``).

A process is typed against the roles it uses, so who may write which field is in the types:

- ``JobStore`` — the jobs: webapi's CRUD (user fields) and scheduld's reads and status writes
  (``update_status``: the scheduld-owned fields). Contract: tests/contract/test_jobs.py.
- ``RunHistory`` / ``RunLog`` — one record per (job, scheduled fire time): webapi reads the
  history; scheduld claims, finishes, records outcomes and prunes. Contract: test_run_log.py.
- ``LeaseStore`` — leadership among scheduld replicas. Contract: test_leases.py.
- ``Outbox`` — the change events every job write and run request records with itself (a
  transactional outbox); webapi's relay sends them to SQS. Contract: test_outbox.py.
- ``Store`` — all of them plus what concerns the whole store (``close``); what
  ``create_store`` returns and what a backend subclasses.

The roles are Protocols with abstract methods: a backend subclasses ``Store`` explicitly (so a
missing method fails at instantiation), and a process may declare the union of the roles it
needs as a Protocol of its own (webapi/deps.py) that every backend satisfies structurally.
Implementations are thread-safe; their methods raise only domain errors (``common.errors``):
StoreUnavailableError for outages, never a library's own exception.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from common.errors import JobNotFoundError
from common.models import ChangeEvent, Job, JobStatus, Lease, Run

T = TypeVar("T")

JobChange = Callable[[Job], Job]
"""Computes a job's new state from its current one (may raise InvalidJobError)."""

PAGE_LIMIT = 1000
"""Most jobs one ``list_jobs`` / ``scan_jobs`` page returns."""

UNFINISHED = ("requested", "retrying")
"""Run statuses ``prune_runs`` never deletes: runs still waiting to launch."""


class WriteWouldWait(Exception):
    """``try_write``: the write could not start at once; nothing was done."""


class JobStore(Protocol):
    """Persistent jobs, ordered by id; the source of truth for both processes.

    Every write (create, update, delete) records its change event in the outbox (``Outbox``)
    atomically with itself: a write that returned has its event, one that failed has none
    that could tell a change that did not happen."""

    blocking: bool = True
    """True when calls wait on the network. Part of the contract for callers on an event loop
    (webapi): they call a non-blocking store (SQLite: WAL reads never wait) on the loop and a
    blocking one in a thread pool. Writes may always wait and always go to the thread pool."""

    def try_write(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``write`` (one of this store's write methods) on the calling thread only if it
        can start without waiting for anyone; else raise WriteWouldWait, nothing done.

        An event loop may then write without handing the call to a thread (what that saves is
        measured by bench/request_cpu.py), and still never waits on a lock: when the write
        would wait, it goes to the thread pool as before. The default never writes at once.
        """
        raise WriteWouldWait

    @abstractmethod
    def create_job(self, job: Job) -> Job:
        """Store a new job (its status fields are ignored). JobExistsError if the id is taken."""

    @abstractmethod
    def get_job(self, job_id: str) -> Job:
        """The job with its status. JobNotFoundError if absent."""

    def get_jobs(self, job_ids: Collection[str]) -> dict[str, Job]:
        """The stored jobs among ``job_ids``, by id (absent ones left out): what ``get_job``
        gives for each, read together where the backend can (scheduld's batches of events)."""
        found: dict[str, Job] = {}
        for job_id in job_ids:
            with contextlib.suppress(JobNotFoundError):
                found[job_id] = self.get_job(job_id)
        return found

    def get_job_document(self, job_id: str) -> dict[str, Any]:
        """The job as served: ``get_job(job_id).to_document()`` (API names, unset fields left
        out). A backend may build it without re-validating the stored job, since only validated
        jobs are stored; tests/contract/test_jobs.py holds both forms equal. JobNotFoundError
        if absent."""
        return self.get_job(job_id).to_document()

    def list_job_documents(self, *, skip: int = 0, count: int = 10) -> list[dict[str, Any]]:
        """``list_jobs`` as served documents (see ``get_job_document``)."""
        return [job.to_document() for job in self.list_jobs(skip=skip, count=count)]

    @abstractmethod
    def update_job(self, job_id: str, change: JobChange) -> Job:
        """Apply ``change`` to the current job and store the result atomically.

        Concurrency-safe: if another writer changed the job in between, re-read and re-apply
        (compare-and-set), so no concurrent update is lost. Only user fields are written;
        status fields are kept as stored. JobNotFoundError if absent; errors raised by
        ``change`` propagate and nothing is written. Returns the stored job.
        """

    @abstractmethod
    def delete_job(self, job_id: str) -> None:
        """Remove the job and its runs. JobNotFoundError if absent."""

    @abstractmethod
    def list_jobs(self, *, skip: int = 0, count: int = 10) -> list[Job]:
        """One page of jobs ordered by id: ``count`` jobs after the first ``skip``."""

    @abstractmethod
    def scan_jobs(self, *, after: str | None = None, limit: int = PAGE_LIMIT) -> list[Job]:
        """Keyset page: up to ``limit`` jobs whose id sorts after ``after``, ordered by id."""

    def iter_jobs(self, *, page_size: int = PAGE_LIMIT) -> Iterator[Job]:
        """Every job, ordered by id, read in keyset pages (no deep offsets)."""
        after: str | None = None
        while True:
            page = self.scan_jobs(after=after, limit=page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].id

    @abstractmethod
    def count_jobs(self) -> int:
        """How many jobs are stored."""

    @abstractmethod
    def count_jobs_created_by(self, principal: str) -> int:
        """How many stored jobs ``principal`` created (``Job.created_by``), through an index,
        not a scan: webapi checks per-principal job quotas with it on every create."""

    @abstractmethod
    def update_status(self, job_id: str, status: JobStatus) -> None:
        """Write the scheduld-managed fields given in ``status`` and nothing else.

        Only fields explicitly set (``status.model_fields_set``) are written; one set to None
        is removed (e.g. ``JobStatus(estimated_next_run=None)`` clears the estimate).
        Never overwrites user fields, so a concurrent user update is never lost.
        JobNotFoundError if the job was deleted meanwhile (it is not recreated).
        """

    def update_statuses(self, statuses: Mapping[str, JobStatus]) -> list[str]:
        """``update_status`` for each job, in one write where the backend can (scheduld's
        estimates); returns the ids of jobs no longer stored (skipped, not recreated)."""
        missing: list[str] = []
        for job_id, status in statuses.items():
            try:
                self.update_status(job_id, status)
            except JobNotFoundError:
                missing.append(job_id)
        return missing


class RunHistory(Protocol):
    """The read side of the run log: what webapi serves as a job's history."""

    @abstractmethod
    def list_runs(self, job_id: str, *, skip: int = 0, count: int = 10) -> list[Run]:
        """A job's runs, newest scheduled time first."""

    @abstractmethod
    def get_run(self, job_id: str, scheduled_for: datetime) -> Run:
        """One run by its key (job, scheduled time). RunNotFoundError if absent."""


class RunRequests(Protocol):
    """Runs asked for by users (run now, backfill): webapi writes them, the leader claims them."""

    @abstractmethod
    def request_runs(self, runs: list[Run]) -> list[Run]:
        """Store ``requested`` runs (manual runs, backfills) that the leader will launch, with
        one ``run`` change event per job in the outbox (same transaction).

        Create-if-absent per (job, scheduled time): a time that already has a run keeps it.
        A run with an ``idempotencyKey`` already used by one of its job's runs is not stored
        again. Returns, for each given run, the run stored under it (new or existing).
        """


class RunLog(RunHistory, Protocol):
    """Runs, one per (job, scheduled fire time): claims, outcomes, history. scheduld writes it."""

    @abstractmethod
    def claim_run(self, run: Run, lease: Lease) -> bool:
        """Record ``run`` if no run exists for its (job, scheduled time): True if claimed.

        Atomic create-if-absent, so of several replicas exactly one wins a fire. A run left
        ``claimed`` by a holder with an older fencing token (it died before finishing) may be
        re-claimed by the current lease holder. Raises LeaseLostError if ``lease`` is no
        longer the current, unexpired lease.
        """

    @abstractmethod
    def finish_run(self, run: Run) -> None:
        """Store the outcome of a run this replica claimed (only if it still owns the claim)."""

    @abstractmethod
    def unfinished_runs(self, *, older_than_token: int, limit: int = 1000) -> list[Run]:
        """Runs still ``claimed`` by an earlier leadership term: their claimer died mid-fire.

        A new leader re-claims and completes them (same RunTask clientToken, so a launch that
        did reach ECS is not repeated). Served by an index on claimed runs, not a scan.
        """

    @abstractmethod
    def open_runs(self, *, after: str | None = None, limit: int = 1000) -> list[Run]:
        """Runs whose tasks are still tracked (``launched``/``partially_launched``), ordered by
        run id; keyset paging after the run id ``after``. Served by an index on open runs."""

    @abstractmethod
    def record_outcome(self, run: Run) -> bool:
        """Store what tracking learnt about ``run`` (its tasks, and its end once known), only
        while the stored run is still open: an ended run is never rewritten, so its end is
        recorded (and notified) once. When ``run`` has ended, the job's lastRunStatus,
        lastSuccess / lastFailure and consecutiveFailures (``outcome_status``) are written
        with it. Returns False when nothing was written (run ended, pruned or deleted)."""

    @abstractmethod
    def pending_runs(self, *, limit: int = 1000) -> list[Run]:
        """Runs waiting for the leader (``requested``, or ``retrying`` a failed launch),
        oldest scheduled time first; served by an index on those statuses, not a scan."""

    @abstractmethod
    def reclaim_run(self, run: Run, lease: Lease, *, expect: str) -> bool:
        """Move a stored run from status ``expect`` to ``run`` (status ``claimed``, the
        lease's token) atomically: True for the one caller that did. LeaseLostError if
        ``lease`` is no longer the current lease."""

    @abstractmethod
    def prune_runs(self, job_id: str, *, keep: int, older_than: datetime | None = None) -> int:
        """Delete a job's runs beyond the newest ``keep`` and those scheduled before
        ``older_than``, through the (job, time) index; returns how many went. Runs still
        to launch (``UNFINISHED``: a backfill's, a retry's) are kept."""

    @abstractmethod
    def record_run(
        self, run: Run, status: JobStatus, *, keep: int, older_than: datetime | None = None
    ) -> bool:
        """What a completed fire stores: ``finish_run(run)``, the job's ``status``
        (``JobStore.update_status``) and ``prune_runs``, in one transaction where the store has
        them (a herd of fires then queues on one write per fire, not three). Returns False,
        with the run still finished, when the job was deleted meanwhile."""

    def claim_runs(self, runs: Sequence[Run], lease: Lease) -> list[bool]:
        """``claim_run`` of each run, in one transaction where the store has them (the fires
        of a herd claim together, scheduld/batching.py); by default one by one.
        LeaseLostError fails them all."""
        return [self.claim_run(run, lease) for run in runs]

    def record_runs(self, records: Sequence[RunRecord]) -> list[bool]:
        """``record_run`` of each record, in one transaction where the store has them; by
        default one by one."""
        return [self.record_run(r.run, r.status, keep=r.keep, older_than=r.older_than) for r in records]


@dataclass(frozen=True)
class RunRecord:
    """The arguments of one ``RunLog.record_run``, for ``record_runs``."""

    run: Run
    status: JobStatus
    keep: int
    older_than: datetime | None = None


class LeaseStore(Protocol):
    """Leadership among scheduld replicas: named leases with fencing tokens."""

    @abstractmethod
    def acquire_lease(self, name: str, *, holder: str, ttl: float) -> Lease | None:
        """Take or renew the lease ``name`` for ``ttl`` seconds; None if another holds it.

        Conditional write: a free or expired lease is taken with the fencing token + 1; the
        current holder renews it (same token while unexpired). Time is the store's clock
        (SQLite: this machine's), so replicas need clocks closer than the ttl.
        """

    @abstractmethod
    def release_lease(self, lease: Lease) -> None:
        """Give the lease up (if still held by ``lease``), so a standby takes over at once."""


@dataclass(frozen=True)
class OutboxEntry:
    """One recorded change event waiting to be sent; ``id`` is the backend's, opaque."""

    id: str
    event: ChangeEvent
    recorded_at: datetime


class Outbox(Protocol):
    """Change events recorded with the writes they announce, until a relay has sent them.

    Relays (one per webapi replica) may run concurrently: a claim hides events from other
    relays for ``claim_seconds``, after which an unsent event is claimed again, so an event
    is sent at least once whoever crashes; rarely twice, which consumers tolerate.
    """

    @abstractmethod
    def claim_events(self, *, limit: int = 100, claim_seconds: float = 10.0) -> list[OutboxEntry]:
        """Up to ``limit`` unclaimed (or claim-expired) events, oldest first, now claimed by
        the caller for ``claim_seconds``."""

    @abstractmethod
    def remove_events(self, ids: Sequence[str]) -> None:
        """Forget sent events (ids from ``claim_events``); unknown ids are ignored."""

    @abstractmethod
    def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many events wait, and when the oldest was recorded (None when none wait)."""


class Store(JobStore, RunLog, RunRequests, LeaseStore, Outbox, Protocol):
    """Every role, as one backend implements them; operations on the whole store go here."""

    def record_run(
        self, run: Run, status: JobStatus, *, keep: int, older_than: datetime | None = None
    ) -> bool:
        """``RunLog.record_run`` in three writes, for a backend without multi-write transactions."""
        self.finish_run(run)
        self.prune_runs(run.job_id, keep=keep, older_than=older_than)
        try:
            self.update_status(run.job_id, status)
        except JobNotFoundError:
            return False
        return True

    def verify(self) -> None:
        """Raise StoreUnavailableError if the store cannot be reached or its integrity is lost
        (readiness checks call this); by default one cheap read."""
        self.count_jobs()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is unusable afterwards."""
