"""The search cluster as the job store uses it: one small client over either library.

``store.elasticsearch.flavour`` picks the official ``elasticsearch`` client or ``opensearch-py``
(e.g. Amazon OpenSearch Service). Both accept the same calls (``body=`` with the REST API's
JSON), so a flavour is just a client and its exception classes (``_Flavour``), and
``SearchClient`` makes each call once for both. It is also the one place library exceptions
are caught: an absent document and a lost conditional write become ``NotFound`` and
``Conflict`` for the store to name; anything else is StoreUnavailableError.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from common.config import ElasticsearchSettings
from common.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_RESULT_WINDOW = 10_000
Refresh = bool | Literal["wait_for"]


class NotFound(Exception):
    """The document is absent (an absent index is StoreUnavailableError instead)."""


class Conflict(Exception):
    """A create found the id taken, or a conditional write lost to another writer."""


@dataclass(frozen=True)
class Versioned:
    source: dict[str, Any]
    seq_no: int
    primary_term: int


@dataclass(frozen=True)
class _Flavour:
    """All that differs between the two client libraries: the client and what it raises."""

    client: Any
    not_found: type[Exception]
    conflict: type[Exception]
    failures: tuple[type[Exception], ...]  # base classes of everything the library raises


def _elasticsearch(settings: ElasticsearchSettings, client: Any) -> _Flavour:
    import elasticsearch

    return _Flavour(
        client
        or elasticsearch.Elasticsearch(
            hosts=settings.hosts,
            **{
                "request_timeout": settings.request_timeout_seconds,
                "max_retries": settings.max_retries,
                **settings.client_options,
            },
        ),
        elasticsearch.NotFoundError,
        elasticsearch.ConflictError,
        (elasticsearch.ApiError, elasticsearch.TransportError),
    )


def _opensearch(settings: ElasticsearchSettings, client: Any) -> _Flavour:
    import opensearchpy

    return _Flavour(
        client
        or opensearchpy.OpenSearch(
            hosts=settings.hosts,
            **{
                "timeout": settings.request_timeout_seconds,
                "max_retries": settings.max_retries,
                **settings.client_options,
            },
        ),
        opensearchpy.NotFoundError,
        opensearchpy.ConflictError,
        (opensearchpy.OpenSearchException,),
    )


_FLAVOURS: dict[str, Callable[[ElasticsearchSettings, Any], _Flavour]] = {
    "elasticsearch": _elasticsearch,
    "opensearch": _opensearch,
}


class SearchClient:
    """The cluster calls the store makes, identical for both flavours, errors translated."""

    def __init__(self, flavour: _Flavour) -> None:
        self._flavour = flavour
        self._raw = flavour.client

    @contextlib.contextmanager
    def _translate(self, op: str, index: str) -> Iterator[None]:
        """The one place library exceptions are caught: an absent document and a version
        conflict become NotFound/Conflict for the store to name; anything else (connection
        error, timeout, 5xx, a missing index) is StoreUnavailableError, chained."""
        flavour = self._flavour
        try:
            yield
        except flavour.failures as exc:
            if isinstance(exc, flavour.conflict):
                raise Conflict() from exc
            if isinstance(exc, flavour.not_found) and _error_type(exc) != "index_not_found_exception":
                raise NotFound() from exc
            logger.warning("search store: %s on index %s failed: %s", op, index, exc)
            # the client's text names the node's host and port: the log has it, replies do not
            kind = _error_type(exc)  # the cluster's error type, e.g. index_not_found_exception
            reason = kind if kind.replace("_", "").isalpha() else type(exc).__name__
            raise StoreUnavailableError(f"{op} on index {index}: {reason}") from exc

    def ensure_index(self, index: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        """Create the index unless it exists (another process may create it at the same time)."""
        with self._translate("create index", index):
            if self._raw.indices.exists(index=index):
                return
            try:
                self._raw.indices.create(index=index, body={"settings": settings, "mappings": mappings})
            except self._flavour.failures as exc:
                if _error_type(exc) != "resource_already_exists_exception":
                    raise

    def add_fields(self, index: str, properties: dict[str, Any]) -> None:
        """Add fields to an existing index's mapping (an index made before they existed)."""
        with self._translate("put mapping", index):
            self._raw.indices.put_mapping(index=index, body={"properties": properties})

    def result_window(self, index: str) -> int:
        with self._translate("get settings", index):
            found = self._raw.indices.get_settings(index=index, name="index.max_result_window")
        settings: dict[str, Any] = next(iter(dict(found).values()), {})
        value = settings.get("settings", {}).get("index", {}).get("max_result_window")
        return int(value) if value else DEFAULT_RESULT_WINDOW

    def create(self, index: str, doc_id: str, document: dict[str, Any], refresh: Refresh) -> None:
        with self._translate("create", index):
            self._raw.create(index=index, id=doc_id, body=document, refresh=refresh)

    def get(self, index: str, doc_id: str) -> Versioned:
        with self._translate("get", index):
            found = self._raw.get(index=index, id=doc_id)
        return Versioned(found["_source"], found["_seq_no"], found["_primary_term"])

    def get_many(self, index: str, ids: list[str]) -> list[dict[str, Any]]:
        """Sources of the documents still present, in the order of ``ids`` (real-time)."""
        with self._translate("mget", index):
            docs: list[dict[str, Any]] = self._raw.mget(index=index, body={"ids": ids})["docs"]
        return [doc["_source"] for doc in docs if doc.get("found")]

    def replace(
        self, index: str, doc_id: str, document: dict[str, Any], version: Versioned, refresh: Refresh
    ) -> None:
        """Write ``document`` only if it is still at ``version`` (Conflict otherwise)."""
        with self._translate("index", index):
            self._raw.index(
                index=index,
                id=doc_id,
                body=document,
                if_seq_no=version.seq_no,
                if_primary_term=version.primary_term,
                refresh=refresh,
            )

    def merge(self, index: str, doc_id: str, partial: dict[str, Any], retries: int) -> None:
        """Merge ``partial`` into an existing document; the cluster retries its own conflicts."""
        with self._translate("update", index):
            self._raw.update(index=index, id=doc_id, body={"doc": partial}, retry_on_conflict=retries)

    def delete(self, index: str, doc_id: str, refresh: Refresh) -> None:
        with self._translate("delete", index):
            self._raw.delete(index=index, id=doc_id, refresh=refresh)

    def delete_by_query(self, index: str, query: dict[str, Any]) -> int:
        with self._translate("delete by query", index):
            result = self._raw.delete_by_query(
                index=index, body={"query": query}, refresh=True, conflicts="proceed"
            )
        return int(result.get("deleted", 0))

    def search(self, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self._translate("search", index):
            hits: list[dict[str, Any]] = self._raw.search(index=index, body=body)["hits"]["hits"]
        return hits

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        with self._translate("count", index):
            if query is None:
                return int(self._raw.count(index=index)["count"])
            return int(self._raw.count(index=index, body={"query": query})["count"])

    def drop(self, index: str) -> None:
        with self._translate("delete index", index):
            self._raw.indices.delete(index=index, ignore_unavailable=True)

    def close(self) -> None:
        self._raw.close()


def connect(settings: ElasticsearchSettings, client: Any = None) -> SearchClient:
    """A SearchClient over ``client`` (of ``settings.flavour``), or over one built from
    ``hosts`` and ``client_options``."""
    return SearchClient(_FLAVOURS[settings.flavour](settings, client))


def _error_type(exc: Exception) -> str:
    """The cluster's error type (e.g. ``index_not_found_exception``); both clients set ``error``."""
    return str(getattr(exc, "error", ""))
