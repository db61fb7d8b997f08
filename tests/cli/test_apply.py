"""Jobs as code: ``ecss apply`` and ``ecss export`` against the running API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from common.models import LaunchFailure
from common.store.base import JobStore
from tests.cli.conftest import Ecss, record_fire

JOBS = """\
managedBy: team-data
jobs:
  - taskDefinition: sleeper-task
    schedule: "? */5"
    timezone: Europe/Paris
  - id: nightly
    taskDefinition: sleeper-task
    schedule: "0 0 3"
    scheduleStart: 2030-01-01T00:00:00
    taskCount: 2
    overrides:
      - containerName: sleeper-container
        environment: {SLEEP_SECONDS: "10"}
"""


def _write(tmp_path: Path, text: str, name: str = "jobs.yaml") -> str:
    (tmp_path / name).write_text(text)
    return name


def test_apply_creates_then_changes_nothing(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    name = _write(tmp_path, JOBS)
    dry = ecss("apply", "-f", name, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ create sleeper-task" in dry.stdout and "+ create nightly" in dry.stdout
    assert dry.stdout.splitlines()[-1] == "Plan (dry run): 2 to create, 0 to update, 0 to delete, 0 unchanged"
    assert http.get("/jobs").json()["jobs"] == []

    first = ecss("apply", "-f", name)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "Applied: 2 to create, 0 to update, 0 to delete, 0 unchanged"
    nightly = http.get("/jobs/nightly").json()
    assert nightly["taskCount"] == 2 and nightly["scheduleStart"] == "2030-01-01T00:00:00Z"
    assert {"key": "managedBy", "value": "team-data"} in nightly["tags"]
    drawn = http.get("/jobs/sleeper-task").json()["schedule"]

    second = ecss("apply", "-f", name)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "Plan: 0 to create, 0 to update, 0 to delete, 2 unchanged"
    assert http.get("/jobs/sleeper-task").json()["schedule"] == drawn  # the '?' was not redrawn


def test_apply_updates_only_changed_fields(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    ecss("apply", "-f", _write(tmp_path, JOBS))
    http.put("/jobs/nightly", json={"suspended": True, "group": "by-hand"})  # drift made by hand
    changed = JOBS.replace('schedule: "0 0 3"', 'schedule: "0 30 4"').replace("    taskCount: 2\n", "")
    result = ecss("apply", "-f", _write(tmp_path, changed))
    assert result.returncode == 0, result.stderr
    diff = result.stdout.splitlines()
    assert diff[:5] == [
        "~ update nightly",
        '    group: "by-hand" → (cleared)',
        '    schedule: "0 0 3" → "0 30 4"',
        "    suspended: true → false",
        "    taskCount: 2 → 1",
    ]
    job = http.get("/jobs/nightly").json()
    assert job["schedule"] == "0 30 4" and job["taskCount"] == 1 and "group" not in job
    assert job["suspended"] is False
    assert job["overrides"][0]["environment"] == {"SLEEP_SECONDS": "10"}
    assert ecss("apply", "-f", "jobs.yaml").stdout.strip().endswith("2 unchanged")


def test_prune_deletes_only_jobs_of_the_file_owner(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    ecss("apply", "-f", _write(tmp_path, JOBS))
    http.post(
        "/jobs",
        json={
            "taskDefinition": "other",
            "schedule": "0",
            "tags": [{"key": "managedBy", "value": "team-web"}],
        },
    )
    http.post("/jobs", json={"taskDefinition": "handmade", "schedule": "0"})
    only_one = JOBS.split("  - id: nightly")[0]
    name = _write(tmp_path, only_one, "fewer.yaml")

    without_prune = ecss("apply", "-f", name)
    assert without_prune.stdout.strip() == "Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged"
    dry = ecss("apply", "-f", name, "--prune", "--dry-run")
    assert dry.stdout.splitlines() == [
        "- delete nightly",
        "Plan (dry run): 0 to create, 0 to update, 1 to delete, 1 unchanged",
    ]
    assert http.get("/jobs/nightly").status_code == 200
    pruned = ecss("apply", "-f", name, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    remaining = [job["id"] for job in http.get("/jobs").json()["jobs"]]
    assert remaining == ["handmade", "other", "sleeper-task"]


def test_prune_needs_an_owner(ecss: Ecss, tmp_path: Path) -> None:
    name = _write(tmp_path, "- taskDefinition: t\n  schedule: '0'\n")
    result = ecss("apply", "-f", name, "--prune")
    assert result.returncode == 2 and "--prune needs the file to say whose jobs it holds" in result.stderr


def test_bad_files_exit_2_and_change_nothing(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    cases = {
        "missing.yaml": "cannot read missing.yaml",
        _write(tmp_path, "jobs: [\n", "broken.yaml"): "not valid YAML or JSON",
        _write(
            tmp_path,
            "- taskDefinition: t\n  schedule: '0'\n- taskDefinition: t\n  schedule: '1'\n",
            "dup.yaml",
        ): "job id 't' appears twice",
        _write(tmp_path, "owner: x\njobs: []\n", "keys.yaml"): "unknown top-level key(s) owner",
        _write(tmp_path, "- schedule: '0'\n", "noid.yaml"): "neither id nor taskDefinition",
    }
    for name, message in cases.items():
        result = ecss("apply", "-f", name)
        assert result.returncode == 2, name
        assert message in result.stderr, (name, result.stderr)
    assert http.get("/jobs").json()["jobs"] == []


def test_rejected_job_exits_1_and_the_others_are_applied(
    ecss: Ecss, http: httpx.Client, tmp_path: Path
) -> None:
    name = _write(
        tmp_path,
        "- {taskDefinition: good, schedule: '0'}\n- {taskDefinition: bad, schedule: '0 0 0 * * 30 2'}\n",
    )
    result = ecss("apply", "-f", name)
    assert result.returncode == 1
    first, detail = result.stderr.splitlines()[:2]
    assert first.startswith("error: create bad: Invalid job: schedule: ") and "never fires" in first
    assert detail.strip().startswith("schedule: ") and "never fires" in detail
    assert http.get("/jobs/good").status_code == 200


def test_export_then_apply_round_trip(
    ecss: Ecss, http: httpx.Client, tmp_path: Path, sqlite_store: JobStore
) -> None:
    ecss("apply", "-f", _write(tmp_path, JOBS))
    failure = LaunchFailure(reason="RESOURCE:CPU")
    record_fire(
        sqlite_store, "nightly", datetime(2026, 1, 1, tzinfo=UTC), tasks=["a"], failures=[failure], expected=2
    )
    assert "lastRunFailures" in http.get("/jobs/nightly").json()
    http.post(
        "/jobs",
        json={
            "taskDefinition": "consumer-task",
            "schedule": "? */3",
            "maxCount": 10,
            "trigger": {"type": "sqs", "queueName": "q", "messagesPerTask": 100},
        },
    )
    exported = ecss("export")
    assert exported.returncode == 0, exported.stderr
    documents = yaml.safe_load(exported.stdout)
    assert [job["id"] for job in documents] == ["consumer-task", "nightly", "sleeper-task"]
    assert all(not {"link", "lastRun", "lastRunTasks", "lastRunFailures"} & set(job) for job in documents)
    name = _write(tmp_path, exported.stdout, "exported.yaml")
    assert (
        ecss("apply", "-f", name).stdout.strip() == "Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged"
    )

    owned = yaml.safe_load(ecss("export", "--managed-by", "team-data").stdout)
    assert owned["managedBy"] == "team-data" and [job["id"] for job in owned["jobs"]] == [
        "nightly",
        "sleeper-task",
    ]
    as_json = ecss("export", "-o", "json", "--managed-by", "team-data")
    for job_id in ("nightly", "sleeper-task"):
        http.delete(f"/jobs/{job_id}")
    restored = ecss("apply", "-f", "-", "--prune", stdin=as_json.stdout)
    assert restored.returncode == 0, restored.stderr
    assert "2 to create" in restored.stdout
    assert http.get("/jobs/nightly").json()["overrides"][0]["containerName"] == "sleeper-container"


def test_readme_example_applies(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    from tests.servers import ROOT

    readme = (ROOT / "README.md").read_text()
    example = readme.split("```yaml\n# jobs.yaml\n", 1)[1].split("```", 1)[0]
    name = _write(tmp_path, example)
    first = ecss("apply", "-f", name, "--prune")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "Applied: 3 to create, 0 to update, 0 to delete, 0 unchanged"
    assert [job["id"] for job in http.get("/jobs").json()["jobs"]] == [
        "consumer-task",
        "nightly-report",
        "sleeper-task",
    ]
    assert ecss("apply", "-f", name, "--prune").stdout.strip().endswith("3 unchanged")


def test_settable_fields_come_from_the_api_document(api_server: str) -> None:
    """apply/export learn which fields a user sets from /spec (PUT /jobs/{id}'s body), so a
    read-only field the server adds later never shows up as a change."""
    from ecs_scheduler.cli.client import Api

    api = Api(api_server)
    try:
        settable = api.settable_fields()
    finally:
        api.close()
    assert settable is not None
    assert {"id", "taskDefinition", "schedule", "timezone", "overrides", "suspended"} <= settable
    assert not settable & {"lastRun", "lastRunTasks", "lastRunFailures", "estimatedNextRun", "link"}
