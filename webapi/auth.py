"""Authentication and role checks: one FastAPI dependency, ``authorize``, on every API route.

Secure by default: every API router is declared with ``dependencies=AUTHORIZED``, so each of its
routes runs ``authorize``; only the paths in ``ANONYMOUS_PATHS`` go without, and
``check_protected`` refuses to build an app with any other route that lacks it. The role a
route needs follows its method (GET/HEAD: ``read``, others: ``write``) unless the endpoint is
marked with ``requires(role)``. The principal is also put on ``request.state.principal`` (its
name) for logging and metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request, params
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.routing import iter_route_contexts
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from common.config import AuthSettings, ConfigError, Role
from common.errors import NotAuthenticatedError, PermissionDeniedError
from webapi.limits import check_write_rate
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

    async def principal_for(self, token: str | None) -> Principal:
        if self.mode == "none":
            return ANONYMOUS
        if token is None:
            raise NotAuthenticatedError("send Authorization: Bearer <token>")
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


class BearerAuthorization(SecurityBase):
    """The dependency on every API route: who is calling (401 if unknown), whether its
    roles allow this route (403), and for writes whether it is within its write rate (429).
    A FastAPI security scheme (HTTP bearer), so the OpenAPI
    document declares it on every operation and ``/docs`` offers *Authorize*.

    One dependency with no sub-dependencies rather than ``HTTPBearer`` → authenticate →
    authorize: FastAPI re-solves a dependency's whole sub-tree wherever it is used, even when
    its value is cached, and every route also asks for the principal (``PrincipalDep``).
    """

    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            description="An API token (tokens file) or an OIDC JWT: `Authorization: Bearer <token>`"
        )
        self.scheme_name = "bearer"

    async def __call__(self, request: Request) -> Principal:
        authenticator: Authenticator = request.app.state.authenticator
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        principal = await authenticator.principal_for(token if scheme.lower() == "bearer" and token else None)
        request.state.principal = principal.name
        role: Role = getattr(
            request.scope.get("endpoint"),
            ROLE_ATTRIBUTE,
            "read" if request.method in _SAFE_METHODS else "write",
        )
        if not principal.has_role(role):
            raise PermissionDeniedError(principal.name, f"the {role!r} role is needed")
        if request.method not in _SAFE_METHODS:
            check_write_rate(request, principal)  # 429 beyond webapi.limits.write_rate
        return principal


authorize = BearerAuthorization()

AUTHORIZED: tuple[params.Depends, ...] = (Depends(authorize),)
"""``APIRouter(dependencies=AUTHORIZED)``: every route of the router runs ``authorize`` first."""


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
