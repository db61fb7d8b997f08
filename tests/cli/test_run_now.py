"""``ecss jobs run`` against the real POST /jobs/{id}/runs (202, ``{"id", "link"}``): the run is
recorded as requested for the scheduld leader to launch; no scheduld runs here."""

from __future__ import annotations

import json

import httpx

from common.store.base import RunHistory
from tests.cli.conftest import Ecss

JSON = {"Content-Type": "application/json"}


def test_run_requests_a_manual_run_and_prints_it(
    ecss: Ecss, http: httpx.Client, sqlite_store: RunHistory
) -> None:
    created = http.post("/jobs", headers=JSON, json={"taskDefinition": "nightly", "schedule": "0 0 2"})
    assert created.status_code == 201
    plain = ecss("jobs", "run", "nightly")
    counted = ecss("jobs", "run", "nightly", "--task-count", "3", "-o", "json")
    assert plain.returncode == 0, plain.stderr
    assert counted.returncode == 0, counted.stderr
    runs = {run.run_id: run for run in sqlite_store.list_runs("nightly")}
    first = plain.stdout.strip().removeprefix("started run ").removesuffix(" of job nightly")
    second = json.loads(counted.stdout)["id"]
    assert sorted(runs) == sorted([first, second])
    assert all(run.trigger == "manual" and run.status == "requested" for run in runs.values())
    assert runs[second].task_count == 3 and runs[first].task_count is None
    missing = ecss("jobs", "run", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: Job nope does not exist (HTTP 404)"
