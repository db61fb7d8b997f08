"""Run now and backfill behind authentication: the ``run`` role, task-definition scope, the
principal recorded on the run, and secret overrides redacted when a run is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.models import JobCreate, new_job
from common.store.base import JobStore
from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens

TOKENS = {
    "runner-token-000000": {"name": "runner", "roles": ["read", "run"]},
    "writer-token-000000": {"name": "writer", "roles": ["read", "write"]},
    "reader-token-000000": {"name": "reader", "roles": ["read"]},
    "web-runner-token-00": {"name": "web-runner", "roles": ["read", "run"], "taskDefinitions": ["web-*"]},
}
WINDOW = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T02:00:00Z"}


@pytest.fixture
def http(serve: Serve, tmp_path: Path, sqlite_store: JobStore) -> Iterator[httpx.Client]:
    create = JobCreate.model_validate(
        {"taskDefinition": "data-etl", "schedule": "cron(0 * * * ? *)", "id": "etl"}
    )
    sqlite_store.create_job(new_job(create))
    with serve(auth=tokens_auth(write_tokens(tmp_path / "tokens.yaml", TOKENS))) as client:
        yield client


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("runner-token-000000", 202),
        ("writer-token-000000", 403),  # write is not run
        ("reader-token-000000", 403),
        ("web-runner-token-00", 404),  # outside its scope the job does not exist
        (None, 401),
    ],
)
def test_run_now_and_backfill_need_the_run_role(
    http: httpx.Client, sqlite_store: JobStore, token: str | None, status: int
) -> None:
    assert http.post("/jobs/etl/runs", headers=bearer(token)).status_code == status
    assert http.post("/jobs/etl/backfill", json=WINDOW, headers=bearer(token)).status_code == status
    assert len(sqlite_store.list_runs("etl")) == (4 if status == 202 else 0)


def test_the_principal_is_recorded_and_secrets_are_redacted(
    http: httpx.Client, sqlite_store: JobStore
) -> None:
    overrides = [{"containerName": "main", "environment": {"DB_PASSWORD": "hunter2", "MODE": "adhoc"}}]
    reply = http.post("/jobs/etl/runs", json={"overrides": overrides}, headers=bearer("runner-token-000000"))
    assert reply.status_code == 202
    (run,) = sqlite_store.list_runs("etl")
    assert (
        run.principal == "runner"
        and run.overrides
        and run.overrides[0].environment == overrides[0]["environment"]
    )
    served = http.get(reply.json()["link"]["href"], headers=bearer("reader-token-000000")).json()
    assert served["principal"] == "runner" and served["trigger"] == "manual"
    assert served["overrides"][0]["environment"] == {"DB_PASSWORD": "***", "MODE": "adhoc"}
    listed = http.get("/jobs/etl/runs", headers=bearer("reader-token-000000")).json()["runs"]
    assert listed[0]["overrides"][0]["environment"]["DB_PASSWORD"] == "***"
    assert "replica" not in served and "token" not in served


def test_a_run_may_not_override_the_command_without_the_right(http: httpx.Client) -> None:
    overrides = [{"containerName": "main", "command": ["sh", "-c", "anything"]}]
    denied = http.post("/jobs/etl/runs", json={"overrides": overrides}, headers=bearer("runner-token-000000"))
    assert denied.status_code == 403 and "allowCommandOverride" in denied.json()["message"]
