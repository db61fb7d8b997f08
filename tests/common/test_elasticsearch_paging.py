"""The search store's deep-page path (search_after hops beyond the result window), driven
against the osmem OpenSearch-compatible server with a tiny window so every branch runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from common.config import ElasticsearchSettings
from common.errors import StoreUnavailableError
from common.models import Job
from common.store.elasticsearch import ElasticsearchJobStore
from tests.servers import free_port

WINDOW = 20


@pytest.fixture
def small_window_store(osmem: Any) -> Iterator[ElasticsearchJobStore]:
    clone = osmem.clone()
    settings = ElasticsearchSettings(
        flavour="opensearch", hosts=[clone.url], index=f"paging-{uuid.uuid4().hex[:8]}"
    )
    store = ElasticsearchJobStore.from_settings(settings, result_window=WINDOW)
    yield store
    store.drop_index()
    store.close()
    clone.close()


def test_pages_beyond_the_result_window_match_a_full_listing(
    small_window_store: ElasticsearchJobStore,
) -> None:
    ids = sorted(f"job-{n:03d}" for n in range(57))
    for job_id in ids:
        small_window_store.create_job(
            Job.model_validate({"id": job_id, "taskDefinition": "t", "schedule": "0"})
        )
    for skip in (0, 5, 10, 19, 20, 21, 39, 40, 41, 50, 56, 57, 80):
        for count in (1, 7, 10):
            page = [job.id for job in small_window_store.list_jobs(skip=skip, count=count)]
            assert page == ids[skip : skip + count], (skip, count)
    assert [job.id for job in small_window_store.iter_jobs(page_size=WINDOW)] == ids


def test_unreachable_cluster_is_store_unavailable() -> None:
    settings = ElasticsearchSettings(
        flavour="opensearch",
        hosts=[f"http://127.0.0.1:{free_port()}"],
        client_options={"timeout": 1, "max_retries": 0},
    )
    with pytest.raises(StoreUnavailableError, match="create index"):
        ElasticsearchJobStore.from_settings(settings)
