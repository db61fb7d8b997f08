"""Static API tokens: a YAML file of SHA-256 hashes (never the tokens), reloaded on change.

The file's shape is fixed so operators and tools can write it (``ecs-scheduler token create``
prints an entry)::

    tokens:
      - name: ci-deployer
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        roles: [read, write]
        taskDefinitions: ["data-*"]      # optional; default all
        allowCommandOverride: false      # optional; default false

Each lookup stats the file (cheap) and re-reads it when its mtime, size or inode changed;
``reload()`` (wired to SIGHUP) re-reads it unconditionally. A file that stops parsing keeps
the last good tokens and is logged. Hashes are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from common.config import ConfigError, Role
from webapi.principal import Principal

logger = logging.getLogger(__name__)

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", to_lower=True)]


class TokenEntry(BaseModel):
    """One entry of the tokens file."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    sha256: Sha256Hex
    roles: Annotated[list[Role], Field(min_length=1)]
    task_definitions: list[str] | None = None
    allow_command_override: bool = False
    allow_role_override: bool = False

    def principal(self) -> Principal:
        return Principal(
            name=self.name,
            roles=frozenset(self.roles),
            task_definitions=None if self.task_definitions is None else tuple(self.task_definitions),
            allow_command_override=self.allow_command_override,
            allow_role_override=self.allow_role_override,
        )


class TokensDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry] = Field(default_factory=list)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenFile:
    """The tokens of ``path``, kept current; ``principal_for`` answers a bearer token."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._entries: tuple[tuple[bytes, Principal], ...] = ()
        try:
            self._load(self._stat())
        except (OSError, ConfigError) as exc:
            raise ConfigError(f"auth.tokens_file {path}: {exc}") from exc

    def principal_for(self, token: str) -> Principal | None:
        self._reload_if_changed()
        digest = token_hash(token).encode()
        found: Principal | None = None
        for stored, principal in self._entries:  # every entry compared: no early exit
            if hmac.compare_digest(stored, digest) and found is None:
                found = principal
        return found

    def reload(self) -> None:
        """Re-read the file whatever its stat says (SIGHUP)."""
        try:
            self._load(self._stat())
        except (OSError, ConfigError) as exc:
            logger.error(
                "tokens file %s not reloaded, keeping %d tokens: %s", self.path, len(self._entries), exc
            )

    def _reload_if_changed(self) -> None:
        try:
            signature = self._stat()
        except OSError as exc:
            if self._signature is not None:
                logger.error("tokens file %s unreadable, keeping the last tokens: %s", self.path, exc)
                self._signature = None
            return
        if signature != self._signature:
            try:
                self._load(signature)
            except ConfigError as exc:
                self._signature = signature  # logged once per change, not per request
                logger.error(
                    "tokens file %s not reloaded, keeping %d tokens: %s", self.path, len(self._entries), exc
                )

    def _stat(self) -> tuple[int, int, int]:
        stat = os.stat(self.path)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _load(self, signature: tuple[int, int, int]) -> None:
        with self._lock:
            text = self.path.read_text(encoding="utf-8")
            try:
                document = TokensDocument.model_validate(yaml.safe_load(text) or {})
            except yaml.YAMLError as exc:
                raise ConfigError(f"not valid YAML ({exc.__class__.__name__})") from None
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                    for error in exc.errors(include_url=False, include_input=False)
                )
                raise ConfigError(problems) from None
            self._entries = tuple((entry.sha256.encode(), entry.principal()) for entry in document.tokens)
            self._signature = signature
        logger.info("tokens file %s loaded: %d tokens", self.path, len(self._entries))
