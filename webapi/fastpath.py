"""webapi's one measured shortcut: ``FastPathRoute``, a FastAPI route class (the documented
``APIRouter(route_class=...)`` hook) whose request handler skips FastAPI's general per-request
dependency solver on routes whose parameters need none of it.

Why: FastAPI's request handler costs more than the work behind GET /jobs/{id}; through it,
GET misses the API's "GET ≥ 80 % of bare FastAPI" target, through this one it meets it.
bench/request_cpu.py measures both handlers against the bare endpoint (bench/bare_app.py);
the figures, with the FastAPI version and date they were taken on, are in bench/README.md.

What it keeps. The handler FastAPI builds for a route (once per inclusion of its router) is
asked which dependant it would solve, and this one runs exactly those dependencies: the ones
the app, ``include_router(dependencies=...)``, the router and the endpoint declare,
``authorize`` among them, in FastAPI's order, each once per request (FastAPI's cache). Query
parameters are validated by FastAPI's own ``request_params_to_args`` and its errors raised
as FastAPI raises them. Routing, middleware, exception handlers, body limits and the OpenAPI
document are FastAPI's.

Where it applies. Only where nothing else is to be done: an ``async def`` endpoint returning
a ``Response``, taking ``str`` path parameters, query parameters, ``Request`` and
dependencies; dependencies that are ``async def`` (or instances with one as ``__call__``),
cached, taking only ``Request`` and dependencies of the same kind. Any other route (a body model,
headers, cookies, a model to serialise, a sync or ``yield`` dependency, security scopes), and
every request while ``app.dependency_overrides`` is set, is served by FastAPI's own handler.

What it relies on (tests/webapi/test_fastpath.py fails if it changes): FastAPI builds each
route's handler with ``get_request_handler`` around a ``dependant`` (the effective one, with
include-level dependencies), a ``body_field`` and a ``dependency_overrides_provider``, read
here from the handler it built (``inspect.getclosurevars``); ``request_params_to_args``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class _Step:
    """One dependency: what to call, under which parameter name its value goes, whether it
    takes the request, and its own dependencies."""

    call: Callable[..., Coroutine[Any, Any, Any]]
    name: str | None
    request_param: str | None
    steps: tuple[_Step, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    endpoint: Callable[..., Coroutine[Any, Any, Response]]
    steps: tuple[_Step, ...]
    request_param: str | None
    path_params: tuple[tuple[str, str], ...]  # (parameter name, path key)
    query_params: list[Any]  # FastAPI's fields, validated by FastAPI


class FastPathRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()
        built_with = inspect.getclosurevars(fastapi_handler).nonlocals
        dependant = built_with.get("dependant")
        plan = _plan(dependant) if isinstance(dependant, Dependant) else None
        if plan is None or built_with.get("body_field") is not None:
            return fastapi_handler
        overrides_provider = built_with.get("dependency_overrides_provider")

        async def fast_path(request: Request) -> Response:
            if overrides_provider is not None and getattr(overrides_provider, "dependency_overrides", None):
                return await fastapi_handler(request)
            values = await _solve(plan.steps, request, {})
            if plan.request_param is not None:
                values[plan.request_param] = request
            path = request.path_params
            for name, key in plan.path_params:
                values[name] = path[key]
            if plan.query_params:
                query, errors = request_params_to_args(plan.query_params, request.query_params)
                if errors:
                    raise RequestValidationError(errors)
                values.update(query)
            response = await plan.endpoint(**values)
            if not isinstance(response, Response):  # the plan checked the annotation
                raise TypeError(f"{self.name} returned {type(response).__name__}, not a Response")
            return response

        return fast_path


async def _solve(steps: tuple[_Step, ...], request: Request, cache: dict[Any, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for step in steps:
        if step.call in cache:
            value = cache[step.call]
        else:
            arguments = await _solve(step.steps, request, cache) if step.steps else {}
            if step.request_param is not None:
                arguments[step.request_param] = request
            value = cache[step.call] = await step.call(**arguments)
        if step.name is not None:
            values[step.name] = value
    return values


def _plan(dependant: Dependant) -> _Plan | None:
    """The endpoint's plan, or None when FastAPI has something to do for this route."""
    endpoint = dependant.call
    if endpoint is None or not inspect.iscoroutinefunction(endpoint) or not _returns_response(endpoint):
        return None
    if not _plain(dependant, endpoint=True):
        return None
    path_params: list[tuple[str, str]] = []
    for field in dependant.path_params:
        if field.field_info.annotation is not str or field.field_info.metadata:
            return None
        path_params.append((field.name, field.alias))
    steps = _steps(dependant)
    if steps is None:
        return None
    return _Plan(endpoint, steps, dependant.request_param_name, tuple(path_params), dependant.query_params)


def _steps(dependant: Dependant) -> tuple[_Step, ...] | None:
    steps: list[_Step] = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is None or not sub.use_cache or not _plain(sub, endpoint=False):
            return None
        if not _is_async(call):
            return None
        sub_steps = _steps(sub)
        if sub_steps is None:
            return None
        steps.append(_Step(call, sub.name, sub.request_param_name, sub_steps))
    return tuple(steps)


def _plain(dependant: Dependant, *, endpoint: bool) -> bool:
    """Takes nothing FastAPI would parse or inject but the request (and, for the endpoint,
    path parameters): no query, header, cookie or body parameters, no security scopes, no
    dependency scope (the endpoint's own is "function" whatever it declares)."""
    return not (
        (dependant.path_params and not endpoint)
        or (dependant.query_params and not endpoint)
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or (dependant.scope is not None and not endpoint)
        or dependant.concurrency is not None
    )


def _is_async(call: Callable[..., Any]) -> bool:
    """An ``async def`` function, or an instance whose ``__call__`` is one; not a generator."""
    if inspect.isclass(call):
        return False
    if inspect.isfunction(call) or inspect.ismethod(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(type(call).__call__)


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    try:
        returned = typing.get_type_hints(endpoint).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)
