"""What a principal may do with a job: task-definition scope and allowlist, override guards,
and redaction of secret-looking environment values.

Reads filter by scope (a job outside it does not exist for the caller); writes outside it
are refused (403). ``auth.allowed_task_definitions`` applies to every caller in every mode,
when a write sets a job's task definition.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from common.config import AuthSettings
from common.errors import JobNotFoundError, PermissionDeniedError
from common.models import ContainerOverride, Job, JobUpdate
from webapi.principal import Principal, matches_any

REDACTED = "***"


def check_create(principal: Principal, job: Job, settings: AuthSettings) -> None:
    _check_task_definition(principal, job.task_definition, settings)
    if _commands(job):
        _check_command_override(principal)


def check_change(principal: Principal, before: Job, after: Job, settings: AuthSettings) -> None:
    """An update (``after`` is the merged job) or, with ``after`` the same job, a delete."""
    _check_scope(principal, before.task_definition)
    if after.task_definition != before.task_definition:
        _check_task_definition(principal, after.task_definition, settings)
    if _commands(after) != _commands(before):
        _check_command_override(principal)


def visible(principal: Principal, document: dict[str, Any]) -> bool:
    return principal.in_scope(str(document.get("taskDefinition", "")))


def scoped(principal: Principal, job: Job) -> Job:
    """The job, if in the caller's scope; outside it the job does not exist for the caller."""
    if not principal.in_scope(job.task_definition):
        raise JobNotFoundError(job.id)
    return job


def redact(principal: Principal, document: dict[str, Any], settings: AuthSettings) -> dict[str, Any]:
    """The document with secret-looking environment values replaced, unless admin."""
    if principal.is_admin or not document.get("overrides"):
        return document
    overrides = []
    for override in document["overrides"]:
        environment = override.get("environment")
        if environment:
            override = {
                **override,
                "environment": {
                    name: REDACTED if _secret(name, settings) else value
                    for name, value in environment.items()
                },
            }
        overrides.append(override)
    return {**document, "overrides": overrides}


def restore_redacted(update: JobUpdate, job: Job) -> JobUpdate:
    """A PUT that sends ``"***"`` back for a stored variable keeps the stored value."""
    if not update.overrides or not job.overrides:
        return update
    stored = {override.container_name: override.environment or {} for override in job.overrides}
    restored: list[ContainerOverride] = []
    for override in update.overrides:
        environment = override.environment
        if environment and REDACTED in environment.values():
            previous = stored.get(override.container_name, {})
            environment = {
                name: previous[name] if value == REDACTED and name in previous else value
                for name, value in environment.items()
            }
            override = override.model_copy(update={"environment": environment})
        restored.append(override)
    return update.model_copy(update={"overrides": restored})


def _check_task_definition(principal: Principal, task_definition: str, settings: AuthSettings) -> None:
    if not matches_any(task_definition, settings.allowed_task_definitions):
        raise PermissionDeniedError(
            principal.name,
            f"task definition {task_definition!r} is not in this server's auth.allowed_task_definitions",
        )
    _check_scope(principal, task_definition)


def _check_scope(principal: Principal, task_definition: str) -> None:
    if not principal.in_scope(task_definition):
        raise PermissionDeniedError(
            principal.name, f"task definition {task_definition!r} is outside this token's taskDefinitions"
        )


def _check_command_override(principal: Principal) -> None:
    if not principal.may_override_command():
        raise PermissionDeniedError(principal.name, "container command overrides need allowCommandOverride")


def _commands(job: Job) -> dict[str, list[str]]:
    return {o.container_name: o.command for o in job.overrides or () if o.command is not None}


def _secret(name: str, settings: AuthSettings) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, glob.upper()) for glob in settings.redact_environment)
