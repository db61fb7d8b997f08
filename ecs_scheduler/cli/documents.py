"""Job files for ``ecss apply``/``export``: a list of job documents, or a mapping with
``managedBy`` (the owner whose jobs ``--prune`` may delete) and ``jobs``. YAML or JSON."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from ecs_scheduler.cli.context import fail

MANAGED_BY = "managedBy"
# What the API returns but a user never sets: left out of exports and comparisons.
# Used when the API's schema does not list the settable fields.
READ_ONLY = frozenset(
    {
        "link",
        "lastRun",
        "lastRunTasks",
        "lastRunFailures",
        "lastRunStatus",
        "lastSuccess",
        "lastFailure",
        "consecutiveFailures",
        "estimatedNextRun",
    }
)


@dataclass
class Documents:
    jobs: list[dict[str, Any]]
    managed_by: str | None = None
    source: str = "-"
    extra: dict[str, Any] = field(default_factory=dict)


def read_documents(path: Path) -> Documents:
    """Parse a job file; a bad file ends the command (exit 2) naming the file and the problem."""
    name = str(path)
    try:
        text = sys.stdin.read() if name == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {name}: {exc.strerror or exc}")
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        fail(f"{name}: not valid YAML or JSON ({exc})")
    managed_by: str | None = None
    if isinstance(data, dict) and "jobs" not in data and "taskDefinition" in data:
        data = [data]  # a single job document
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"jobs", MANAGED_BY})
        if unknown:
            fail(f"{name}: unknown top-level key(s) {', '.join(unknown)}; expected managedBy and jobs")
        managed_by = data.get(MANAGED_BY)
        if managed_by is not None and (not isinstance(managed_by, str) or not managed_by):
            fail(f"{name}: managedBy must be a non-empty string")
        data = data.get("jobs") or []
    if data is None:
        data = []
    if not isinstance(data, list) or not all(isinstance(job, dict) for job in data):
        fail(f"{name}: expected a list of job documents (or a mapping with managedBy and jobs)")
    return Documents(jobs=[_plain(job) for job in data], managed_by=managed_by, source=name)


def _plain(value: Any) -> Any:
    """YAML reads unquoted timestamps as datetimes; the API wants ISO-8601 strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def managed_tag(managed_by: str) -> dict[str, str]:
    return {"key": MANAGED_BY, "value": managed_by}


def owner_of(job: dict[str, Any]) -> str | None:
    """The value of a job's managedBy tag, if it carries one."""
    for tag in job.get("tags") or []:
        if isinstance(tag, dict) and tag.get("key") == MANAGED_BY:
            value = tag.get("value")
            return str(value) if value is not None else ""
    return None


def user_fields(job: dict[str, Any], settable: frozenset[str] | None = None) -> dict[str, Any]:
    """A served job without the read-only fields: what a file would declare."""
    if settable is not None:
        return {key: value for key, value in job.items() if key in settable}
    return {key: value for key, value in job.items() if key not in READ_ONLY}
