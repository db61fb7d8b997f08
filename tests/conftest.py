"""Shared fixtures: real servers (moto, osmem) and the parametrised ``store``/``bus`` fixtures
that run the contract suites against every implementation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from common.bus.base import EventBus
from common.config import SQLiteSettings, SQSSettings
from common.store.base import Store
from common.store.sqlite import SQLiteJobStore
from tests.servers import TEST_CREDENTIALS, TEST_REGION, MotoServer, moto_server

ELASTICSEARCH_URL_ENV = "ECSS_TEST_ELASTICSEARCH_URL"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One moto server process for the session; tests isolate by unique names."""
    for key, value in TEST_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    with moto_server() as server:
        yield server


def aws_client(moto: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto.url,
        region_name=TEST_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def sqs_client(moto: MotoServer) -> Any:
    return aws_client(moto, "sqs")


@pytest.fixture
def ecs_client(moto: MotoServer) -> Any:
    return aws_client(moto, "ecs")


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


# --- stores -------------------------------------------------------------------------------


def _sqlite_store(tmp_path: Path) -> Store:
    return SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db"))


@pytest.fixture(scope="session")
def osmem() -> Iterator[Any]:
    from osmem_server import OsmemServer

    server = OsmemServer.start(addr="127.0.0.1:0", japanese=False)
    yield server
    server.close()
    for stream in (server.process.stdin, server.process.stdout):
        if stream is not None:
            stream.close()


def _search_store(request: pytest.FixtureRequest, flavour: str) -> Store:
    from common.config import ElasticsearchSettings
    from common.store.elasticsearch import ElasticsearchJobStore

    if flavour == "opensearch":
        clone = request.getfixturevalue("osmem").clone()
        request.addfinalizer(clone.close)
        hosts = [clone.url]
    else:
        url = os.environ.get(ELASTICSEARCH_URL_ENV)
        if not url:
            pytest.skip(f"no Elasticsearch cluster: set {ELASTICSEARCH_URL_ENV} to run these")
        hosts = [url]
    index = f"ecss-test-{uuid.uuid4().hex[:10]}"
    settings = ElasticsearchSettings(flavour=flavour, hosts=hosts, index=index)  # type: ignore[arg-type]

    def drop_indices() -> None:
        # ``store`` itself is closed before this runs (the elasticsearch client is then
        # unusable), so the indices are dropped over a client of their own.
        cleaner = ElasticsearchJobStore.from_settings(settings)
        try:
            cleaner.drop_index()
        finally:
            cleaner.close()

    request.addfinalizer(drop_indices)
    return ElasticsearchJobStore.from_settings(settings)


@pytest.fixture(
    params=[
        "sqlite",
        "opensearch",
        pytest.param("elasticsearch", marks=pytest.mark.external_service),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every backend, behind the role interfaces only (common/store/base.py)."""
    if request.param == "sqlite":
        instance = _sqlite_store(tmp_path)
    else:
        instance = _search_store(request, request.param)
    yield instance
    instance.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    instance = _sqlite_store(tmp_path)
    yield instance
    instance.close()


# --- buses --------------------------------------------------------------------------------


@pytest.fixture
def sqs_settings(unique_name: str) -> SQSSettings:
    return SQSSettings(
        queue_name=f"{unique_name}-ops",
        dead_letter_queue_name=f"{unique_name}-dlq",
        wait_seconds=1,
        visibility_timeout_seconds=2,
        max_receive_count=3,
    )


@pytest.fixture(params=["sqs"])
def bus(request: pytest.FixtureRequest, sqs_settings: SQSSettings, sqs_client: Any) -> Iterator[EventBus]:
    """Every EventBus implementation, behind the ABC only."""
    from common.bus.sqs import SQSEventBus

    instance = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    yield instance
    instance.close()
