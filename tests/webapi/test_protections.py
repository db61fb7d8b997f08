"""Protections around the routes: security headers, CORS, allowed hosts; no route outside the
anonymous list can be served without ``authorize``; roles set per endpoint; every domain error
has a 4xx/503 reply."""

from __future__ import annotations

import inspect
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

import common.errors
from common.bus.base import EventBus
from common.config import CORSSettings, Settings, WebAPISettings
from common.errors import ConcurrentUpdateError, SchedulerError
from common.store.base import Store
from tests.servers import ThreadedUvicorn
from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens
from webapi import create_app
from webapi.app import API_ROUTERS, _routes_of
from webapi.auth import authorize, check_protected, requires
from webapi.errors import status_of


@pytest.mark.parametrize(
    "path", ["/", "/jobs", "/jobs/nope", "/spec", "/docs", "/static-offline-docs/swagger-ui.css"]
)
def test_every_reply_carries_nosniff_and_api_replies_no_store(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    if path.startswith("/static-offline-docs"):
        assert response.headers.get("cache-control") != "no-store"
    else:
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("origins", "allowed"), [([], False), (["https://console.example"], True), (["*"], True)]
)
def test_cors_allows_only_configured_origins(serve: Serve, origins: list[str], allowed: bool) -> None:
    preflight = {
        "Origin": "https://console.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with serve(webapi=WebAPISettings(cors=CORSSettings(allow_origins=origins))) as http:
        response = http.options("/jobs/x", headers=preflight)
        got = response.headers.get("access-control-allow-origin")
        assert (got in {"https://console.example", "*"}) == allowed
        if allowed:
            assert "authorization" in response.headers["access-control-allow-headers"].lower()
        simple = http.get("/jobs", headers={"Origin": "https://console.example"})
        assert ("access-control-allow-origin" in simple.headers) == allowed


def test_allowed_hosts_refuses_other_host_headers(serve: Serve) -> None:
    with serve(webapi=WebAPISettings(allowed_hosts=["scheduler.internal", "127.0.0.1"])) as http:
        assert http.get("/jobs").status_code == 200
        assert http.get("/jobs", headers={"Host": "scheduler.internal"}).status_code == 200
        assert http.get("/jobs", headers={"Host": "attacker.example"}).status_code == 400


def test_an_unprotected_route_stops_the_app(settings: Settings) -> None:
    app = create_app(settings)
    leak = APIRouter()

    @leak.get("/leak")
    async def leaked() -> dict[str, str]:
        return {}

    app.include_router(leak)
    with pytest.raises(RuntimeError, match="/leak is neither behind webapi.auth.authorize"):
        check_protected(app)


def test_every_api_route_is_first_in_the_apps_own_list_behind_authorize(settings: Settings) -> None:
    """No included router: a request walks one flat list, the busy API routes first."""
    app = create_app(settings)
    api_routes = [route for router in API_ROUTERS for route in router.routes]
    assert app.router.routes[: len(api_routes)] == api_routes
    assert all(isinstance(route, APIRoute) for route in api_routes)
    assert all(any(dep.call is authorize for dep in route.dependant.dependencies) for route in api_routes)
    assert all(isinstance(route, (Route, Mount)) for route in app.router.routes)


def test_a_router_with_routers_of_its_own_is_refused() -> None:
    nested, inner = APIRouter(), APIRouter()

    @inner.get("/inner")
    async def inner_route() -> dict[str, str]:
        return {}

    nested.include_router(inner)
    with pytest.raises(TypeError, match="only routes are served this way"):
        _routes_of(nested)


def test_a_route_can_require_the_run_role(
    tmp_path: Path, settings: Settings, sqlite_store: Store, sqs_bus: EventBus
) -> None:
    tokens = {
        "runner-token-000000": {"name": "runner", "roles": ["run"]},
        "writer-token-000000": {"name": "writer", "roles": ["read", "write"]},
    }
    app = create_app(
        settings.model_copy(update={"auth": tokens_auth(write_tokens(tmp_path / "t.yaml", tokens))}),
        store=sqlite_store,
        bus=sqs_bus,
    )
    runs = APIRouter()

    @runs.post("/jobs/{job_id}/run")
    @requires("run")
    async def run_now(job_id: str) -> dict[str, str]:
        return {"id": job_id}

    app.include_router(runs, dependencies=[Depends(authorize)])
    check_protected(app)
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/jobs/j/run", headers=bearer("runner-token-000000")).status_code == 200
        denied = http.post("/jobs/j/run", headers=bearer("writer-token-000000"))
        assert denied.status_code == 403 and "'run' role is needed" in denied.json()["message"]
        assert http.get("/jobs", headers=bearer("runner-token-000000")).status_code == 403


DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(common.errors, inspect.isclass)
    if issubclass(cls, SchedulerError) and cls is not SchedulerError
]


@pytest.mark.parametrize("error", DOMAIN_ERRORS, ids=lambda cls: cls.__name__)
def test_every_domain_error_maps_to_a_client_error_or_503(error: type[SchedulerError]) -> None:
    instance = error.__new__(error)
    status = status_of(instance)
    assert 400 <= status < 500 or status == 503


def test_a_concurrent_update_is_409_not_500(
    client: httpx.Client, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite serialises writes and never loses this race; Elasticsearch does, after its own
    retries. The store's update is replaced to raise as that store would."""
    assert client.post("/jobs", json={"taskDefinition": "t", "schedule": "0"}).status_code == 201

    def lose_the_race(job_id: str, change: object) -> None:
        raise ConcurrentUpdateError(job_id)

    monkeypatch.setattr(sqlite_store, "update_job", lose_the_race)
    response = client.put("/jobs/t", json={"suspended": True})
    assert response.status_code == 409
    assert response.json() == {"message": "Job t was changed concurrently"}
