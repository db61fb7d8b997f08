"""Elasticsearch / OpenSearch job store: production storage.

Written once for both client libraries over ``SearchClient`` (common/store/search_client.py),
which also turns their exceptions into NotFound, Conflict or StoreUnavailableError.

Each job is one document ``{"id", "job": {user fields}, "status": {scheduld fields}}`` in an
index created with an explicit mapping: only ``id`` is indexed (a keyword, for ordering), user
data is stored but never indexed, so no user value can clash with a mapping. A user update is
compare-and-set on ``if_seq_no``/``if_primary_term`` (re-read and re-applied on conflict); a
status write is a partial ``update`` of ``status`` alone, so neither overwrites the other.

Reads are read-your-writes: search (near-real-time) supplies only the ordered ids and a
real-time multi-get the documents, so a list shows an update at once; writes that add or remove
ids (create, delete) wait for the refresh that makes them searchable (``refresh=wait_for``).
Pages come from ``from``/``size`` inside the index's result window and from ``search_after``
hops over sort values beyond it.

The outbox is an index of its own (no multi-document transactions): a write records its event
first, hidden (``ready_at`` in the future), then writes the job, then shows the event. So an
acknowledged write always has its event; if the process dies between, the hidden event shows
itself after ``OUTBOX_SETTLE_SECONDS`` (longer than any write can take): an event for a write
that failed is only a spurious "re-read this job", which consumers handle as a no-op. A relay
claims an event by a conditional write (``if_seq_no``), so two relays do not both take it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import tenacity

from common.config import ElasticsearchSettings
from common.errors import (
    ConcurrentUpdateError,
    JobExistsError,
    JobNotFoundError,
    LeaseLostError,
    RunNotFoundError,
)
from common.models import (
    OPEN_RUN_STATUSES,
    ChangeEvent,
    ChangeOp,
    Job,
    JobStatus,
    Lease,
    Run,
    outcome_status,
    run_id,
)
from common.store.base import PAGE_LIMIT, UNFINISHED, JobChange, OutboxEntry, Store
from common.store.search_client import Conflict, NotFound, SearchClient, Versioned, connect

logger = logging.getLogger(__name__)

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "created_by": {"type": "keyword"},  # job quotas count by it
        "job": {"type": "object", "enabled": False},
        "status": {"type": "object", "enabled": False},
    },
}
RUN_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "job_id": {"type": "keyword"},
        "scheduled_for": {"type": "keyword"},  # fixed-width UTC text: orders like time
        "token": {"type": "long"},
        "status": {"type": "keyword"},
        "run": {"type": "object", "enabled": False},
    },
}
LEASE_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "holder": {"type": "keyword"},
        "token": {"type": "long"},
        "expires_at": {"type": "double"},
    },
}
OUTBOX_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "event": {"type": "object", "enabled": False},
        "recorded_at": {"type": "double"},
        "ready_at": {"type": "double"},  # hidden from relays until its write is done
        "claimed_until": {"type": "double"},
    },
}
OUTBOX_SETTLE_SECONDS = 120.0
"""When a hidden event shows itself if its writer died before showing it: longer than any
write may take (client timeouts, retries), so it is never sent before its write landed."""
CAS_ATTEMPTS = 50
_CAS_RETRY = tenacity.Retrying(
    retry=tenacity.retry_if_exception_type(Conflict),
    stop=tenacity.stop_after_attempt(CAS_ATTEMPTS),
    wait=tenacity.wait_random_exponential(multiplier=0.002, max=0.1),
    reraise=True,
)
"""Lost compare-and-set races are re-read and re-applied at once, with a little jitter: a
conflict is another writer, not an outage, so this is not the outage policy of common/retry.py."""
STATUS_RETRIES = 10
"""``retry_on_conflict`` of a status write: the cluster re-applies it if a user update lands."""
_BY_ID: list[dict[str, str]] = [{"id": "asc"}]


class ElasticsearchJobStore(Store):
    blocking = True

    def __init__(self, client: SearchClient, *, index: str, result_window: int | None = None) -> None:
        self._client = client
        self._index = index
        settings = {"index": {"max_result_window": result_window}} if result_window else {}
        self._client.ensure_index(index, settings, MAPPINGS)
        self._client.add_fields(index, {"created_by": MAPPINGS["properties"]["created_by"]})
        self._runs = f"{index}-runs"
        self._leases = f"{index}-leases"
        self._outbox = f"{index}-outbox"
        self._client.ensure_index(self._runs, {}, RUN_MAPPINGS)
        self._client.ensure_index(self._leases, {}, LEASE_MAPPINGS)
        self._client.ensure_index(self._outbox, {}, OUTBOX_MAPPINGS)
        self._window = self._client.result_window(index)

    @classmethod
    def from_settings(
        cls, settings: ElasticsearchSettings, *, client: Any = None, result_window: int | None = None
    ) -> ElasticsearchJobStore:
        """A store over ``client`` (an ``Elasticsearch`` or ``OpenSearch`` client matching
        ``settings.flavour``), or over one built from ``hosts`` and ``client_options``.

        ``result_window`` sets ``index.max_result_window`` if the index is created here (tests
        use a tiny one to reach the deep-page path); an existing index keeps its own.
        """
        wrapped = connect(settings, client)
        try:
            return cls(wrapped, index=settings.index, result_window=result_window)
        except BaseException:
            if client is None:  # ours to close
                wrapped.close()
            raise

    # --- jobs (JobStore) ------------------------------------------------------------------

    def create_job(self, job: Job) -> Job:
        document: dict[str, Any] = {"id": job.id, "job": job.user_document(), "status": {}}
        if job.created_by is not None:
            document["created_by"] = job.created_by
        with self._announcing("add", job.id):
            try:
                self._client.create(self._index, job.id, document, refresh="wait_for")
            except Conflict as exc:
                raise JobExistsError(job.id) from exc
        return Job.model_validate(job.user_document())

    def get_job(self, job_id: str) -> Job:
        return _job(self._get(job_id).source)

    def update_job(self, job_id: str, change: JobChange) -> Job:
        def rewrite(source: dict[str, Any]) -> dict[str, Any]:
            return {**source, "job": change(_job(source)).user_document()}

        with self._announcing("modify", job_id):
            return _job(self._compare_and_set(job_id, rewrite))

    def delete_job(self, job_id: str) -> None:
        with self._announcing("remove", job_id):
            try:
                self._client.delete(self._index, job_id, refresh="wait_for")
            except NotFound as exc:
                raise JobNotFoundError(job_id) from exc
            self._client.delete_by_query(self._runs, {"term": {"job_id": job_id}})

    def list_jobs(self, *, skip: int = 0, count: int = 10) -> list[Job]:
        if skip + count <= self._window:
            body = {"from": skip, "size": count, "sort": _BY_ID, "_source": False, "track_total_hits": False}
            return self._fetch([hit["_id"] for hit in self._client.search(self._index, body)])
        # Beyond the window ``from`` is refused: hop over the first ``skip`` ids instead.
        walked, after = 0, None
        for ids in self._id_batches(after=None, count=skip):
            walked, after = walked + len(ids), ids[-1]
        if walked < skip:
            return []
        return self.scan_jobs(after=after, limit=count)

    def scan_jobs(self, *, after: str | None = None, limit: int = PAGE_LIMIT) -> list[Job]:
        return self._fetch([job_id for ids in self._id_batches(after=after, count=limit) for job_id in ids])

    def count_jobs(self) -> int:
        return self._client.count(self._index)

    def count_jobs_created_by(self, principal: str) -> int:
        return self._client.count(self._index, {"term": {"created_by": principal}})

    def update_status(self, job_id: str, status: JobStatus) -> None:
        # A partial update of ``status`` only: fields not given stay, None is stored as null
        # (read back as unset), and user fields are never part of the write.
        try:
            self._client.merge(self._index, job_id, {"status": status.changes()}, STATUS_RETRIES)
        except NotFound as exc:  # no upsert: a deleted job stays deleted
            raise JobNotFoundError(job_id) from exc
        except Conflict as exc:
            raise ConcurrentUpdateError(job_id) from exc

    # --- run log (RunLog) -----------------------------------------------------------------

    def claim_run(self, run: Run, lease: Lease) -> bool:
        # The lease check and the claim are two requests (no multi-document transactions);
        # exactly-once still holds: the claim itself is create-if-absent per (job, time).
        self._check_lease(lease)
        run_key = run.run_id
        document = _run_document(run, lease.token)
        try:
            self._client.create(self._runs, run_key, document, refresh=True)
            return True
        except Conflict:
            pass
        try:
            current = self._client.get(self._runs, run_key)
        except NotFound:
            return False
        if current.source.get("status") != "claimed" or int(current.source.get("token", 0)) >= lease.token:
            return False
        try:  # its claimer died before finishing: take it over, unless someone else just did
            self._client.replace(self._runs, run_key, document, current, refresh=True)
            return True
        except (Conflict, NotFound):
            return False

    def finish_run(self, run: Run) -> None:
        try:
            current = self._client.get(self._runs, run.run_id)
            if int(current.source.get("token", -1)) == run.token:
                self._client.replace(
                    self._runs, run.run_id, _run_document(run, run.token), current, refresh=True
                )
        except (Conflict, NotFound):
            logger.info("run %s was taken over; outcome of token %d not stored", run.run_id, run.token)

    def unfinished_runs(self, *, older_than_token: int, limit: int = 1000) -> list[Run]:
        query = {
            "bool": {
                "filter": [{"term": {"status": "claimed"}}, {"range": {"token": {"lt": older_than_token}}}]
            }
        }
        hits = self._client.search(self._runs, {"query": query, "size": limit})
        return [Run.model_validate(hit["_source"]["run"]) for hit in hits]

    def list_runs(self, job_id: str, *, skip: int = 0, count: int = 10) -> list[Run]:
        hits = self._client.search(
            self._runs,
            {
                "query": {"term": {"job_id": job_id}},
                "sort": [{"scheduled_for": "desc"}],
                "from": skip,
                "size": count,
            },
        )
        return [Run.model_validate(hit["_source"]["run"]) for hit in hits]

    def open_runs(self, *, after: str | None = None, limit: int = 1000) -> list[Run]:
        body: dict[str, Any] = {
            "query": {"terms": {"status": list(OPEN_RUN_STATUSES)}},
            "sort": [{"job_id": "asc"}, {"scheduled_for": "asc"}],
            "size": limit,
        }
        if after:
            body["search_after"] = after.split("@", 1)
        return [Run.model_validate(hit["_source"]["run"]) for hit in self._client.search(self._runs, body)]

    def record_outcome(self, run: Run) -> bool:
        # Compare-and-set on the run document: of two writers (a deposed leader still
        # tracking), the first to end the run wins and the other's write is refused.
        try:
            current = self._client.get(self._runs, run.run_id)
            if current.source.get("status") not in OPEN_RUN_STATUSES:
                return False
            token = int(current.source.get("token", run.token))
            self._client.replace(self._runs, run.run_id, _run_document(run, token), current, refresh=True)
        except (Conflict, NotFound):
            return False
        if not run.in_flight:
            # The run index holds the single writer of a run's end, so the read-modify-write
            # of consecutiveFailures below races only with other runs of this job ending at
            # the same moment, which one tracker thread handles one after the other.
            try:
                self.update_status(run.job_id, outcome_status(self.get_job(run.job_id), run))
            except JobNotFoundError:
                pass
        return True

    def get_run(self, job_id: str, scheduled_for: datetime) -> Run:
        key = run_id(job_id, scheduled_for)
        try:
            return Run.model_validate(self._client.get(self._runs, key).source["run"])
        except NotFound as exc:
            raise RunNotFoundError(job_id, key) from exc

    def request_runs(self, runs: list[Run]) -> list[Run]:
        # No multi-document transactions: an idempotency key is looked up among the job's
        # runs, then the run created if absent; two racing requests with one key may both
        # miss it (SQLite checks and inserts in one transaction).
        stored: list[Run] = []
        with contextlib.ExitStack() as announcing:
            for job_id in dict.fromkeys(run.job_id for run in runs):
                announcing.enter_context(self._announcing("run", job_id))
            for run in runs:
                if run.idempotency_key is not None:
                    same = self._run_with_key(run.job_id, run.idempotency_key)
                    if same is not None:
                        stored.append(same)
                        continue
                try:
                    self._client.create(self._runs, run.run_id, _run_document(run, run.token), refresh=True)
                    stored.append(run)
                except Conflict:
                    stored.append(self.get_run(run.job_id, run.scheduled_for))
        return stored

    def _run_with_key(self, job_id: str, key: str) -> Run | None:
        skip, page = 0, 1000
        while True:
            runs = self.list_runs(job_id, skip=skip, count=page)
            for run in runs:
                if run.idempotency_key == key:
                    return run
            if len(runs) < page:
                return None
            skip += page

    def pending_runs(self, *, limit: int = 1000) -> list[Run]:
        query = {"terms": {"status": ["requested", "retrying"]}}
        hits = self._client.search(
            self._runs, {"query": query, "sort": [{"scheduled_for": "asc"}], "size": limit}
        )
        return [Run.model_validate(hit["_source"]["run"]) for hit in hits]

    def reclaim_run(self, run: Run, lease: Lease, *, expect: str) -> bool:
        self._check_lease(lease)
        try:
            current = self._client.get(self._runs, run.run_id)
        except NotFound:
            return False
        if current.source.get("status") != expect or int(current.source.get("token", 0)) > lease.token:
            return False
        try:
            self._client.replace(
                self._runs, run.run_id, _run_document(run, lease.token), current, refresh=True
            )
            return True
        except (Conflict, NotFound):
            return False

    def prune_runs(self, job_id: str, *, keep: int, older_than: datetime | None = None) -> int:
        removed = 0
        boundary = self._client.search(
            self._runs,
            {
                "query": {"term": {"job_id": job_id}},
                "sort": [{"scheduled_for": "desc"}],
                "from": max(0, keep - 1),
                "size": 1,
                "_source": False,
            },
        )
        if boundary:
            cutoff = str(boundary[0]["sort"][0])
            removed += self._delete_runs(job_id, cutoff)
        if older_than is not None:
            removed += self._delete_runs(job_id, _time_key(older_than))
        return removed

    # --- leases (LeaseStore) --------------------------------------------------------------

    def acquire_lease(self, name: str, *, holder: str, ttl: float) -> Lease | None:
        now = time.time()
        try:
            current: Versioned | None = self._client.get(self._leases, name)
        except NotFound:
            current = None
        if current is None:
            token = 1
        else:
            source = current.source
            if source["holder"] == holder and source["expires_at"] > now:
                token = int(source["token"])
            elif source["expires_at"] <= now:
                token = int(source["token"]) + 1
            else:
                return None
        document = {"holder": holder, "token": token, "expires_at": now + ttl}
        try:
            if current is None:
                self._client.create(self._leases, name, document, refresh=False)
            else:
                self._client.replace(self._leases, name, document, current, refresh=False)
        except (Conflict, NotFound):
            return None  # another replica wrote in between
        return Lease(name=name, holder=holder, token=token, expires_at=datetime.fromtimestamp(now + ttl, UTC))

    def release_lease(self, lease: Lease) -> None:
        try:
            current = self._client.get(self._leases, lease.name)
            if current.source["holder"] == lease.holder and int(current.source["token"]) == lease.token:
                document = {**current.source, "expires_at": 0.0}
                self._client.replace(self._leases, lease.name, document, current, refresh=False)
        except (Conflict, NotFound):
            pass

    def _check_lease(self, lease: Lease) -> None:
        try:
            source = self._client.get(self._leases, lease.name).source
        except NotFound as exc:
            raise LeaseLostError(lease.holder, lease.token) from exc
        if (
            source["holder"] != lease.holder
            or int(source["token"]) != lease.token
            or source["expires_at"] <= time.time()
        ):
            raise LeaseLostError(lease.holder, lease.token)

    def _delete_runs(self, job_id: str, before: str) -> int:
        query = {
            "bool": {
                "filter": [{"term": {"job_id": job_id}}, {"range": {"scheduled_for": {"lt": before}}}],
                "must_not": [{"terms": {"status": list(UNFINISHED)}}],  # still to launch: kept
            }
        }
        return self._client.delete_by_query(self._runs, query)

    # --- outbox (Outbox) ------------------------------------------------------------------

    @contextlib.contextmanager
    def _announcing(self, op: ChangeOp, job_id: str) -> Iterator[None]:
        """Record the event hidden, run the write, then show the event; a write that raised
        takes its event back (best effort: one left behind is a harmless re-read)."""
        event = ChangeEvent(op=op, job_id=job_id)
        event_id = uuid.uuid4().hex
        recorded = event.sent_at.timestamp()
        document = {
            "event": event.to_document(),
            "recorded_at": recorded,
            "ready_at": recorded + OUTBOX_SETTLE_SECONDS,
            "claimed_until": 0.0,
        }
        self._client.create(self._outbox, event_id, document, refresh=False)
        try:
            yield
        except BaseException:
            try:
                self._client.delete(self._outbox, event_id, refresh=False)
            except Exception:  # noqa: BLE001 - the write's own error is the one to raise
                logger.warning("could not take back the %s event of job %s", op, job_id, exc_info=True)
            raise
        try:
            self._client.merge(self._outbox, event_id, {"ready_at": 0.0}, STATUS_RETRIES)
        except Exception:  # noqa: BLE001 - the write is done; its event shows itself later
            logger.warning(
                "the %s event of job %s shows only after %g s: %s",
                op,
                job_id,
                OUTBOX_SETTLE_SECONDS,
                "could not mark it ready",
                exc_info=True,
            )

    def claim_events(self, *, limit: int = 100, claim_seconds: float = 10.0) -> list[OutboxEntry]:
        now = time.time()
        body = {
            "size": limit,
            "sort": [{"recorded_at": "asc"}],
            "query": {
                "bool": {
                    "filter": [
                        {"range": {"ready_at": {"lte": now}}},
                        {"range": {"claimed_until": {"lte": now}}},
                    ]
                }
            },
        }
        claimed: list[OutboxEntry] = []
        for hit in self._client.search(self._outbox, body):
            try:
                current = self._client.get(self._outbox, hit["_id"])
                if current.source["claimed_until"] > now:
                    continue  # another relay took it since the search
                update = {**current.source, "claimed_until": now + claim_seconds}
                self._client.replace(self._outbox, hit["_id"], update, current, refresh=False)
            except (NotFound, Conflict):
                continue  # sent and removed, or claimed by another relay meanwhile
            claimed.append(
                OutboxEntry(
                    id=hit["_id"],
                    event=ChangeEvent.model_validate(current.source["event"]),
                    recorded_at=datetime.fromtimestamp(current.source["recorded_at"], UTC),
                )
            )
        return claimed

    def remove_events(self, ids: Sequence[str]) -> None:
        for event_id in ids:
            with contextlib.suppress(NotFound):
                self._client.delete(self._outbox, event_id, refresh=False)

    def outbox_backlog(self) -> tuple[int, datetime | None]:
        body = {"size": 1, "sort": [{"recorded_at": "asc"}], "query": {"match_all": {}}}
        oldest = self._client.search(self._outbox, body)
        if not oldest:
            return 0, None
        recorded = datetime.fromtimestamp(oldest[0]["_source"]["recorded_at"], UTC)
        return self._client.count(self._outbox), recorded

    def verify(self) -> None:
        """One count on the index: the cluster answers and the index exists."""
        self._client.count(self._index)

    def drop_index(self) -> None:
        """Delete the indices (tests and tear-down)."""
        for index in (self._index, self._runs, self._leases, self._outbox):
            self._client.drop(index)

    def close(self) -> None:
        self._client.close()

    # --- internals ------------------------------------------------------------------------

    def _get(self, job_id: str) -> Versioned:
        try:
            return self._client.get(self._index, job_id)
        except NotFound as exc:
            raise JobNotFoundError(job_id) from exc

    def _compare_and_set(
        self, job_id: str, rewrite: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read, rewrite, write only if nobody wrote in between; re-read and retry if they did.

        No refresh: the ids do not change, and lists read documents in real time.
        """

        def attempt() -> dict[str, Any]:
            current = self._get(job_id)
            document = rewrite(current.source)
            # Conflict also when the job was deleted: the re-read then says so
            self._client.replace(self._index, job_id, document, current, refresh=False)
            return document

        try:
            return _CAS_RETRY(attempt)
        except Conflict as exc:
            raise ConcurrentUpdateError(job_id) from exc

    def _id_batches(self, *, after: str | None, count: int) -> Iterator[list[str]]:
        """Up to ``count`` ids after ``after``, in order: sort values only (no documents),
        one ``search_after`` request per result window."""
        left = count
        while left > 0:
            size = min(left, self._window)
            body: dict[str, Any] = {"size": size, "sort": _BY_ID, "_source": False, "track_total_hits": False}
            if after is not None:
                body["search_after"] = [after]
            ids = [str(hit["sort"][0]) for hit in self._client.search(self._index, body)]
            if ids:
                yield ids
            if len(ids) < size:
                return
            after, left = ids[-1], left - size

    def _fetch(self, ids: list[str]) -> list[Job]:
        """The current documents of ``ids``: a job deleted since the search is left out."""
        return [_job(source) for source in self._client.get_many(self._index, ids)] if ids else []


def _run_document(run: Run, token: int) -> dict[str, Any]:
    return {
        "job_id": run.job_id,
        "scheduled_for": _time_key(run.scheduled_for),
        "token": token,
        "status": run.status,
        "run": run.model_copy(update={"token": token}).to_document(),
    }


def _time_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _job(source: dict[str, Any]) -> Job:
    return Job.model_validate({**source.get("job", {}), **source.get("status", {})})
