"""The tokens file: reloaded when it changes and on SIGHUP, refused when unusable at start;
``ecs-scheduler token create`` writes entries it accepts; production refuses to start open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from common.config import ConfigError, Settings
from tests.servers import MotoServer, component_env, free_port, stop_process, wait_for_http
from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens
from webapi import create_app

OLD, NEW = "old-token-aaaaaaaaaaaa", "new-token-bbbbbbbbbbbb"  # same length: same file size


def _status(http: httpx.Client, token: str) -> int:
    return http.get("/jobs", headers=bearer(token)).status_code


def test_a_changed_file_is_reloaded_without_restart(serve: Serve, tmp_path: Path) -> None:
    path = write_tokens(tmp_path / "tokens.yaml", {OLD: {"name": "a", "roles": ["read"]}})
    with serve(auth=tokens_auth(path)) as http:
        assert (_status(http, OLD), _status(http, NEW)) == (200, 401)
        write_tokens(path, {NEW: {"name": "renamed", "roles": ["read"]}})
        assert (_status(http, OLD), _status(http, NEW)) == (401, 200)
        path.write_text("tokens: [{name: broken")  # a bad edit keeps the last good tokens
        assert (_status(http, OLD), _status(http, NEW)) == (401, 200)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file"),
        ("tokens: [{name: x, sha256: abc, roles: [read]}]", "sha256"),
        ("tokens: [{name: x, sha256: " + "a" * 64 + ", roles: [root]}]", "roles"),
        ("tokens: [{name: x, sha256: " + "a" * 64 + ", roles: [read], scope: all}]", "scope"),
    ],
)
def test_an_unusable_file_stops_the_app_from_being_built(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "tokens.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=reason):
        create_app(Settings(auth=tokens_auth(path)))


def test_token_create_prints_a_token_the_file_accepts(serve: Serve, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ecs_scheduler", "token", "create", "--name", "ci", "--role", "read",
         "--task-definition", "data-*"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    token = result.stdout.split("store it now): ", 1)[1].split()[0]
    entries = yaml.safe_load(result.stdout.split("\n\n", 1)[1])
    assert entries == [
        {"name": "ci", "sha256": entries[0]["sha256"], "roles": ["read"], "taskDefinitions": ["data-*"]}
    ]
    assert token not in result.stdout.split("\n\n", 1)[1]
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": entries}))
    with serve(auth=tokens_auth(path)) as http:
        assert http.get("/me", headers=bearer(token)).json()["taskDefinitions"] == ["data-*"]
        assert http.post("/jobs", json={}, headers=bearer(token)).status_code == 403


# --- the webapi process ---------------------------------------------------------------------


def _webapi(moto: MotoServer, tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    extra = {"COMPONENT_NAME": "webapi", "WEBAPI__PORT": str(port), "SQS__QUEUE_NAME": f"q{port}", **env}
    with (tmp_path / "webapi.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler"],
            env=component_env(moto=moto, sqlite_path=tmp_path / "p.db", extra=extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def test_sighup_reloads_the_tokens_file(moto: MotoServer, tmp_path: Path) -> None:
    """The file is rewritten with the same size and its mtime put back, so only SIGHUP can
    tell the process it changed."""
    path = write_tokens(tmp_path / "tokens.yaml", {OLD: {"name": "a", "roles": ["read"]}})
    process, url = _webapi(moto, tmp_path, AUTH__MODE="tokens", AUTH__TOKENS_FILE=str(path))
    try:
        wait_for_http(f"{url}/", process=process)
        with httpx.Client(base_url=url, timeout=10) as http:
            assert (_status(http, OLD), _status(http, NEW)) == (200, 401)
            before = os.stat(path)
            write_tokens(path, {NEW: {"name": "a", "roles": ["read"]}})
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
            assert os.stat(path).st_size == before.st_size
            assert (_status(http, OLD), _status(http, NEW)) == (200, 401)
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while _status(http, NEW) != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (_status(http, OLD), _status(http, NEW)) == (401, 200)
    finally:
        assert stop_process(process) == 0


def test_production_refuses_to_start_in_tokens_mode_without_credentials(
    moto: MotoServer, tmp_path: Path
) -> None:
    process, _ = _webapi(moto, tmp_path, RUN_ENV="production", STORE__BACKEND="sqlite")
    try:
        process.wait(timeout=60)
    finally:
        stop_process(process)
    assert process.returncode == 2
    output = (tmp_path / "webapi.log").read_text()
    assert "auth.mode is 'tokens' but no credentials are configured" in output
    assert "AUTH__TOKENS_FILE" in output
