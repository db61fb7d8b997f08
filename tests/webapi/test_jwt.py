"""OIDC bearer JWTs: keys generated here, published as a JWKS by an HTTP server on 127.0.0.1
(or in a file), tokens signed with them and sent to the real app over HTTP."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from common.config import AuthSettings, JWTSettings
from tests.webapi.conftest import Serve, bearer

ISSUER = "https://idp.example.test/"
AUDIENCE = "ecs-scheduler"


@contextlib.contextmanager
def jwks_server(jwks: dict[str, Any], directory: Path) -> Iterator[str]:
    """A JWKS document served over HTTP on 127.0.0.1 (a plain static file server); its URL."""
    (directory / "jwks.json").write_text(json.dumps(jwks))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {
        kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2", "rogue")
    }


def _jwks(keys: dict[str, rsa.RSAPrivateKey]) -> dict[str, Any]:
    published = []
    for kid in ("k1", "k2"):  # "rogue" is never published
        jwk = RSAAlgorithm.to_jwk(keys[kid].public_key(), as_dict=True)
        published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": published}


def _token(keys: dict[str, rsa.RSAPrivateKey], kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, keys[kid], algorithm="RS256", headers={"kid": kid})


def _auth(**jwt_settings: Any) -> AuthSettings:
    settings = JWTSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        roles_claim="realm_access.roles",
        role_mapping={"scheduler-operators": ["read", "write"]},
        task_definitions_claim="ecss_task_definitions",
        leeway_seconds=5,
        **jwt_settings,
    )
    return AuthSettings(mode="tokens", jwt=settings)


@pytest.fixture(params=["jwks_url", "jwks_file"])
def http(
    request: pytest.FixtureRequest, serve: Serve, keys: dict[str, rsa.RSAPrivateKey], tmp_path: Path
) -> Iterator[httpx.Client]:
    if request.param == "jwks_file":
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(_jwks(keys)))
        with serve(auth=_auth(jwks_file=path)) as client:
            yield client
        return
    with jwks_server(_jwks(keys), tmp_path) as url, serve(auth=_auth(jwks_url=url)) as client:
        yield client  # the good cases can only pass with the keys fetched from jwks.url


ROLES = {"realm_access": {"roles": ["read"]}}


@pytest.mark.parametrize(
    ("case", "make", "status"),
    [
        ("good", lambda k: _token(k, **ROLES), 200),
        ("second key", lambda k: _token(k, kid="k2", **ROLES), 200),
        ("expired", lambda k: _token(k, exp=int(time.time()) - 60, **ROLES), 401),
        ("expired within leeway", lambda k: _token(k, exp=int(time.time()) - 2, **ROLES), 200),
        ("wrong audience", lambda k: _token(k, aud="another-api", **ROLES), 401),
        ("wrong issuer", lambda k: _token(k, iss="https://evil.example/", **ROLES), 401),
        ("unknown key", lambda k: _token(k, kid="rogue", **ROLES), 401),
        (
            "published kid, other key",
            lambda k: jwt.encode(
                {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60, **ROLES},
                k["rogue"],
                algorithm="RS256",
                headers={"kid": "k1"},
            ),
            401,
        ),
        ("no roles", lambda k: _token(k), 403),
        ("not a JWT", lambda k: "a.b.c", 401),
    ],
)
def test_jwt_cases(
    http: httpx.Client, keys: dict[str, rsa.RSAPrivateKey], case: str, make: Any, status: int
) -> None:
    response = http.get("/jobs", headers=bearer(make(keys)))
    assert response.status_code == status, case
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_jwt_roles_mapping_and_scope_claim(http: httpx.Client, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    token = _token(
        keys, realm_access={"roles": ["scheduler-operators", "unrelated"]}, ecss_task_definitions=["data-*"]
    )
    assert http.get("/me", headers=bearer(token)).json() == {
        "name": "jwt:alice",
        "roles": ["read", "write"],
        "taskDefinitions": ["data-*"],
        "allowCommandOverride": False,
        "authMode": "tokens",
    }
    assert (
        http.post(
            "/jobs", json={"taskDefinition": "web-a", "schedule": "0"}, headers=bearer(token)
        ).status_code
        == 403
    )
    assert (
        http.post(
            "/jobs", json={"taskDefinition": "data-a", "schedule": "0"}, headers=bearer(token)
        ).status_code
        == 201
    )
