"""The job store interface. Every backend passes tests/contract/test_store.py unchanged."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

from common.models import Job, JobStatus

JobChange = Callable[[Job], Job]
"""Computes a job's new state from its current one (may raise InvalidJobError)."""

PAGE_LIMIT = 1000
"""Most jobs one ``list_jobs`` / ``scan_jobs`` page returns."""


class JobStore(ABC):
    """Persistent jobs, ordered by id; the source of truth for both processes.

    Implementations are thread-safe; their methods raise only domain errors
    (``common.errors``): StoreUnavailableError for outages, never a library's own exception.
    """

    blocking: bool = True
    """True when calls wait on the network; webapi then runs them off the event loop."""

    @abstractmethod
    def create_job(self, job: Job) -> Job:
        """Store a new job (its status fields are ignored). JobExistsError if the id is taken."""

    @abstractmethod
    def get_job(self, job_id: str) -> Job:
        """The job with its status. JobNotFoundError if absent."""

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
        """Remove the job. JobNotFoundError if absent."""

    @abstractmethod
    def list_jobs(self, *, skip: int = 0, count: int = 10) -> list[Job]:
        """One page of jobs ordered by id: ``count`` jobs after the first ``skip``."""

    @abstractmethod
    def scan_jobs(self, *, after: str | None = None, limit: int = PAGE_LIMIT) -> list[Job]:
        """Keyset page: up to ``limit`` jobs whose id sorts after ``after``, ordered by id."""

    @abstractmethod
    def count_jobs(self) -> int:
        """How many jobs are stored."""

    @abstractmethod
    def update_status(self, job_id: str, status: JobStatus) -> None:
        """Write the scheduld-managed fields given in ``status`` and nothing else.

        Only fields explicitly set (``status.model_fields_set``) are written; one set to None
        is removed (e.g. ``JobStatus(estimated_next_run=None)`` clears the estimate).
        Never overwrites user fields, so a concurrent user update is never lost.
        JobNotFoundError if the job was deleted meanwhile (it is not recreated).
        """

    def iter_jobs(self, *, page_size: int = PAGE_LIMIT) -> Iterator[Job]:
        """Every job, ordered by id, read in keyset pages (no deep offsets)."""
        after: str | None = None
        while True:
            page = self.scan_jobs(after=after, limit=page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].id

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is unusable afterwards."""
