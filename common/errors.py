"""Domain errors of ECS Scheduler.

    SchedulerError
    ├── JobNotFoundError (LookupError)      a job id that is not stored
    ├── RunNotFoundError (LookupError)      a run id that is not stored
    ├── JobExistsError (KeyError)           create with an id already stored
    ├── InvalidJobError (ValueError)        field → reason, for every bad field
    ├── ConcurrentUpdateError               optimistic write lost the race (store retries it)
    ├── StoreUnavailableError               the store cannot be reached (temporary)
    ├── PublishError                        a change event could not be sent (the write stands)
    ├── BusUnavailableError                 the event bus cannot be reached (temporary)
    ├── LaunchError                         ECS refused or failed a RunTask call
    ├── LeaseLostError                      this replica no longer holds the leadership lease
    ├── NotAuthenticatedError               no credentials, or credentials not recognised
    ├── PermissionDeniedError               the caller's role or scope does not allow the action
    ├── QuotaExceededError                  a job quota (webapi.limits) is reached
    └── RateLimitedError                    too many writes from one client; retry after a while

Each error builds its own message from its arguments, so every raise site reads the same.
Backends translate their library's exceptions into these (chained with ``from exc``);
callers never catch a backend's exception types.
"""

from __future__ import annotations

from collections.abc import Mapping


class SchedulerError(Exception):
    """Base class of every domain error."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class JobNotFoundError(SchedulerError, LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} does not exist")
        self.job_id = job_id


class RunNotFoundError(SchedulerError, LookupError):
    def __init__(self, job_id: str, run_id: str) -> None:
        super().__init__(f"Run {run_id} of job {job_id} does not exist")
        self.job_id = job_id
        self.run_id = run_id


class JobExistsError(SchedulerError, KeyError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} already exists")
        self.job_id = job_id

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class InvalidJobError(SchedulerError, ValueError):
    """Invalid input; ``errors`` maps each bad field (dotted path, API names) to why."""

    def __init__(self, errors: Mapping[str, str], message: str = "Invalid job") -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{field}: {reason}" for field, reason in self.errors.items())
        super().__init__(f"{message}: {detail}" if detail else message)


class ConcurrentUpdateError(SchedulerError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} was changed concurrently")
        self.job_id = job_id


class StoreUnavailableError(SchedulerError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Job store unavailable: {detail}")


class PublishError(SchedulerError):
    """A change event could not be sent to the ops queue (it stays in the outbox: retried)."""

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(f"the change event of job {job_id} was not sent ({detail})")
        self.job_id = job_id


class BusUnavailableError(SchedulerError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Event bus unavailable: {detail}")


class LaunchError(SchedulerError):
    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(f"Launching tasks for job {job_id} failed: {detail}")
        self.job_id = job_id
        self.detail = detail


class LeaseLostError(SchedulerError):
    """A write guarded by a lease was refused: the lease expired or another replica holds it."""

    def __init__(self, holder: str, token: int) -> None:
        super().__init__(f"Replica {holder} no longer holds the lease (fencing token {token})")
        self.holder = holder
        self.token = token


class NotAuthenticatedError(SchedulerError):
    """No bearer token, or one that matches no configured credential (never quoted back)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Not authenticated: {reason}")


class PermissionDeniedError(SchedulerError):
    """An authenticated caller asked for something its role or scope does not allow."""

    def __init__(self, principal: str, reason: str) -> None:
        super().__init__(f"Forbidden for {principal}: {reason}")
        self.principal = principal


class QuotaExceededError(SchedulerError):
    """A create that would exceed a job quota; the message names the quota's setting."""

    def __init__(self, quota: str, limit: int, whose: str) -> None:
        super().__init__(f"Job quota reached: {whose} may have at most {limit} jobs ({quota})")
        self.quota = quota


class RateLimitedError(SchedulerError):
    """Too many writes from one client; ``retry_after`` is in whole seconds."""

    def __init__(self, whose: str, limit: str, retry_after: int) -> None:
        super().__init__(
            f"Too many writes from {whose}: at most {limit} (webapi.limits.write_rate); "
            f"retry after {retry_after} s"
        )
        self.retry_after = retry_after
