"""The console with authentication on, and the promise that it never leaves the server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from common.config import SQLiteSettings
from common.store.sqlite import SQLiteJobStore
from tests.browser.conftest import Console, _app, _serve, assert_local, browser_requests
from tests.servers import MotoServer

READER, ADMIN = "reader-token-1", "admin-token-2"
MANUAL_RUNS: list[tuple[str, Any]] = []
URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


def _stand_in_me(app: FastAPI) -> None:
    """A stand-in for GET /me of the authentication work (issue #10), with its contract
    ({name, roles, authMode}): 401 without a known bearer token."""

    async def me(request: Request) -> JSONResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token == READER:
            return JSONResponse({"name": "viewer", "roles": ["read"], "authMode": "tokens"})
        if token == ADMIN:
            return JSONResponse({"name": "ops", "roles": ["admin"], "authMode": "tokens"})
        return JSONResponse({"message": "Missing or unknown bearer token"}, status_code=401)

    app.add_api_route("/me", me, methods=["GET"])


def _stand_in_manual_runs(app: FastAPI, calls: list[tuple[str, Any]]) -> None:
    """A stand-in for POST /jobs/{id}/runs of issue #15 (202, ``{"id", "link"}``), so the
    console's Run now button is exercised against that contract before the route exists."""

    async def run_now(job_id: str, request: Request) -> JSONResponse:
        calls.append((job_id, await request.json()))
        run = f"{job_id}@manual-{len(calls)}"
        return JSONResponse({"id": run, "link": {"href": f"/jobs/{job_id}/runs/{run}"}}, status_code=202)

    app.add_api_route("/jobs/{job_id}/runs", run_now, methods=["POST"])


@pytest.fixture(scope="module")
def tokens_console(
    tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, console: Console
) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("tokens-console")
    store = SQLiteJobStore(SQLiteSettings(path=tmp / "api.db"))
    app = _app(tmp, moto, store)
    _stand_in_me(app)
    _stand_in_manual_runs(app, MANUAL_RUNS)
    for server in _serve(app):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Console(url=server.url, store=store, http=http)
    store.close()


def test_token_prompt_and_read_only_token_sees_no_actions(
    browser: Any, tokens_console: Console, screenshot: Callable[[str], Path]
) -> None:
    console = tokens_console
    console.http.post("/jobs", json={"taskDefinition": "t", "id": "guarded", "schedule": "0 */5"})
    browser.get(console.url + "/ui/#/jobs/guarded")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    browser_requests(browser)
    wait = WebDriverWait(browser, 10)
    token = wait.until(EC.presence_of_element_located((By.ID, "token")))
    assert token.get_attribute("type") == "password"
    assert browser.find_element(By.CSS_SELECTOR, "label[for=token]").text == "API token"
    token.send_keys(READER + "\n")
    wait.until(EC.text_to_be_present_in_element((By.ID, "whoami"), "viewer (read)"))
    assert browser.execute_script("return sessionStorage.getItem('ecss-token')") == READER
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "h1"), "Job guarded"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#upcoming li")) == 10)
    assert browser.find_elements(By.CSS_SELECTOR, "#job-actions button, #job-actions a") == []
    assert browser.find_element(By.ID, "job-actions").text == "Your token may only read this job."
    assert not browser.find_element(By.ID, "nav-new").is_displayed()
    screenshot("read-only")
    browser.get(console.url + "/ui/#/jobs")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-job="guarded"]')))
    assert browser.find_elements(By.ID, "new-job") == []

    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait.until(EC.presence_of_element_located((By.ID, "token"))).send_keys(ADMIN + "\n")
    wait.until(EC.text_to_be_present_in_element((By.ID, "whoami"), "ops (admin)"))
    assert wait.until(EC.presence_of_element_located((By.ID, "new-job"))).is_displayed()

    browser.get(console.url + "/ui/#/jobs/guarded")
    wait.until(EC.element_to_be_clickable((By.ID, "run-now"))).click()
    wait.until(
        EC.text_to_be_present_in_element((By.ID, "notice"), "Run guarded@manual-1 started for job guarded.")
    )
    assert MANUAL_RUNS == [("guarded", {})]
    assert_local(browser_requests(browser), console.url)


def test_no_external_url_in_any_page_or_asset(console: Console) -> None:
    assert console.http.get("/ui").headers["location"].endswith("/ui/")
    page = console.http.get("/ui/")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text)
    assert sorted(assets) == ["/ui/static/app.css", "/ui/static/app.js"]
    for path in ["/ui/", *assets]:
        reply = console.http.get(path)
        assert reply.status_code == 200, path
        assert URL.findall(reply.text) == [], f"{path} names an external URL"
    assert console.http.get("/ui/static/../app.py").status_code == 404
    assert console.http.get("/ui/static/missing.js").status_code == 404
