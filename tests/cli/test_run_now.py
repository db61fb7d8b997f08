"""``ecss jobs run`` against the manual-runs contract of issue #15 (POST /jobs/{id}/runs, 202,
``{"id", "link"}``). Until webapi has that route, a recording HTTP server on 127.0.0.1 stands
in for it; the real route's end-to-end test comes with #15."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.cli.conftest import Ecss


@pytest.fixture
def runs_api() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    calls: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            calls.append((self.path, body))
            if self.path == "/jobs/nightly/runs":
                status, reply = (
                    202,
                    {"id": "nightly@manual-1", "link": {"href": "/jobs/nightly/runs/nightly@manual-1"}},
                )
            else:
                status, reply = 404, {"message": "Job nope does not exist"}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def test_run_posts_the_contract_body_and_prints_the_run(ecss: Ecss, runs_api: tuple[str, list[Any]]) -> None:
    url, calls = runs_api
    plain = ecss("--url", url, "jobs", "run", "nightly")
    counted = ecss("--url", url, "jobs", "run", "nightly", "--task-count", "3", "-o", "json")
    assert plain.returncode == 0 and plain.stdout.strip() == "started run nightly@manual-1 of job nightly"
    assert counted.returncode == 0 and json.loads(counted.stdout)["id"] == "nightly@manual-1"
    assert calls == [("/jobs/nightly/runs", {}), ("/jobs/nightly/runs", {"taskCount": 3})]
    missing = ecss("--url", url, "jobs", "run", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: Job nope does not exist (HTTP 404)"
