"""Jobs as code: the changes that make the server's jobs match a file, computed before any is made.

Compared field by field as the server stores them: a ``?`` in the file's schedule matches the
value the server drew for it, timestamps compare as instants, ``taskCount`` defaults to 1 and
``suspended: false`` equals no ``suspended``. An update sends only the changed fields (``null``
for a field the file no longer sets), so a second apply finds nothing to do.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ecs_scheduler.cli.documents import Documents, managed_tag, owner_of, user_fields

Kind = Literal["create", "update", "delete"]
_DEFAULTS: dict[str, Any] = {"taskCount": 1, "suspended": False}
REDACTED = "***"
SECRET_NAMES = ("*PASSWORD*", "*SECRET*", "*TOKEN*", "*KEY*")


@dataclass
class Change:
    kind: Kind
    job_id: str
    body: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    changes: list[Change]
    unchanged: list[str]

    def count(self, kind: Kind) -> int:
        return sum(1 for change in self.changes if change.kind == kind)


class PlanError(ValueError):
    """The file cannot be applied as written (duplicate ids, a job without taskDefinition...)."""


def desired_jobs(documents: Documents) -> dict[str, dict[str, Any]]:
    """The file's jobs by id (id defaults to taskDefinition), tagged with the file's owner.
    Read-only fields a file may carry (an export from an older ecss) are left out."""
    jobs: dict[str, dict[str, Any]] = {}
    for index, document in enumerate(documents.jobs):
        job = user_fields(document)
        task_definition = job.get("taskDefinition")
        job_id = job.get("id") or task_definition
        if not isinstance(job_id, str) or not job_id:
            raise PlanError(f"job #{index + 1} has neither id nor taskDefinition")
        if job_id in jobs:
            raise PlanError(f"job id {job_id!r} appears twice")
        job["id"] = job_id
        if documents.managed_by is not None:
            owner = owner_of(job)
            if owner is None:
                job["tags"] = [*(job.get("tags") or []), managed_tag(documents.managed_by)]
            elif owner != documents.managed_by:
                manager = documents.managed_by
                raise PlanError(f"job {job_id!r} is tagged managedBy={owner!r}; the file manages {manager!r}")
        jobs[job_id] = job
    return jobs


def make_plan(
    desired: dict[str, dict[str, Any]],
    current: dict[str, dict[str, Any]],
    *,
    prune_owner: str | None = None,
    settable: frozenset[str] | None = None,
) -> Plan:
    """Creates for new ids, updates of changed fields, deletes (only with an owner to prune)."""
    changes: list[Change] = []
    unchanged: list[str] = []
    for job_id, job in desired.items():
        existing = current.get(job_id)
        if existing is None:
            changes.append(Change("create", job_id, body=job))
            continue
        before = user_fields(existing, settable)
        body = _changed_fields(job, before)
        if body:
            changes.append(Change("update", job_id, body=body, before=before))
        else:
            unchanged.append(job_id)
    if prune_owner is not None:
        for job_id, existing in current.items():
            if job_id not in desired and owner_of(existing) == prune_owner:
                changes.append(Change("delete", job_id, before=user_fields(existing, settable)))
    return Plan(changes=changes, unchanged=unchanged)


def _changed_fields(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in sorted((set(desired) | set(current)) - {"id"}):
        want = desired.get(name, _DEFAULTS.get(name))
        have = current.get(name, _DEFAULTS.get(name))
        if not same_value(name, want, have):
            body[name] = want
    return body


def same_value(name: str, want: Any, have: Any) -> bool:
    if want is None or have is None:
        return want is None and have is None
    if name == "schedule" and isinstance(want, str) and isinstance(have, str):
        return _same_schedule(want, have)
    if name in {"scheduleStart", "scheduleEnd"}:
        return bool(_instant(want) == _instant(have))
    if name == "tags" and isinstance(want, list) and isinstance(have, list):
        return _tags(want) == _tags(have)
    if name == "overrides" and isinstance(want, list) and isinstance(have, list):
        return bool(want == _unredacted(want, have))
    return bool(want == have)


def _unredacted(want: list[Any], have: list[Any]) -> list[Any]:
    """The server's overrides with each redacted environment value (``***``: a secret-looking
    name shown to a non-admin token) taken as the file's: the API keeps the stored value when
    ``***`` is sent back, so it cannot be compared and is not a change."""
    wanted = {o.get("containerName"): o for o in want if isinstance(o, dict)}
    result = []
    for override in have:
        mine = wanted.get(override.get("containerName")) if isinstance(override, dict) else None
        environment = override.get("environment") if isinstance(override, dict) else None
        if mine and isinstance(environment, dict):
            theirs = mine.get("environment") or {}
            environment = {
                key: theirs.get(key, value) if value == REDACTED else value
                for key, value in environment.items()
            }
            override = {**override, "environment": environment}
        result.append(override)
    return result


def _same_schedule(want: str, have: str) -> bool:
    """``?`` in the file stands for whatever value the server drew for that field."""
    wanted, stored = want.split(), have.split()
    if len(wanted) != len(stored):
        return False
    return all(w == s or (w == "?" and s.isdigit()) for w, s in zip(wanted, stored, strict=True))


def _instant(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _tags(tags: list[Any]) -> list[Any]:
    return [{"value": "", **tag} if isinstance(tag, dict) else tag for tag in tags]


def describe(change: Change) -> list[str]:
    """The diff lines printed before anything is applied."""
    if change.kind == "create":
        lines = [f"+ create {change.job_id}"]
        lines += [
            f"    {name}: {_show(_masked(name, value))}"
            for name, value in change.body.items()
            if name != "id"
        ]
    elif change.kind == "update":
        lines = [f"~ update {change.job_id}"]
        for name, value in change.body.items():
            old = _show(_masked(name, change.before.get(name)))
            if value is None:
                lines.append(f"    {name}: {old} → (cleared)")
            else:
                lines.append(f"    {name}: {old} → {_show(_masked(name, value))}")
    else:
        lines = [f"- delete {change.job_id}"]
    return lines


def _masked(name: str, value: Any) -> Any:
    """Overrides with secret-looking environment values (the API's default redaction names)
    shown as ***: a plan is printed, often into CI logs."""
    if name != "overrides" or not isinstance(value, list):
        return value
    masked = []
    for override in value:
        environment = override.get("environment") if isinstance(override, dict) else None
        if isinstance(environment, dict):
            override = {
                **override,
                "environment": {
                    key: REDACTED if any(fnmatch.fnmatch(key.upper(), p) for p in SECRET_NAMES) else item
                    for key, item in environment.items()
                },
            }
        masked.append(override)
    return masked


def _show(value: Any) -> str:
    import json

    if value is None:
        return "(unset)"
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, default=str)
