"""Elasticsearch / OpenSearch job store: production storage.

One class, two client flavours (``store.elasticsearch.flavour``): the official
``elasticsearch`` client, or ``opensearch-py`` for OpenSearch (e.g. Amazon OpenSearch
Service). The flavours differ only in call shapes and exception classes, kept in the two small
adapters below; the store logic is written once.

Each job is one document ``{"id", "job": {user fields}, "status": {scheduld fields}}`` in an
index created with an explicit mapping (only ``id`` is indexed, as a keyword, for ordering).
Every change is compare-and-set on ``if_seq_no``/``if_primary_term`` and retried on conflict,
so neither a user update nor a scheduld status write can overwrite the other. Pages come from
``from``/``size`` inside the index's result window and from ``search_after`` hops beyond it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from common.config import ElasticsearchSettings
from common.errors import (
    ConcurrentUpdateError,
    JobExistsError,
    JobNotFoundError,
    LeaseLostError,
    StoreUnavailableError,
)
from common.models import Job, JobStatus, Lease, Run
from common.store.base import PAGE_LIMIT, JobChange, JobStore

logger = logging.getLogger(__name__)

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
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
DEFAULT_RESULT_WINDOW = 10_000
CAS_ATTEMPTS = 50


class _NotFound(Exception):
    pass


class _Conflict(Exception):
    pass


@dataclass(frozen=True)
class _Versioned:
    source: dict[str, Any]
    seq_no: int
    primary_term: int


class _Client(Protocol):
    """What the store needs from a cluster; each flavour adapts its client to it."""

    def ensure_index(self, index: str, settings: dict[str, Any], mappings: dict[str, Any] = ...) -> None: ...
    def delete_by_query(self, index: str, query: dict[str, Any]) -> int: ...
    def create(self, index: str, doc_id: str, document: dict[str, Any], refresh: bool) -> None: ...
    def get(self, index: str, doc_id: str) -> _Versioned: ...
    def replace(
        self, index: str, doc_id: str, document: dict[str, Any], version: _Versioned, refresh: bool
    ) -> None: ...
    def delete(self, index: str, doc_id: str, refresh: bool) -> None: ...
    def search(self, index: str, body: dict[str, Any]) -> list[dict[str, Any]]: ...
    def count(self, index: str) -> int: ...
    def result_window(self, index: str) -> int: ...
    def drop(self, index: str) -> None: ...
    def close(self) -> None: ...


class _Adapter:
    """Shared adapter logic; subclasses bind a client and its exception classes."""

    not_found: tuple[type[Exception], ...] = ()
    conflict: tuple[type[Exception], ...] = ()
    request_error: tuple[type[Exception], ...] = ()
    unavailable: tuple[type[Exception], ...] = ()

    def __init__(self, client: Any) -> None:
        self.client = client

    @contextlib.contextmanager
    def errors(self, action: str, index: str) -> Iterator[None]:
        """Library exceptions → _NotFound/_Conflict or StoreUnavailableError, chained."""
        try:
            yield
        except self.not_found as exc:
            raise _NotFound() from exc
        except self.conflict as exc:
            raise _Conflict() from exc
        except self.unavailable as exc:
            logger.warning("search store: %s on index %s failed: %s", action, index, exc)
            raise StoreUnavailableError(f"{action} on index {index}: {exc}") from exc

    def get(self, index: str, doc_id: str) -> _Versioned:
        with self.errors("get", index):
            found = self.client.get(index=index, id=doc_id)
        return _Versioned(found["_source"], found["_seq_no"], found["_primary_term"])

    def delete(self, index: str, doc_id: str, refresh: bool) -> None:
        with self.errors("delete", index):
            self.client.delete(index=index, id=doc_id, refresh=refresh)

    def count(self, index: str) -> int:
        with self.errors("count", index):
            return int(self.client.count(index=index)["count"])

    def result_window(self, index: str) -> int:
        with self.errors("get settings", index):
            settings = self.client.indices.get_settings(index=index, name="index.max_result_window")
        index_settings: dict[str, Any] = next(iter(dict(settings).values()), {})
        value = index_settings.get("settings", {}).get("index", {}).get("max_result_window")
        return int(value) if value else DEFAULT_RESULT_WINDOW

    def drop(self, index: str) -> None:
        with contextlib.suppress(*self.not_found), self.errors("delete index", index):
            self.client.indices.delete(index=index)

    def close(self) -> None:
        self.client.close()


class _ElasticsearchAdapter(_Adapter):
    def __init__(self, settings: ElasticsearchSettings) -> None:
        import elasticsearch

        super().__init__(elasticsearch.Elasticsearch(hosts=settings.hosts, **settings.client_options))
        self.not_found = (elasticsearch.NotFoundError,)
        self.conflict = (elasticsearch.ConflictError,)
        self.request_error = (elasticsearch.BadRequestError,)
        self.unavailable = (elasticsearch.ApiError, elasticsearch.TransportError)

    def ensure_index(self, index: str, settings: dict[str, Any], mappings: dict[str, Any] = MAPPINGS) -> None:
        with self.errors("create index", index):
            if self.client.indices.exists(index=index):
                return
            try:
                self.client.indices.create(index=index, mappings=mappings, settings=settings)
            except self.request_error as exc:
                if "resource_already_exists" not in str(exc):
                    raise

    def create(self, index: str, doc_id: str, document: dict[str, Any], refresh: bool) -> None:
        with self.errors("create", index):
            self.client.create(index=index, id=doc_id, document=document, refresh=refresh)

    def replace(
        self, index: str, doc_id: str, document: dict[str, Any], version: _Versioned, refresh: bool
    ) -> None:
        with self.errors("index", index):
            self.client.index(
                index=index,
                id=doc_id,
                document=document,
                if_seq_no=version.seq_no,
                if_primary_term=version.primary_term,
                refresh=refresh,
            )

    def search(self, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self.errors("search", index):
            hits: list[dict[str, Any]] = self.client.search(index=index, **body)["hits"]["hits"]
        return hits

    def delete_by_query(self, index: str, query: dict[str, Any]) -> int:
        with self.errors("delete by query", index):
            result = self.client.delete_by_query(index=index, query=query, refresh=True, conflicts="proceed")
        return int(result.get("deleted", 0))


class _OpenSearchAdapter(_Adapter):
    def __init__(self, settings: ElasticsearchSettings) -> None:
        import opensearchpy

        super().__init__(opensearchpy.OpenSearch(hosts=settings.hosts, **settings.client_options))
        self.not_found = (opensearchpy.NotFoundError,)
        self.conflict = (opensearchpy.ConflictError,)
        self.request_error = (opensearchpy.RequestError,)
        self.unavailable = (opensearchpy.TransportError, opensearchpy.ImproperlyConfigured)

    def ensure_index(self, index: str, settings: dict[str, Any], mappings: dict[str, Any] = MAPPINGS) -> None:
        with self.errors("create index", index):
            if self.client.indices.exists(index=index):
                return
            try:
                self.client.indices.create(index=index, body={"mappings": mappings, "settings": settings})
            except self.request_error as exc:
                if "resource_already_exists" not in str(exc):
                    raise

    def create(self, index: str, doc_id: str, document: dict[str, Any], refresh: bool) -> None:
        with self.errors("create", index):
            self.client.create(index=index, id=doc_id, body=document, refresh=refresh)

    def replace(
        self, index: str, doc_id: str, document: dict[str, Any], version: _Versioned, refresh: bool
    ) -> None:
        with self.errors("index", index):
            self.client.index(
                index=index,
                id=doc_id,
                body=document,
                if_seq_no=version.seq_no,
                if_primary_term=version.primary_term,
                refresh=refresh,
            )

    def search(self, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        if "from_" in body:
            body = {**{k: v for k, v in body.items() if k != "from_"}, "from": body["from_"]}
        with self.errors("search", index):
            hits: list[dict[str, Any]] = self.client.search(index=index, body=body)["hits"]["hits"]
        return hits

    def delete_by_query(self, index: str, query: dict[str, Any]) -> int:
        with self.errors("delete by query", index):
            result = self.client.delete_by_query(
                index=index, body={"query": query}, refresh=True, conflicts="proceed"
            )
        return int(result.get("deleted", 0))


class ElasticsearchJobStore(JobStore):
    blocking = True

    def __init__(self, client: _Client, *, index: str, result_window: int | None = None) -> None:
        self._client = client
        self._index = index
        settings = {"index": {"max_result_window": result_window}} if result_window else {}
        self._client.ensure_index(index, settings)
        self._runs = f"{index}-runs"
        self._leases = f"{index}-leases"
        self._client.ensure_index(self._runs, {}, RUN_MAPPINGS)
        self._client.ensure_index(self._leases, {}, LEASE_MAPPINGS)
        self._window = self._client.result_window(index)

    @classmethod
    def from_settings(
        cls, settings: ElasticsearchSettings, *, result_window: int | None = None
    ) -> ElasticsearchJobStore:
        adapter = (
            _OpenSearchAdapter(settings)
            if settings.flavour == "opensearch"
            else _ElasticsearchAdapter(settings)
        )
        return cls(adapter, index=settings.index, result_window=result_window)

    # --- JobStore ------------------------------------------------------------------------

    def create_job(self, job: Job) -> Job:
        document = {"id": job.id, "job": job.user_document(), "status": {}}
        try:
            self._client.create(self._index, job.id, document, refresh=True)
        except _Conflict as exc:
            raise JobExistsError(job.id) from exc
        return Job.model_validate(job.user_document())

    def get_job(self, job_id: str) -> Job:
        return _job(self._get(job_id).source)

    def update_job(self, job_id: str, change: JobChange) -> Job:
        def rewrite(source: dict[str, Any]) -> dict[str, Any]:
            updated = change(_job(source))
            return {**source, "job": updated.user_document()}

        return _job(self._compare_and_set(job_id, rewrite, refresh=True))

    def delete_job(self, job_id: str) -> None:
        try:
            self._client.delete(self._index, job_id, refresh=True)
        except _NotFound as exc:
            raise JobNotFoundError(job_id) from exc
        self._client.delete_by_query(self._runs, {"term": {"job_id": job_id}})

    def list_jobs(self, *, skip: int = 0, count: int = 10) -> list[Job]:
        if skip + count <= self._window:
            return self._page({"from_": skip, "size": count})
        after = self._id_at(skip - 1) if skip else None
        if skip and after is None:
            return []
        return self.scan_jobs(after=after, limit=count)

    def scan_jobs(self, *, after: str | None = None, limit: int = PAGE_LIMIT) -> list[Job]:
        body: dict[str, Any] = {"size": limit}
        if after is not None:
            body["search_after"] = [after]
        return self._page(body)

    def count_jobs(self) -> int:
        return self._client.count(self._index)

    def update_status(self, job_id: str, status: JobStatus) -> None:
        changes = status.changes()

        def merge(source: dict[str, Any]) -> dict[str, Any]:
            merged = {**source.get("status", {}), **changes}
            return {**source, "status": {key: value for key, value in merged.items() if value is not None}}

        self._compare_and_set(job_id, merge, refresh=False)

    # --- runs --------------------------------------------------------------------------------

    def claim_run(self, run: Run, lease: Lease) -> bool:
        # The lease check and the claim are two requests (no multi-document transactions);
        # exactly-once still holds: the claim itself is create-if-absent per (job, time).
        self._check_lease(lease)
        run_key = run.run_id
        document = _run_document(run, lease.token)
        try:
            self._client.create(self._runs, run_key, document, refresh=True)
            return True
        except _Conflict:
            pass
        try:
            current = self._client.get(self._runs, run_key)
        except _NotFound:
            return False
        if current.source.get("status") != "claimed" or int(current.source.get("token", 0)) >= lease.token:
            return False
        try:  # its claimer died before finishing: take it over, unless someone else just did
            self._client.replace(self._runs, run_key, document, current, refresh=True)
            return True
        except (_Conflict, _NotFound):
            return False

    def finish_run(self, run: Run) -> None:
        try:
            current = self._client.get(self._runs, run.run_id)
            if int(current.source.get("token", -1)) == run.token:
                self._client.replace(
                    self._runs, run.run_id, _run_document(run, run.token), current, refresh=True
                )
        except (_Conflict, _NotFound):
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
                "from_": skip,
                "size": count,
            },
        )
        return [Run.model_validate(hit["_source"]["run"]) for hit in hits]

    def prune_runs(self, job_id: str, *, keep: int, older_than: datetime | None = None) -> int:
        removed = 0
        boundary = self._client.search(
            self._runs,
            {
                "query": {"term": {"job_id": job_id}},
                "sort": [{"scheduled_for": "desc"}],
                "from_": max(0, keep - 1),
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

    # --- leases ------------------------------------------------------------------------------

    def acquire_lease(self, name: str, *, holder: str, ttl: float) -> Lease | None:
        now = time.time()
        try:
            current: _Versioned | None = self._client.get(self._leases, name)
        except _NotFound:
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
        except (_Conflict, _NotFound):
            return None  # another replica wrote in between
        return Lease(name=name, holder=holder, token=token, expires_at=datetime.fromtimestamp(now + ttl, UTC))

    def release_lease(self, lease: Lease) -> None:
        try:
            current = self._client.get(self._leases, lease.name)
            if current.source["holder"] == lease.holder and int(current.source["token"]) == lease.token:
                document = {**current.source, "expires_at": 0.0}
                self._client.replace(self._leases, lease.name, document, current, refresh=False)
        except (_Conflict, _NotFound):
            pass

    def _check_lease(self, lease: Lease) -> None:
        try:
            source = self._client.get(self._leases, lease.name).source
        except _NotFound as exc:
            raise LeaseLostError(lease.holder, lease.token) from exc
        if (
            source["holder"] != lease.holder
            or int(source["token"]) != lease.token
            or source["expires_at"] <= time.time()
        ):
            raise LeaseLostError(lease.holder, lease.token)

    def _delete_runs(self, job_id: str, before: str) -> int:
        query = {
            "bool": {"filter": [{"term": {"job_id": job_id}}, {"range": {"scheduled_for": {"lt": before}}}]}
        }
        return self._client.delete_by_query(self._runs, query)

    def drop_index(self) -> None:
        """Delete the indices (tests and tear-down)."""
        for index in (self._index, self._runs, self._leases):
            self._client.drop(index)

    def close(self) -> None:
        self._client.close()

    # --- internals -----------------------------------------------------------------------

    def _get(self, job_id: str) -> _Versioned:
        try:
            return self._client.get(self._index, job_id)
        except _NotFound as exc:
            raise JobNotFoundError(job_id) from exc

    def _compare_and_set(self, job_id: str, rewrite: Any, *, refresh: bool) -> dict[str, Any]:
        """Read, rewrite, write only if nobody wrote in between; re-read and retry if they did."""
        for attempt in range(CAS_ATTEMPTS):
            current = self._get(job_id)
            document = rewrite(current.source)
            try:
                self._client.replace(self._index, job_id, document, current, refresh=refresh)
                return dict(document)
            except _Conflict:
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            except _NotFound as exc:
                raise JobNotFoundError(job_id) from exc
        raise ConcurrentUpdateError(job_id)

    def _page(self, body: dict[str, Any]) -> list[Job]:
        hits = self._client.search(self._index, {**body, "sort": [{"id": "asc"}]})
        return [_job(hit["_source"]) for hit in hits]

    def _id_at(self, position: int) -> str | None:
        """The id at a 0-based position, walking sort values only (no documents) in big hops."""
        after: str | None = None
        remaining = position + 1
        while remaining > 0:
            size = min(self._window, remaining)
            body: dict[str, Any] = {"size": size, "_source": False, "sort": [{"id": "asc"}]}
            if after is not None:
                body["search_after"] = [after]
            hits = self._client.search(self._index, body)
            if not hits:
                return None
            after = str(hits[-1]["sort"][0])
            remaining -= len(hits)
            if len(hits) < size:
                return None if remaining > 0 else after
        return after


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
