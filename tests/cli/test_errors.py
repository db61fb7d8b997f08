"""Failures end ``ecss`` with a non-zero exit code and the API's own message on stderr."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.cli.conftest import Ecss
from tests.servers import free_port


def test_unknown_job_exits_1_with_the_api_message(ecss: Ecss) -> None:
    for command in (
        ["get"],
        ["delete", "--yes"],
        ["suspend"],
        ["runs"],
        ["upcoming"],
        ["update", "--schedule", "0"],
    ):
        result = ecss("jobs", *command, "nope")
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stderr.strip() == "error: Job nope does not exist (HTTP 404)", command
        assert result.stdout == ""


def test_invalid_job_names_each_field(ecss: Ecss) -> None:
    result = ecss("jobs", "create", "--task-definition", "bad name!", "--schedule", "0", "--task-count", "99")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: Invalid job: ") and lines[0].endswith("(HTTP 400)")
    assert {line.split(":")[0].strip() for line in lines[1:]} == {"taskDefinition", "taskCount"}


def test_conflict_exits_1(ecss: Ecss, http: httpx.Client) -> None:
    http.post("/jobs", json={"taskDefinition": "t", "schedule": "0"})
    result = ecss("jobs", "create", "--task-definition", "t", "--schedule", "0")
    assert result.returncode == 1 and "Job t already exists (HTTP 409)" in result.stderr


def test_bad_preview_names_the_field(ecss: Ecss) -> None:
    result = ecss("preview", "0 0 0 * * 30 2")
    assert result.returncode == 1 and "\n  schedule: " in result.stderr and "never fires" in result.stderr
    result = ecss("preview", "0", "--timezone", "Mars/Olympus")
    assert result.returncode == 1 and "timezone:" in result.stderr


def test_unreachable_server_exits_3(ecss: Ecss) -> None:
    result = ecss("--url", f"http://127.0.0.1:{free_port()}", "jobs", "list")
    assert result.returncode == 3
    assert result.stderr.startswith("error: cannot reach http://127.0.0.1:")


def test_usage_errors_exit_2(ecss: Ecss) -> None:
    assert ecss("jobs", "frobnicate").returncode == 2
    assert ecss("jobs", "update", "t").returncode == 2  # nothing to change
    assert ecss("jobs", "list", "--output", "xml").returncode == 2
    result = ecss("jobs", "create", "--set", "noequals")
    assert result.returncode == 2 and "expected FIELD=VALUE" in result.stderr


def test_token_is_sent_as_a_bearer_and_never_shown(ecss: Ecss) -> None:
    """A recording HTTP server stands in for an API with authentication (its /me contract);
    the token comes from ECSS_TOKEN or --token and reaches the server as a bearer only."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") == "Bearer s3cret":
                body, status = b'{"name": "ci", "roles": ["read"], "authMode": "tokens"}', 200
            else:
                body, status = b'{"message": "Missing or bad token"}', 401
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        by_env = ecss("whoami", "-o", "json", env={"ECSS_URL": url, "ECSS_TOKEN": "s3cret"})
        by_option = ecss("--url", url, "--token", "s3cret", "whoami")
        refused = ecss("--url", url, "--token", "wrong", "whoami")
    finally:
        server.shutdown()
        server.server_close()
    assert by_env.returncode == 0 and json.loads(by_env.stdout)["roles"] == ["read"]
    assert by_option.returncode == 0 and "ci" in by_option.stdout
    assert refused.returncode == 1 and refused.stderr.strip() == "error: Missing or bad token (HTTP 401)"
    assert seen == ["Bearer s3cret", "Bearer s3cret", "Bearer wrong"]
    for result in (by_env, by_option, refused):
        assert "s3cret" not in result.stdout + result.stderr


def test_shell_completion(ecss: Ecss) -> None:
    script = ecss("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_ECSS_COMPLETE=complete_bash" in script.stdout
    words = ecss(env={"_ECSS_COMPLETE": "complete_bash", "COMP_WORDS": "ecss jobs su", "COMP_CWORD": "2"})
    assert words.stdout.split() == ["suspend"]
