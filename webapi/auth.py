"""Authentication and role checks: one FastAPI dependency, ``authorize``, on every API route.

Secure by default: ``app.py`` includes every router under ``dependencies=[Depends(authorize)]``
except the few in ``ANONYMOUS_PATHS``, and ``check_protected`` refuses to build an app with any
other route that lacks it. The role a route needs follows its method (GET/HEAD: ``read``,
others: ``write``) unless the endpoint is marked with ``requires(role)``. The principal is
also put on ``request.state.principal`` (its name) for logging and metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from common.config import AuthSettings, ConfigError, Role
from common.errors import NotAuthenticatedError, PermissionDeniedError
from webapi.oidc import JWTVerifier
from webapi.principal import ANONYMOUS, Principal
from webapi.tokens import TokenFile

logger = logging.getLogger(__name__)

ANONYMOUS_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/spec",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/static-offline-docs",  # the Swagger UI and ReDoc assets (a static mount)
        "/ui",
    }
)
"""The only routes served without credentials: health, metrics, and page shells that carry no
job data (README "Security")."""

ROLE_ATTRIBUTE = "required_role"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API token (tokens file) or an OIDC JWT: `Authorization: Bearer <token>`",
)

F = TypeVar("F", bound=Callable[..., Any])


def requires(role: Role) -> Callable[[F], F]:
    """Mark an endpoint as needing ``role`` instead of the one its method implies."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, ROLE_ATTRIBUTE, role)
        return endpoint

    return mark


class Authenticator:
    """Turns a bearer token into a principal, per ``auth.mode``."""

    def __init__(self, settings: AuthSettings) -> None:
        self.mode = settings.mode
        self.tokens: TokenFile | None = None
        self.jwt: JWTVerifier | None = None
        if settings.mode == "none":
            return
        if settings.tokens_file is None and not settings.jwt.enabled:
            raise ConfigError(
                "auth.mode is 'tokens' but no credentials are configured: set auth.tokens_file "
                "(AUTH__TOKENS_FILE) and/or auth.jwt.jwks_url / auth.jwt.jwks_file, or set "
                "AUTH__MODE=none to serve without authentication"
            )
        if settings.tokens_file is not None:
            self.tokens = TokenFile(settings.tokens_file)
        if settings.jwt.enabled:
            self.jwt = JWTVerifier(settings.jwt)

    async def principal_for(self, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        if self.mode == "none":
            return ANONYMOUS
        if credentials is None:
            raise NotAuthenticatedError("send Authorization: Bearer <token>")
        token = credentials.credentials
        if self.tokens is not None:
            principal = self.tokens.principal_for(token)
            if principal is not None:
                return principal
        if self.jwt is not None and token.count(".") == 2:
            principal = await run_in_threadpool(self.jwt.principal_for, token)
            if principal is not None:
                return principal
        raise NotAuthenticatedError("the bearer token is not valid")

    def reload(self) -> None:
        if self.tokens is not None:
            self.tokens.reload()


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller; 401 without valid credentials."""
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.principal_for(credentials)
    request.state.principal = principal.name
    return principal


async def authorize(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """The caller, if its roles allow this route; 401/403 otherwise."""
    role: Role = getattr(
        request.scope.get("endpoint"),
        ROLE_ATTRIBUTE,
        "read" if request.method in _SAFE_METHODS else "write",
    )
    if not principal.has_role(role):
        raise PermissionDeniedError(principal.name, f"the {role!r} role is needed")
    return principal


def check_protected(app: FastAPI) -> None:
    """Refuse an app in which a route outside ``ANONYMOUS_PATHS`` would skip ``authorize``."""
    for route in iter_route_contexts(app.routes):  # included routers' routes as served
        path = route.path or ""
        if path in ANONYMOUS_PATHS:
            continue
        dependant = getattr(route, "dependant", None)
        if dependant is not None and any(
            dependency.call is authorize for dependency in dependant.dependencies
        ):
            continue
        kind = "mount" if isinstance(route.original_route, Mount) else "route"
        raise RuntimeError(
            f"{kind} {path} is neither behind webapi.auth.authorize nor listed in ANONYMOUS_PATHS"
        )
