"""Property-based fuzzing of the OpenAPI document (schemathesis) against the app served by
uvicorn on 127.0.0.1 (SQLite in tmp_path, SQS on the moto server): no 5xx, and every reply
conforms to the document (status code documented, content type, body schema, headers).

Bounded and repeatable: a fixed seed and ``EXAMPLES`` cases per operation and generation mode
(valid and invalid requests), run once with ``auth.mode: none`` and once with a tokens file
and an admin token; the whole file stays well under a minute.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.config import AuthSettings, LimitsSettings, WebAPISettings
from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens

logger = logging.getLogger(__name__)

EXAMPLES = 15
SEED = 20261201
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ADMIN_TOKEN = "fuzz-admin-token"
SEEDED_JOBS = [
    {"id": "0", "taskDefinition": "t", "schedule": "0 */5"},
    {"id": "a", "taskDefinition": "t", "schedule": "0 0 0"},
    {
        "id": "full",
        "taskDefinition": "sleeper-task",
        "schedule": "0 0 12 mon-fri",
        "timezone": "Europe/Paris",
        "scheduleStart": "2026-01-01T00:00:00Z",
        "taskCount": 3,
        "maxCount": 5,
        "trigger": {"type": "sqs", "queueName": "q", "messagesPerTask": 10},
        "suspended": True,
        "overrides": [{"containerName": "c", "environment": {"API_KEY": "x", "A": "b"}, "command": ["run"]}],
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"]}},
        "tags": [{"key": "k", "value": "v"}],
        "propagateTags": "TASK_DEFINITION",
    },
]


def _fuzz(base_url: str, headers: dict[str, str]) -> Counter[int]:
    """Every operation of the served document, valid then invalid cases; the status counts."""
    schema = schemathesis.openapi.from_url(f"{base_url}/spec")
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
                statuses[response.status_code] += 1

            try:
                check()
            except Unsatisfiable:
                # no parameter or body to make invalid (GET /, GET /me): nothing to fuzz
                assert mode is GenerationMode.NEGATIVE, operation.label
    return statuses


@pytest.mark.parametrize("mode", ["none", "tokens"])
def test_fuzzed_requests_get_no_5xx_and_conform_to_the_document(
    serve: Serve, tmp_path: Path, mode: str
) -> None:
    auth = AuthSettings()
    headers: dict[str, str] = {}
    if mode == "tokens":
        tokens = write_tokens(tmp_path / "tokens.yaml", {ADMIN_TOKEN: {"name": "fuzz", "roles": ["admin"]}})
        auth = tokens_auth(tokens)
        headers = bearer(ADMIN_TOKEN)
    # writes unthrottled so every example reaches the routes (429 is covered in test_limits)
    webapi = WebAPISettings(limits=LimitsSettings(write_rate=""))
    with serve(auth=auth, webapi=webapi) as http:
        for job in SEEDED_JOBS:  # so reads, updates and deletes meet real documents too
            assert http.post("/jobs", json=job, headers=headers).status_code == 201
        statuses = _fuzz(str(http.base_url).rstrip("/"), headers)
    total = sum(statuses.values())
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    logger.info(
        "fuzz (auth %s): %d requests, %d 5xx, by status %s", mode, total, server_errors, dict(statuses)
    )
    assert server_errors == 0
    assert total >= 100  # the run did exercise the API
