"""The console is usable from the keyboard and its text keeps WCAG AA contrast (4.5:1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from common.models import LaunchFailure
from tests.browser.conftest import Console
from tests.cli.conftest import record_fire

# Contrast of every text element against the first opaque background behind it.
CONTRAST = """
function rgb(value) { return (value.match(/[\\d.]+/g) || []).map(Number); }
function luminance([r, g, b]) {
  const c = [r, g, b].map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function background(node) {
  for (; node; node = node.parentElement) {
    const color = rgb(getComputedStyle(node).backgroundColor);
    if (color.length === 3 || color[3] === 1) return color.slice(0, 3);
  }
  return [255, 255, 255];
}
const poor = [];
for (const node of document.querySelectorAll("body *")) {
  const own = [...node.childNodes].some((child) => child.nodeType === 3 && child.textContent.trim());
  if (!own || !node.getClientRects().length) continue;
  const fg = luminance(rgb(getComputedStyle(node).color).slice(0, 3));
  const bg = luminance(background(node));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  const text = node.textContent.slice(0, 40);
  if (ratio < 4.5) poor.push(node.tagName + "." + node.className + " " + ratio.toFixed(2) + ": " + text);
}
return poor;
"""


def test_keyboard_only_from_the_list_to_a_job(page: Any, console: Console) -> None:
    console.http.post("/jobs", json={"taskDefinition": "t", "id": "aaa-keyboard", "schedule": "0 */5"})
    page.get(console.url + "/ui/#/jobs")
    page.refresh()
    wait = WebDriverWait(page, 10)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-job="aaa-keyboard"]')))
    body = page.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert page.switch_to.active_element.text == "Skip to content"
    page.switch_to.active_element.send_keys(Keys.ENTER)
    assert page.switch_to.active_element.get_attribute("id") == "main"
    for _ in range(12):  # New job, filter, status, Apply, then the first job's link
        page.switch_to.active_element.send_keys(Keys.TAB)
        if page.switch_to.active_element.text == "aaa-keyboard":
            break
    assert page.switch_to.active_element.text == "aaa-keyboard"
    page.switch_to.active_element.send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "h1"), "Job aaa-keyboard"))
    page.switch_to.active_element.send_keys(Keys.TAB)
    assert page.switch_to.active_element.get_attribute("id") == "edit"


def test_text_contrast_is_at_least_aa(page: Any, console: Console) -> None:
    console.http.post(
        "/jobs", json={"taskDefinition": "t", "id": "contrast", "schedule": "0 */5", "suspended": True}
    )
    record_fire(
        console.store,
        "contrast",
        datetime(2026, 3, 1, tzinfo=UTC),
        tasks=["a"],
        failures=[LaunchFailure(reason="RESOURCE:CPU")],
        expected=2,
    )
    wait = WebDriverWait(page, 10)
    for fragment, ready in (
        ("/jobs", "#jobs tbody tr[data-job]"),
        ("/jobs/contrast", "#runs-table"),
        ("/new", "#job-form"),
    ):
        page.get(f"{console.url}/ui/#{fragment}")
        page.refresh()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ready)))
        assert page.execute_script(CONTRAST) == [], fragment
