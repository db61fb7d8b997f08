"""Who is calling: a name, roles and an optional scope, whatever the credential was."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import get_args

from common.config import Role

ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True, slots=True)
class Principal:
    """``task_definitions`` None means every task definition; ``admin`` implies every role
    and both override flags."""

    name: str
    roles: frozenset[Role]
    task_definitions: tuple[str, ...] | None = None
    allow_command_override: bool = False
    allow_role_override: bool = False

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, role: Role) -> bool:
        return role in self.roles or self.is_admin

    def may_override_command(self) -> bool:
        return self.allow_command_override or self.is_admin

    def in_scope(self, task_definition: str) -> bool:
        return self.task_definitions is None or matches_any(task_definition, self.task_definitions)


ANONYMOUS = Principal(name="anonymous", roles=frozenset({"admin"}))
"""The caller in ``auth.mode: none``: everything, as before authentication existed (the
server-wide ``auth.allowed_task_definitions`` still applies)."""


def matches_any(name: str, globs: tuple[str, ...] | list[str]) -> bool:
    """Case-sensitive glob match (task definitions are case-sensitive in ECS)."""
    return any(fnmatch.fnmatchcase(name, glob) for glob in globs)
