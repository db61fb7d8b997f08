"""``FastPathRoute`` (webapi/fastpath.py), webapi's one shortcut: it must run every dependency
FastAPI would (app-, include-, router- and endpoint-level, each once), fall back to FastAPI's
own handler wherever FastAPI has work to do, and these tests fail if the FastAPI behaviour it
reads changes.

Which handler served a request is seen by counting calls of FastAPI's
``fastapi.routing.solve_dependencies`` (wrapped, still called through): a spy on the framework,
since nothing else tells the two handlers apart from outside. Apps are served over HTTP.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.routing import APIRoute

from common.models import JobCreate, new_job
from common.store.base import JobStore
from tests.servers import ThreadedUvicorn
from tests.webapi.conftest import JSON, Serve
from webapi.errors import JSONReply
from webapi.fastpath import FastPathRoute


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests FastAPI's own handler solved (appended per call)."""
    calls: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["request"].url.path)
        return await original(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


def _served(app: FastAPI) -> Iterator[httpx.Client]:
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _record(request: Request, name: str) -> str:
    request.app.state.seen.append(name)
    return name


async def app_level(request: Request) -> str:
    return _record(request, "app")


async def include_level(request: Request) -> str:
    return _record(request, "include")


async def router_level(request: Request) -> str:
    return _record(request, "router")


async def route_level(request: Request) -> str:
    return _record(request, "route")


async def shared(request: Request, route: Annotated[str, Depends(route_level)]) -> str:
    return f"{_record(request, 'shared')}({route})"


things = APIRouter(prefix="/things", route_class=FastPathRoute, dependencies=[Depends(router_level)])
"""Dependencies at every level FastAPI has (app and inclusion add theirs), one used twice."""


@things.get("/{thing_id}")
async def get_thing(
    thing_id: str,
    request: Request,
    first: Annotated[str, Depends(shared)],
    again: Annotated[str, Depends(shared)],
) -> Response:
    return JSONReply({"id": thing_id, "first": first, "again": again, "path": request.url.path})


@things.get("")
async def list_things(count: Annotated[int, Query(ge=1, le=5)] = 2) -> Response:
    return JSONReply({"count": count})


@things.get("/{thing_id}/model")
async def thing_model(thing_id: str) -> dict[str, str]:
    return {"id": thing_id}


Layered = tuple[httpx.Client, list[str], FastAPI]


@pytest.fixture
def layered() -> Iterator[Layered]:
    app = FastAPI(dependencies=[Depends(app_level)])
    app.include_router(things, dependencies=[Depends(include_level)])
    seen: list[str] = []
    app.state.seen = seen
    for http in _served(app):
        yield http, seen, app


def test_fast_path_runs_every_level_of_dependency_once_in_fastapis_order(
    layered: Layered, solved: list[str]
) -> None:
    http, seen, _ = layered
    reply = http.get("/things/a%20b")
    assert reply.status_code == 200
    assert reply.json() == {
        "id": "a b",
        "first": "shared(route)",
        "again": "shared(route)",
        "path": "/things/a b",
    }
    assert seen == ["app", "include", "router", "route", "shared"]
    assert solved == []  # served by FastPathRoute's handler


def test_routes_with_something_to_validate_or_serialise_get_fastapis_handler(
    layered: Layered, solved: list[str]
) -> None:
    http, seen, _ = layered
    assert http.get("/things", params={"count": 3}).json() == {"count": 3}
    assert http.get("/things", params={"count": 9}).status_code == 422  # FastAPI validated it
    assert http.get("/things/x/model").json() == {"id": "x"}
    assert solved == ["/things", "/things", "/things/x/model"]
    assert seen.count("app") == 3  # dependencies ran there too


def test_dependency_overrides_send_requests_to_fastapis_handler(layered: Layered, solved: list[str]) -> None:
    http, seen, app = layered

    async def replacement() -> str:
        seen.append("replacement")
        return "replacement"

    app.dependency_overrides[router_level] = replacement
    try:
        assert http.get("/things/x").status_code == 200
    finally:
        app.dependency_overrides.clear()
    assert "replacement" in seen and "router" not in seen
    assert solved == ["/things/x"]


def test_fastapi_builds_each_included_route_handler_around_its_effective_dependant() -> None:
    """The contract FastPathRoute reads: FastAPI's handler closes over ``dependant`` (with
    the include-level dependencies in it), ``body_field`` and ``dependency_overrides_provider``."""
    built: list[dict[str, Any]] = []

    class Recording(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()
            built.append(inspect.getclosurevars(handler).nonlocals)
            return handler

    async def include_level() -> None:
        return None

    app = FastAPI()
    router = APIRouter(route_class=Recording)

    @router.get("/x/{x_id}")
    async def endpoint(x_id: str) -> Response:
        return Response()

    app.include_router(router, dependencies=[Depends(include_level)])
    for http in _served(app):
        assert http.get("/x/1").status_code == 200
    assert built, "FastAPI no longer builds handlers through get_route_handler"
    included = built[-1]
    assert {"dependant", "body_field", "dependency_overrides_provider"} <= set(included)
    assert [d.call for d in included["dependant"].dependencies] == [include_level]
    assert included["dependency_overrides_provider"] is app


def test_webapi_hot_routes_take_the_fast_path_and_the_others_do_not(
    serve: Serve, sqlite_store: JobStore, solved: list[str]
) -> None:
    sqlite_store.create_job(
        new_job(JobCreate.model_validate({"id": "j1", "taskDefinition": "t", "schedule": "0"}))
    )
    with serve() as http:
        assert http.get("/jobs/j1").status_code == 200
        assert http.put("/jobs/j1", json={"taskCount": 2}).status_code == 200
        body = {"id": "j2", "taskDefinition": "t", "schedule": "0"}
        assert http.post("/jobs", content=JSONReply(body).body, headers=JSON).status_code == 201
        assert http.delete("/jobs/j2").status_code == 200
        assert http.get("/jobs/nope").status_code == 404
        assert solved == []
        assert http.get("/jobs").status_code == 200
        assert http.get("/jobs/j1/runs").status_code == 200
        assert http.get("/me").status_code == 200
    assert solved == ["/jobs", "/jobs/j1/runs", "/me"]
