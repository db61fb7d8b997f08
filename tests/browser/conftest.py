"""The console in a real headless browser: Debian's Chromium driven by Selenium through the
system chromedriver (never a downloaded browser), against the real webapi on 127.0.0.1.

Every request the browser makes is recorded (Chrome's performance log) and checked after each
test: none may leave the test server.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from common.bus.sqs import SQSEventBus
from common.config import AuthSettings, Settings, SQLiteSettings, SQSSettings, StoreSettings
from common.store.base import JobStore
from common.store.sqlite import SQLiteJobStore
from tests.conftest import aws_client
from tests.servers import MotoServer, ThreadedUvicorn
from webapi import create_app

CHROMIUM = os.environ.get("ECSS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ECSS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_SCREENSHOTS = "ECSS_UPDATE_SCREENSHOTS"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1366,820",
)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which(CHROMIUM) or shutil.which("chromium")
    driver = shutil.which(CHROMEDRIVER) or shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            f"no browser: these tests need Chromium ({CHROMIUM}) and chromedriver ({CHROMEDRIVER}); "
            "install Debian's chromium and chromium-driver (.ci/run does)"
        )
    return chromium, driver


@dataclass
class Console:
    """One API server and what the browser asked of it."""

    url: str
    store: JobStore
    http: httpx.Client
    requests: list[str] = field(default_factory=list)


def _serve(app: FastAPI) -> Iterator[ThreadedUvicorn]:
    with ThreadedUvicorn(app) as server:
        yield server


def _app(tmp: Path, moto: MotoServer, store: JobStore, auth: AuthSettings | None = None) -> FastAPI:
    name = f"t{uuid.uuid4().hex[:12]}"
    sqs = SQSSettings(queue_name=f"{name}-ops", dead_letter_queue_name=f"{name}-dlq", wait_seconds=1)
    settings = Settings(
        store=StoreSettings(sqlite=SQLiteSettings(path=tmp / "api.db")), sqs=sqs, auth=auth or AuthSettings()
    )
    bus = SQSEventBus.from_settings(sqs, client=aws_client(moto, "sqs"))
    return create_app(settings, store=store, bus=bus)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer) -> Iterator[Console]:
    _browser_paths()
    tmp = tmp_path_factory.mktemp("console")
    store = SQLiteJobStore(SQLiteSettings(path=tmp / "api.db"))
    for server in _serve(_app(tmp, moto, store)):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Console(url=server.url, store=store, http=http)
    store.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def browser_requests(driver: Any) -> list[str]:
    """URLs the browser requested since the last call (the performance log drains on read)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_local(urls: list[str], origin: str) -> None:
    strays = [
        url for url in urls if not (url.startswith(origin + "/") or url.startswith(("data:", "about:")))
    ]
    assert not strays, f"requests that left {origin}: {strays}"


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    """The browser on a fresh console tab; afterwards, every request it made is checked."""
    browser.get(console.url + "/ui/#/jobs")
    browser.execute_script("sessionStorage.clear()")
    browser_requests(browser)
    yield browser
    urls = browser_requests(browser)
    console.requests.extend(urls)
    assert_local(urls, console.url)
    # 4xx replies the app handles (a 400 shown in the form) are logged as 'network'; only
    # script errors count here.
    errors = [
        e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
    assert not errors, f"browser console errors: {errors}"


@pytest.fixture
def screenshot(browser: Any, tmp_path: Path) -> Callable[[str], Path]:
    """Save a PNG of the page; with ECSS_UPDATE_SCREENSHOTS=1 also into docs/screenshots."""

    def take(name: str) -> Path:
        target = tmp_path / f"{name}.png"
        assert browser.save_screenshot(str(target))
        data = target.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, "screenshot is empty"
        if os.environ.get(UPDATE_SCREENSHOTS):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, SCREENSHOTS / f"{name}.png")
        return target

    return take
