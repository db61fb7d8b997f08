"""The search store's deep-page path (search_after hops beyond the result window), driven
against the osmem OpenSearch-compatible server with a tiny window so every branch runs; and
its translation of library errors into StoreUnavailableError."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from common.config import ElasticsearchSettings
from common.errors import StoreUnavailableError
from common.models import Job
from common.store.elasticsearch import ElasticsearchJobStore
from tests.servers import free_port

WINDOW = 20
IDS = sorted(f"job-{n:03d}" for n in range(57))


def _settings(url: str) -> ElasticsearchSettings:
    return ElasticsearchSettings(flavour="opensearch", hosts=[url], index=f"paging-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def small_window_store(osmem: Any) -> Iterator[ElasticsearchJobStore]:
    clone = osmem.clone()
    store = ElasticsearchJobStore.from_settings(_settings(clone.url), result_window=WINDOW)
    for job_id in IDS:
        store.create_job(Job.model_validate({"id": job_id, "taskDefinition": "t", "schedule": "0"}))
    yield store
    store.drop_index()
    store.close()
    clone.close()


@pytest.fixture
def searches(
    small_window_store: ElasticsearchJobStore, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """The bodies of the search requests the store sends from now on."""
    sent: list[dict[str, Any]] = []
    client = small_window_store._client
    search = client.search

    def spy(index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        sent.append(body)
        return search(index, body)

    monkeypatch.setattr(client, "search", spy)
    return sent


def test_pages_beyond_the_result_window_match_a_full_listing(
    small_window_store: ElasticsearchJobStore,
) -> None:
    for skip in (0, 5, 10, 19, 20, 21, 39, 40, 41, 50, 56, 57, 80):
        for count in (1, 7, 10, 25):
            page = [job.id for job in small_window_store.list_jobs(skip=skip, count=count)]
            assert page == IDS[skip : skip + count], (skip, count)


def test_scans_larger_than_the_window_are_split(small_window_store: ElasticsearchJobStore) -> None:
    assert [job.id for job in small_window_store.scan_jobs(after="job-003", limit=45)] == IDS[4:49]
    assert [job.id for job in small_window_store.iter_jobs()] == IDS
    assert [job.id for job in small_window_store.iter_jobs(page_size=WINDOW)] == IDS


def test_deep_pages_hop_over_sort_values_only(
    small_window_store: ElasticsearchJobStore, searches: list[dict[str, Any]]
) -> None:
    page = small_window_store.list_jobs(skip=45, count=7)
    assert [job.id for job in page] == IDS[45:52]
    assert [body["size"] for body in searches] == [20, 20, 5, 7]  # three hops, then the page
    assert all(body["_source"] is False and "from" not in body for body in searches)
    assert [body.get("search_after") for body in searches] == [None, [IDS[19]], [IDS[39]], [IDS[44]]]


def test_pages_inside_the_window_are_one_search(
    small_window_store: ElasticsearchJobStore, searches: list[dict[str, Any]]
) -> None:
    assert [job.id for job in small_window_store.list_jobs(skip=10, count=10)] == IDS[10:20]
    assert [(body["from"], body["size"]) for body in searches] == [(10, 10)]


def test_a_missing_index_is_unavailable_not_an_absent_job(osmem: Any) -> None:
    clone = osmem.clone()
    store = ElasticsearchJobStore.from_settings(_settings(clone.url))
    raw = OpenSearch(hosts=[clone.url])
    raw.indices.delete(index=store._index)
    raw.close()
    try:
        with pytest.raises(StoreUnavailableError, match="index"):
            store.get_job("a")
        with pytest.raises(StoreUnavailableError):
            store.list_jobs()
        with pytest.raises(StoreUnavailableError):
            store.count_jobs()
    finally:
        store.drop_index()
        store.close()
        clone.close()


@pytest.mark.parametrize("flavour", ["opensearch", "elasticsearch"])
def test_unreachable_cluster_is_store_unavailable(flavour: str) -> None:
    settings = ElasticsearchSettings(
        flavour=flavour,  # type: ignore[arg-type]
        hosts=[f"http://127.0.0.1:{free_port()}"],
        request_timeout_seconds=1,
        max_retries=0,
    )
    with pytest.raises(StoreUnavailableError, match="create index"):
        ElasticsearchJobStore.from_settings(settings)
