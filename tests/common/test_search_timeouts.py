"""A stalled search cluster (accepts connections, never answers) fails a store call within the
configured timeout and retries, for both client flavours, instead of the libraries' defaults."""

from __future__ import annotations

import time

import pytest

from common.config import ElasticsearchSettings
from common.errors import StoreUnavailableError
from common.store.search_client import connect
from tests.servers import StalledServer


@pytest.mark.parametrize("flavour", ["elasticsearch", "opensearch"])
def test_a_stalled_cluster_fails_within_the_configured_timeout(flavour: str) -> None:
    with StalledServer() as stalled:
        settings = ElasticsearchSettings(
            flavour=flavour,  # type: ignore[arg-type]
            hosts=[stalled.url],
            request_timeout_seconds=0.5,
            max_retries=1,
        )
        client = connect(settings)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            client.count("jobs")
        elapsed = time.monotonic() - started
        client.close()
    assert elapsed < 3  # two attempts of 0.5 s; the libraries' defaults wait 10 s or more each
