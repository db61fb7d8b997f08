"""``ecss`` against webapi with authentication on (AUTH__MODE=tokens and a tokens file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.bus.sqs import SQSEventBus
from common.config import AuthSettings, Settings, SQLiteSettings, SQSSettings, StoreSettings
from common.store.base import JobStore
from tests.cli.conftest import Ecss
from tests.servers import ThreadedUvicorn
from tests.webapi.conftest import write_tokens
from webapi import create_app

READER, WRITER, ADMIN = "reader-secret-1", "writer-secret-2", "admin-secret-3"


@pytest.fixture
def tokens_url(
    tmp_path: Path, sqs_settings: SQSSettings, sqs_client: Any, sqlite_store: JobStore
) -> Iterator[str]:
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {
            READER: {"name": "viewer", "roles": ["read"]},
            WRITER: {"name": "ci-deployer", "roles": ["read", "write"], "taskDefinitions": ["data-*"]},
            ADMIN: {"name": "ops", "roles": ["admin"]},
        },
    )
    settings = Settings(
        store=StoreSettings(sqlite=SQLiteSettings(path=tmp_path / "api.db")),
        sqs=sqs_settings,
        auth=AuthSettings(mode="tokens", tokens_file=tokens),
    )
    bus = SQSEventBus.from_settings(sqs_settings, client=sqs_client)
    with ThreadedUvicorn(create_app(settings, store=sqlite_store, bus=bus)) as server:
        yield server.url


def test_tokens_roles_and_scopes(ecss: Ecss, tokens_url: str, tmp_path: Path) -> None:
    as_reader = {"ECSS_URL": tokens_url, "ECSS_TOKEN": READER}
    as_writer = {"ECSS_URL": tokens_url, "ECSS_TOKEN": WRITER}

    anonymous = ecss("--url", tokens_url, "jobs", "list")
    assert anonymous.returncode == 1 and "(HTTP 401)" in anonymous.stderr
    me = json.loads(ecss("whoami", "-o", "json", env=as_writer).stdout)
    assert me["name"] == "ci-deployer" and me["roles"] == ["read", "write"] and me["authMode"] == "tokens"

    created = ecss("jobs", "create", "--task-definition", "data-load", "--schedule", "0 */5", env=as_writer)
    assert created.returncode == 0, created.stderr
    refused = ecss("jobs", "create", "--task-definition", "web-task", "--schedule", "0", env=as_writer)
    assert refused.returncode == 1 and "(HTTP 403)" in refused.stderr
    assert ecss("jobs", "suspend", "data-load", env=as_reader).returncode == 1
    assert ecss("jobs", "upcoming", "data-load", env=as_reader).returncode == 0

    (tmp_path / "jobs.yaml").write_text(
        "managedBy: data\njobs:\n  - {taskDefinition: data-load, schedule: '0 */5'}\n"
        "  - {taskDefinition: data-export, schedule: '0 0 1'}\n"
    )
    applied = ecss("apply", "-f", "jobs.yaml", "--prune", env=as_writer)
    assert applied.returncode == 0, applied.stderr
    assert "1 to create, 1 to update" in applied.stdout  # data-load gains the managedBy tag
    assert ecss("apply", "-f", "jobs.yaml", "--prune", env=as_writer).stdout.strip().endswith("2 unchanged")
    for result in (anonymous, created, refused, applied):
        assert READER not in result.stdout + result.stderr and WRITER not in result.stdout + result.stderr


def test_apply_is_idempotent_with_redacted_secrets(ecss: Ecss, tokens_url: str, tmp_path: Path) -> None:
    """A non-admin token sees secret-looking environment values as ***: apply does not take
    that for a change, and the stored value stays what the file says."""
    as_writer = {"ECSS_URL": tokens_url, "ECSS_TOKEN": WRITER}
    (tmp_path / "jobs.yaml").write_text(
        "- taskDefinition: data-load\n  schedule: '0 */5'\n  overrides:\n"
        "    - {containerName: app, environment: {DB_PASSWORD: hunter2, MODE: full}}\n"
    )
    first = ecss("apply", "-f", "jobs.yaml", env=as_writer)
    assert first.returncode == 0, first.stderr
    assert '"DB_PASSWORD": "***"' in first.stdout and "hunter2" not in first.stdout  # plans go into CI logs
    shown = json.loads(ecss("jobs", "get", "data-load", "-o", "json", env=as_writer).stdout)
    assert shown["overrides"][0]["environment"] == {"DB_PASSWORD": "***", "MODE": "full"}
    again = ecss("apply", "-f", "jobs.yaml", env=as_writer)
    assert again.stdout.strip() == "Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged"
    (tmp_path / "jobs.yaml").write_text((tmp_path / "jobs.yaml").read_text().replace("full", "delta"))
    changed = ecss("apply", "-f", "jobs.yaml", env=as_writer)
    assert "1 to update" in changed.stdout and "hunter2" not in changed.stdout + changed.stderr
    stored = json.loads(
        ecss(
            "jobs", "get", "data-load", "-o", "json", env={"ECSS_URL": tokens_url, "ECSS_TOKEN": ADMIN}
        ).stdout
    )
    assert stored["overrides"][0]["environment"] == {"DB_PASSWORD": "hunter2", "MODE": "delta"}
