"""``DirectRoute``: FastAPI routes whose endpoints read their own input are called directly.

Per request, FastAPI solves an endpoint's parameters (dependency graph, validation, response
model). For an endpoint whose only parameters are the request and plain ``str`` path
parameters, and which returns a Response, that work has nothing to do, yet it is a large share
of a GET /jobs/{id} served from SQLite (bench/api.py measures it). Such endpoints are
called with the request and the matched path parameters; any other endpoint (query
parameters, dependencies, a body model...) is left to FastAPI. The OpenAPI document is built
from the same declarations either way, and errors raised by the endpoint reach the app's
exception handlers as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        request_name = self.dependant.request_param_name
        if request_name is None or not _reads_own_input(self.dependant):
            return super().get_route_handler()
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(**{request_name: request}, **request.path_params)
            return response

        return handle


def _reads_own_input(dependant: Dependant) -> bool:
    """Only the request and unconstrained ``str`` path parameters, in an ``async def``."""
    return (
        inspect.iscoroutinefunction(dependant.call)
        and not (
            dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
            or dependant.websocket_param_name
            or dependant.http_connection_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
        )
        and all(
            field.field_info.annotation is str and not field.field_info.metadata and field.alias == field.name
            for field in dependant.path_params
        )
    )
