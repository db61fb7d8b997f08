"""The console with authentication on (AUTH__MODE=tokens and a tokens file), and the promise
that it never leaves the server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from common.config import AuthSettings, SQLiteSettings
from common.store.sqlite import SQLiteJobStore
from tests.browser.conftest import Console, _app, _serve, assert_local, browser_requests
from tests.servers import MotoServer
from tests.webapi.conftest import bearer, write_tokens

READER, ADMIN = "reader-token-1", "admin-token-2"
URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


@pytest.fixture(scope="module")
def tokens_console(
    tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, console: Console
) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("tokens-console")
    store = SQLiteJobStore(SQLiteSettings(path=tmp / "api.db"))
    tokens = write_tokens(
        tmp / "tokens.yaml",
        {READER: {"name": "viewer", "roles": ["read"]}, ADMIN: {"name": "ops", "roles": ["admin"]}},
    )
    app = _app(tmp, moto, store, AuthSettings(mode="tokens", tokens_file=tokens))
    for server in _serve(app):
        with httpx.Client(base_url=server.url, timeout=30, headers=bearer(ADMIN)) as http:
            yield Console(url=server.url, store=store, http=http)
    store.close()


def test_token_prompt_and_read_only_token_sees_no_actions(
    browser: Any, tokens_console: Console, screenshot: Callable[[str], Path]
) -> None:
    console = tokens_console
    assert console.http.post(
        "/jobs", json={"taskDefinition": "t", "id": "guarded", "schedule": "0 */5"}
    ).is_success
    with httpx.Client(base_url=console.url, timeout=30) as anonymous:
        assert anonymous.get("/ui/").status_code == 200  # the shell is public: it holds no job data
        assert anonymous.get("/ui/static/app.js").status_code == 200
        for path in ("/jobs", "/jobs/guarded/upcoming", "/schedules/preview?schedule=0", "/me"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.get("/jobs/guarded/upcoming", headers=bearer(READER)).status_code == 200
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
    wait.until(EC.text_to_be_present_in_element((By.ID, "notice"), "started for job guarded."))
    (run,) = console.store.list_runs("guarded")  # the real POST /jobs/{id}/runs (scheduld picks it up)
    assert (run.trigger, run.principal, run.status) == ("manual", "ops", "requested")
    assert f"Run {run.run_id} started" in browser.find_element(By.ID, "notice").text
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
