"""RunTask's ``clientToken`` honoured by the local emulator as ECS honours it.

moto accepts the token and ignores it, so under ``make run`` a leader that retries or recovers
a fire (same run id, same token) would launch its tasks twice. ECS's rule: a token is scoped
to its cluster and lives 24 hours; a repeat with the same parameters returns the first call's
tasks and launches nothing, one with other parameters fails with ConflictException.
``install()`` wraps moto's RunTask handler in the emulator's process (the emulator runs moto
in-process); the compose stack's moto image is not wrapped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

TOKEN_TTL_SECONDS = 24 * 3600.0
T = TypeVar("T")


class TokenConflictError(Exception):
    """The token was used for a RunTask with other parameters."""


@dataclass(frozen=True)
class _Remembered:
    fingerprint: bytes
    result: Any
    at: float


class ClientTokens:
    """First result per (cluster, token), for ``ttl`` seconds."""

    def __init__(
        self, *, ttl: float = TOKEN_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], _Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def run_once(self, *, cluster: str, token: str, parameters: dict[str, Any], launch: Callable[[], T]) -> T:
        """``launch()`` the first time; its result again for a repeat within the ttl.

        Serialised: a repeat arriving while the first call still launches waits for it, so
        two concurrent calls with one token cannot both launch.
        """
        fingerprint = orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)
        key = (cluster, token)
        with self._lock:
            now = self._clock()
            while self._seen and now - next(iter(self._seen.values())).at > self._ttl:
                self._seen.popitem(last=False)
            seen = self._seen.get(key)
            if seen is not None:
                if seen.fingerprint != fingerprint:
                    raise TokenConflictError(token)
                result: T = seen.result
                return result
            result = launch()
            self._seen[key] = _Remembered(fingerprint, result, now)
            return result


def install(tokens: ClientTokens | None = None) -> ClientTokens:
    """Make this process's moto ECS backend honour RunTask client tokens (idempotent)."""
    from moto.ecs.exceptions import ECSException
    from moto.ecs.responses import EC2ContainerServiceResponse

    current = EC2ContainerServiceResponse.run_task
    installed: ClientTokens | None = getattr(current, "client_tokens", None)
    if installed is not None:
        return installed
    registry = tokens or ClientTokens()

    def run_task(self: Any) -> Any:
        token = self._get_param("clientToken")
        if not token:
            return current(self)
        parameters = dict(orjson.loads(self.body or b"{}"))
        parameters.pop("clientToken", None)
        cluster = str(self._get_param("cluster", "default")).rsplit("/", 1)[-1]
        try:
            return registry.run_once(
                cluster=f"{self.current_account}:{self.region}:{cluster}",
                token=token,
                parameters=parameters,
                launch=lambda: current(self),
            )
        except TokenConflictError:
            raise ECSException(
                "ConflictException", "The clientToken was already used with other parameters"
            ) from None

    run_task.client_tokens = registry  # type: ignore[attr-defined]
    EC2ContainerServiceResponse.run_task = run_task  # type: ignore[method-assign]
    return registry
