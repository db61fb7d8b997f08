"""``FastPathRoute`` (webapi/fastpath.py), webapi's one shortcut: it must run every dependency
FastAPI would (app-, include-, router- and endpoint-level, each once, in order), answer as
FastAPI's own handler does, leave to FastAPI's handler every route where FastAPI has more to
do, and these tests fail if the FastAPI behaviour it reads changes.

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
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
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


def _things(route_class: type[APIRoute]) -> APIRouter:
    """The same endpoints on either route class; dependencies at every level FastAPI has
    (the app and the inclusion add theirs), one of them used twice."""
    router = APIRouter(route_class=route_class, dependencies=[Depends(router_level)])

    @router.get("/{thing_id}")
    async def get_thing(
        thing_id: str,
        request: Request,
        first: Annotated[str, Depends(shared)],
        again: Annotated[str, Depends(shared)],
    ) -> Response:
        return JSONReply({"id": thing_id, "first": first, "again": again, "path": request.url.path})

    @router.get("")
    async def list_things(
        count: Annotated[int, Query(ge=1, le=5)] = 2, tag: Annotated[list[str] | None, Query()] = None
    ) -> Response:
        return JSONReply({"count": count, "tag": tag})

    @router.get("/{thing_id}/model")
    async def thing_model(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @router.get("/{thing_id}/header")
    async def thing_header(thing_id: str, x_thing: Annotated[str, Header()]) -> Response:
        return JSONReply({"id": thing_id, "header": x_thing})

    return router


Served = tuple[httpx.Client, list[str], FastAPI]


@pytest.fixture
def served() -> Iterator[Served]:
    """``/fast/...`` served by FastPathRoute, ``/plain/...`` by FastAPI's APIRoute."""
    app = FastAPI(dependencies=[Depends(app_level)])
    app.include_router(_things(FastPathRoute), prefix="/fast", dependencies=[Depends(include_level)])
    app.include_router(_things(APIRoute), prefix="/plain", dependencies=[Depends(include_level)])
    seen: list[str] = []
    app.state.seen = seen
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http, seen, app


def test_fast_path_runs_every_level_of_dependency_once_in_fastapis_order(
    served: Served, solved: list[str]
) -> None:
    http, seen, _ = served
    fast = http.get("/fast/a%20b")
    assert (seen, solved) == (["app", "include", "router", "route", "shared"], [])
    seen.clear()
    plain = http.get("/plain/a%20b")
    assert (seen, solved) == (["app", "include", "router", "route", "shared"], ["/plain/a b"])
    assert fast.status_code == plain.status_code == 200
    assert fast.json() == {**plain.json(), "path": "/fast/a b"}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?count=3",
        "?count=5&tag=a&tag=b",
        "?count=9",
        "?count=x",
        "?count=0&tag=a",
        "?tag=",
        "?count=2&count=3",
    ],
)
def test_fast_path_validates_query_parameters_as_fastapi_does(
    served: Served, solved: list[str], query: str
) -> None:
    http, _, _ = served
    fast, plain = http.get(f"/fast{query}"), http.get(f"/plain{query}")
    assert fast.status_code == plain.status_code
    assert fast.json() == plain.json()
    assert solved == ["/plain"]


def test_routes_with_more_to_do_get_fastapis_handler(served: Served, solved: list[str]) -> None:
    """A model to serialise, a header to validate: FastAPI's handler, dependencies included."""
    http, seen, _ = served
    assert http.get("/fast/x/model").json() == {"id": "x"}
    assert http.get("/fast/x/header", headers={"X-Thing": "h"}).json() == {"id": "x", "header": "h"}
    assert http.get("/fast/x/header").status_code == 422
    assert solved == ["/fast/x/model", "/fast/x/header", "/fast/x/header"]
    assert seen.count("router") == 3


def test_dependency_overrides_send_requests_to_fastapis_handler(served: Served, solved: list[str]) -> None:
    http, seen, app = served

    async def replacement() -> str:
        seen.append("replacement")
        return "replacement"

    app.dependency_overrides[router_level] = replacement
    try:
        assert http.get("/fast/x").status_code == 200
    finally:
        app.dependency_overrides.clear()
    assert "replacement" in seen and "router" not in seen
    assert solved == ["/fast/x"]


def test_fastapi_builds_each_included_route_handler_around_its_effective_dependant() -> None:
    """The contract FastPathRoute reads: FastAPI's handler closes over ``dependant`` (with
    the include-level dependencies in it), ``body_field`` and ``dependency_overrides_provider``."""
    built: list[dict[str, Any]] = []

    class Recording(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()
            built.append(inspect.getclosurevars(handler).nonlocals)
            return handler

    app = FastAPI()
    router = APIRouter(route_class=Recording)

    @router.get("/x/{x_id}")
    async def endpoint(x_id: str) -> Response:
        return Response()

    app.include_router(router, dependencies=[Depends(include_level)])
    app.state.seen = []
    with ThreadedUvicorn(app) as server:
        assert httpx.get(f"{server.url}/x/1").status_code == 200
    assert built, "FastAPI no longer builds handlers through get_route_handler"
    included = built[-1]
    assert {"dependant", "body_field", "dependency_overrides_provider"} <= set(included)
    assert [d.call for d in included["dependant"].dependencies] == [include_level]
    assert included["dependency_overrides_provider"] is app


def test_webapi_job_routes_take_the_fast_path(
    serve: Serve, sqlite_store: JobStore, solved: list[str]
) -> None:
    job = {"id": "j1", "taskDefinition": "t", "schedule": "0"}
    sqlite_store.create_job(new_job(JobCreate.model_validate(job)))
    with serve() as http:
        assert http.get("/jobs/j1").status_code == 200
        assert http.get("/jobs", params={"count": 5}).status_code == 200
        assert http.get("/jobs/j1/runs").status_code == 200
        assert http.put("/jobs/j1", json={"taskCount": 2}).status_code == 200
        body = {"id": "j2", "taskDefinition": "t", "schedule": "0"}
        assert http.post("/jobs", content=JSONReply(body).body, headers=JSON).status_code == 201
        assert http.delete("/jobs/j2").status_code == 200
        assert http.get("/jobs/nope").status_code == 404
        assert solved == []
        assert http.get("/me").status_code == 200  # returns a model: FastAPI serialises it
    assert solved == ["/me"]
