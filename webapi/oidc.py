"""Bearer JWTs from an OIDC provider, verified with PyJWT against the provider's JWKS.

Keys come from ``auth.jwt.jwks_url`` (PyJWKClient: fetched once, cached, refetched for an
unknown ``kid``) or a local ``auth.jwt.jwks_file``. Signature, ``exp``, ``iss`` and ``aud``
are checked with ``leeway_seconds``; roles come from ``roles_claim`` (a list, or a
space-separated string as in OAuth ``scope``), mapped through ``role_mapping``.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt

from common.config import ConfigError, JWTSettings, Role
from webapi.principal import ROLES, Principal

logger = logging.getLogger(__name__)


class JWTVerifier:
    def __init__(self, settings: JWTSettings) -> None:
        self.settings = settings
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if settings.jwks_url is not None:
            self._client = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=3600, timeout=5)
        elif settings.jwks_file is not None:
            try:
                self._keys = jwt.PyJWKSet.from_json(settings.jwks_file.read_text(encoding="utf-8"))
            except (OSError, jwt.PyJWTError) as exc:
                raise ConfigError(f"auth.jwt.jwks_file {settings.jwks_file}: {exc}") from exc

    def principal_for(self, token: str) -> Principal | None:
        """The principal a valid token stands for; None (and a log line naming why, never the
        token) when it is not valid. Blocking: the first use of a key may fetch the JWKS."""
        try:
            key = self._signing_key(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("JWT not verified: JWKS %s unreachable (%s)", self.settings.jwks_url, exc)
            return None
        except jwt.PyJWTError as exc:
            logger.info("JWT rejected: %s", exc.__class__.__name__)
            return None
        return Principal(
            name=f"jwt:{claims['sub']}",
            roles=frozenset(self._roles(claims)),
            task_definitions=self._scope(claims),
        )

    def _signing_key(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        assert self._keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if key.key_id == kid:
                return key.key
        raise jwt.InvalidKeyError(f"no key with kid {kid!r}")

    def _roles(self, claims: dict[str, Any]) -> set[Role]:
        values = _claim(claims, self.settings.roles_claim)
        if isinstance(values, str):
            values = values.split()
        roles: set[Role] = set()
        for value in values if isinstance(values, list) else []:
            if value in ROLES:
                roles.add(value)
            roles.update(self.settings.role_mapping.get(str(value), ()))
        return roles

    def _scope(self, claims: dict[str, Any]) -> tuple[str, ...] | None:
        if self.settings.task_definitions_claim is None:
            return None
        globs = _claim(claims, self.settings.task_definitions_claim)
        if isinstance(globs, str):
            globs = globs.split()
        # a configured scope claim that is absent scopes the token to nothing
        return tuple(str(glob) for glob in globs) if isinstance(globs, list) else ()


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
