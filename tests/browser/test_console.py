"""The console at /ui, driven in headless Chromium: what a user sees and does."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from common.models import LaunchFailure
from tests.browser.conftest import Console
from tests.cli.conftest import record_fire

WAIT = 20  # generous: the machine running make test is shared and loaded


def wait(driver: Any) -> WebDriverWait[Any]:
    """Waits that poll through re-renders: a route change replaces the elements read."""
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def text_of(driver: Any, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def open_hash(driver: Any, console: Console, fragment: str) -> None:
    """Load the console at a route (reloaded: a same-hash navigation would not re-render)."""
    target = f"{console.url}/ui/#{fragment}"
    same = driver.current_url == target
    driver.get(target)
    if same:
        driver.refresh()


def wait_text(driver: Any, css: str, text: str) -> None:
    try:
        wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    except Exception as exc:
        shown = [element.text for element in driver.find_elements(By.CSS_SELECTOR, css)]
        shown.append(driver.find_element(By.TAG_NAME, "body").text[:2000])
        shown.append(str(driver.get_log("browser")))
        raise AssertionError(f"{css} never showed {text!r}; it shows {shown}") from exc


def _choose(driver: Any, select_id: str, value: str) -> bool:
    """Pick an option; False (to be retried) if the page re-rendered under the call."""
    try:
        Select(driver.find_element(By.ID, select_id)).select_by_value(value)
    except StaleElementReferenceException:
        return False
    return True


def test_jobs_list(page: Any, console: Console, screenshot: Callable[[str], Path]) -> None:
    http = console.http
    http.post(
        "/jobs",
        json={
            "taskDefinition": "sleeper-task",
            "id": "list-sleeper",
            "schedule": "25 */5",
            "timezone": "Europe/Paris",
        },
    )
    http.post(
        "/jobs",
        json={
            "taskDefinition": "report-task",
            "id": "list-report",
            "schedule": "0 30 6 mon-fri",
            "suspended": True,
        },
    )
    http.post("/jobs", json={"taskDefinition": "consumer-task", "id": "list-consumer", "schedule": "*/10"})
    record_fire(
        console.store,
        "list-consumer",
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        tasks=[],
        failures=[LaunchFailure(reason="RESOURCE:CPU")],
        expected=1,
    )
    for index in range(20):
        http.post(
            "/jobs", json={"taskDefinition": "filler", "id": f"zz-filler-{index:02d}", "schedule": "0 0 4"}
        )

    open_hash(page, console, "/jobs")
    wait_text(page, 'tr[data-job="list-sleeper"] .next', "UTC")
    row = text_of(page, 'tr[data-job="list-sleeper"]')
    assert "every 5 minutes at second 25" in row and "25 */5" in row and "Europe/Paris" in row
    assert "never" in row
    wait_text(page, 'tr[data-job="list-report"] .next', "suspended")
    assert text_of(page, 'tr[data-job="list-report"] td:last-child') == "yes"
    assert "failed 2026-03-01 12:00:00 UTC" in text_of(page, 'tr[data-job="list-consumer"]')
    assert "Page 1 of 2" in text_of(page, ".pager")
    screenshot("jobs-list")

    page.find_element(By.LINK_TEXT, "Next →").click()
    wait_text(page, ".pager", "Page 2 of 2")
    assert page.find_elements(By.CSS_SELECTOR, 'tr[data-job="list-sleeper"]') == []

    search = page.find_element(By.ID, "filter-text")
    search.send_keys("sleeper", Keys.ENTER)
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job]")) == 1)
    assert text_of(page, "#jobs caption").startswith("1 of ")
    wait(page).until(lambda d: _choose(d, "filter-status", "failed"))
    wait_text(page, "#jobs tbody", "No jobs match.")
    page.find_element(By.ID, "filter-text").clear()
    page.find_element(By.ID, "filter-text").send_keys(Keys.ENTER)
    wait(page).until(
        lambda d: (
            [r.get_attribute("data-job") for r in d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")]
            == ["list-consumer"]
        )
    )


def test_create_with_a_validation_error_then_fix(
    page: Any, console: Console, screenshot: Callable[[str], Path]
) -> None:
    open_hash(page, console, "/new")
    form = wait(page).until(EC.presence_of_element_located((By.ID, "job-form")))
    for control in form.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
        assert page.execute_script("return arguments[0].labels.length", control) >= 1, control.get_attribute(
            "id"
        )
    # The task definition field has focus: the form is usable from the keyboard alone.
    page.switch_to.active_element.send_keys("bad name!", Keys.TAB)
    page.find_element(By.ID, "f-id").send_keys("created-in-browser")
    schedule = page.find_element(By.ID, "f-schedule")
    schedule.send_keys("61")
    wait_text(page, "#schedule-preview", "Not a valid schedule")
    schedule.clear()
    schedule.send_keys("25 */5")
    wait_text(page, "#schedule-preview", "every 5 minutes at second 25")
    fires = page.find_elements(By.CSS_SELECTOR, "#schedule-preview li")
    assert len(fires) == 5 and all(re.fullmatch(r"\S+:\d[05]:25\+00:00", li.text) for li in fires)
    page.find_element(By.ID, "f-timezone").send_keys("Asia/Kolkata")
    wait_text(page, "#schedule-preview", "(Asia/Kolkata)")
    page.find_element(By.ID, "save").click()

    wait_text(page, "#f-taskDefinition-error", "String should match pattern")
    assert page.find_element(By.ID, "f-taskDefinition").get_attribute("aria-invalid") == "true"
    assert text_of(page, "#f-schedule-error") == ""
    assert page.switch_to.active_element.get_attribute("id") == "f-taskDefinition"
    screenshot("job-form-errors")
    assert console.http.get("/jobs/created-in-browser").status_code == 404

    field = page.find_element(By.ID, "f-taskDefinition")
    field.clear()
    field.send_keys("sleeper-task")
    page.find_element(By.ID, "save").click()
    wait_text(page, "h1", "Job created-in-browser")
    job = console.http.get("/jobs/created-in-browser").json()
    assert (job["taskDefinition"], job["schedule"], job["timezone"]) == (
        "sleeper-task",
        "25 */5",
        "Asia/Kolkata",
    )
    assert "suspended" not in job


def test_edit(page: Any, console: Console) -> None:
    console.http.post(
        "/jobs", json={"taskDefinition": "t", "id": "edit-me", "schedule": "0 */7", "maxCount": 3}
    )
    open_hash(page, console, "/jobs/edit-me")
    wait(page).until(EC.element_to_be_clickable((By.ID, "edit"))).click()
    schedule = wait(page).until(EC.presence_of_element_located((By.ID, "f-schedule")))
    wait_text(page, "#schedule-preview", "every 7 minutes at second 0")
    schedule.clear()
    schedule.send_keys("15 0 3")
    page.find_element(By.ID, "f-maxCount").clear()
    page.find_element(By.ID, "f-taskCount").clear()
    page.find_element(By.ID, "f-taskCount").send_keys("60")
    page.find_element(By.ID, "save").click()
    wait_text(page, "#f-taskCount-error", "less than or equal to 50")
    page.find_element(By.ID, "f-taskCount").clear()
    page.find_element(By.ID, "f-taskCount").send_keys("2")
    page.find_element(By.ID, "save").click()
    wait_text(page, "#notice", "Job edit-me saved.")
    job = console.http.get("/jobs/edit-me").json()
    assert job["schedule"] == "15 0 3" and job["taskCount"] == 2 and "maxCount" not in job
    wait_text(page, "#upcoming", "every day at 03:00:15")


def test_suspend_and_resume(page: Any, console: Console) -> None:
    console.http.post("/jobs", json={"taskDefinition": "t", "id": "pause-me", "schedule": "*/30"})
    open_hash(page, console, "/jobs/pause-me")
    wait(page).until(EC.element_to_be_clickable((By.ID, "suspend"))).click()
    wait_text(page, "#notice", "Job pause-me suspended.")
    assert console.http.get("/jobs/pause-me").json()["suspended"] is True
    wait_text(page, "#upcoming", "None while suspended.")
    assert page.find_element(By.ID, "suspended-banner").is_displayed()
    page.find_element(By.ID, "resume").click()
    wait_text(page, "#notice", "Job pause-me resumed.")
    assert console.http.get("/jobs/pause-me").json()["suspended"] is False
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#upcoming li")) == 10)


def test_job_page_shows_run_history_and_failures_in_full(
    page: Any, console: Console, screenshot: Callable[[str], Path]
) -> None:
    console.http.post(
        "/jobs",
        json={"taskDefinition": "sleeper-task", "id": "history", "schedule": "0 */15", "taskCount": 3},
    )
    record_fire(
        console.store,
        "history",
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        tasks=["a1", "a2", "a3"],
        failures=[],
        expected=3,
    )
    detail = (
        "The cluster has no container instance with 4096 MiB of memory left "
        + "(needed 4096, largest free 2048) on any of the 2 instances of cluster ci"
    )
    record_fire(
        console.store,
        "history",
        datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
        tasks=["b1"],
        failures=[LaunchFailure(reason="RESOURCE:MEMORY", detail=detail, arn="arn:aws:ecs:us-east-1:1:ci/2")],
        expected=3,
    )
    open_hash(page, console, "/jobs/history")
    wait(page).until(EC.presence_of_element_located((By.ID, "runs-table")))
    rows = page.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")
    assert len(rows) == 2
    newest, oldest = rows[0].text, rows[1].text
    assert "2026-03-01 10:15:00 UTC" in newest and "partially_launched" in newest and "b1" in newest
    assert detail in newest and "arn:aws:ecs:us-east-1:1:ci/2" in newest
    assert "launched" in oldest and all(task in oldest for task in ("a1", "a2", "a3"))
    assert detail in text_of(page, ".failures")  # lastRunFailures, untruncated
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#upcoming li")) == 10)
    assert "every 15 minutes at second 0" in text_of(page, "#upcoming")
    screenshot("job-page")
    page.execute_script("document.getElementById('runs-title').scrollIntoView()")
    screenshot("run-history")


def test_run_now_is_hidden_without_the_api_route(page: Any, console: Console) -> None:
    """The Run now button follows the API's /spec: offered only where POST /jobs/{id}/runs is."""
    spec = console.http.get("/spec").json()
    has_route = any(
        re.fullmatch(r"/jobs/\{[^}]+\}/runs", p) and "post" in ops for p, ops in spec["paths"].items()
    )
    console.http.post("/jobs", json={"taskDefinition": "t", "id": "run-me", "schedule": "0"})
    open_hash(page, console, "/jobs/run-me")
    wait(page).until(EC.presence_of_element_located((By.ID, "edit")))
    assert bool(page.find_elements(By.ID, "run-now")) == has_route


def test_delete_asks_first(page: Any, console: Console) -> None:
    console.http.post("/jobs", json={"taskDefinition": "t", "id": "delete-me", "schedule": "0"})
    open_hash(page, console, "/jobs/delete-me")
    wait(page).until(EC.element_to_be_clickable((By.ID, "delete"))).click()
    dialog = page.find_element(By.ID, "confirm")
    assert dialog.is_displayed() and "Delete job delete-me?" in dialog.text
    assert page.switch_to.active_element.get_attribute("id") == "confirm-cancel"
    page.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(page).until(lambda d: not d.find_element(By.ID, "confirm").is_displayed())
    assert console.http.get("/jobs/delete-me").status_code == 200
    page.find_element(By.ID, "delete").click()
    wait(page).until(lambda d: d.find_element(By.ID, "confirm").is_displayed())
    wait(page).until(EC.element_to_be_clickable((By.ID, "confirm-ok"))).click()
    wait_text(page, "#notice", "Job delete-me deleted.")
    wait_text(page, "h1", "Jobs")
    assert console.http.get("/jobs/delete-me").status_code == 404
