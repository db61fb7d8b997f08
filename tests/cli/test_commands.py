"""Every ``ecss jobs`` command through the installed entry point, against the running API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from common.models import LaunchFailure
from common.store.base import JobStore
from tests.cli.conftest import Ecss, record_fire


def test_create_get_list_in_every_format(ecss: Ecss, http: httpx.Client) -> None:
    created = ecss(
        "jobs",
        "create",
        "--task-definition",
        "sleeper-task",
        "--schedule",
        "25 */5",
        "--timezone",
        "Europe/Paris",
    )
    assert created.returncode == 0, created.stderr
    assert "created job sleeper-task" in created.stdout
    assert http.get("/jobs/sleeper-task").json()["timezone"] == "Europe/Paris"

    table = ecss("jobs", "list")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:3] == ["ID", "TASK", "DEFINITION"]
    assert row.split()[:5] == ["sleeper-task", "sleeper-task", "25", "*/5", "Europe/Paris"]

    as_json = json.loads(ecss("jobs", "list", "-o", "json").stdout)
    assert [job["id"] for job in as_json["jobs"]] == ["sleeper-task"]
    as_yaml = yaml.safe_load(ecss("jobs", "get", "sleeper-task", "--output", "yaml").stdout)
    assert as_yaml["schedule"] == "25 */5"
    assert as_yaml == http.get("/jobs/sleeper-task").json()

    fields = ecss("jobs", "get", "sleeper-task").stdout
    assert any(line.split() == ["timezone", "Europe/Paris"] for line in fields.splitlines())


def test_list_all_follows_pages(ecss: Ecss, http: httpx.Client) -> None:
    for index in range(5):
        http.post("/jobs", json={"taskDefinition": "t", "id": f"job-{index}", "schedule": "0 0 3"})
    paged = json.loads(ecss("jobs", "list", "--count", "2", "-o", "json").stdout)
    assert [job["id"] for job in paged["jobs"]] == ["job-0", "job-1"] and "next" in paged
    every = json.loads(ecss("jobs", "list", "--all", "-o", "json").stdout)
    assert [job["id"] for job in every["jobs"]] == [f"job-{index}" for index in range(5)]


def test_create_from_a_file_and_set(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "taskDefinition: consumer-task\nschedule: '? */3'\n"
        "trigger: {type: sqs, queueName: consumer-task-queue, messagesPerTask: 100}\n"
    )
    result = ecss("jobs", "create", "-f", "job.yaml", "--set", "maxCount=10", "--id", "consumer")
    assert result.returncode == 0, result.stderr
    job = http.get("/jobs/consumer").json()
    assert job["maxCount"] == 10 and job["trigger"]["queueName"] == "consumer-task-queue"
    assert job["schedule"].split()[1] == "*/3" and job["schedule"].split()[0].isdigit()


def test_update_suspend_resume_delete(ecss: Ecss, http: httpx.Client) -> None:
    http.post("/jobs", json={"taskDefinition": "sleeper-task", "schedule": "25 */5", "maxCount": 4})
    assert (
        ecss("jobs", "update", "sleeper-task", "--schedule", "0 */7", "--clear", "maxCount").returncode == 0
    )
    job = http.get("/jobs/sleeper-task").json()
    assert job["schedule"] == "0 */7" and "maxCount" not in job

    assert ecss("jobs", "suspend", "sleeper-task").stdout.strip() == "suspended job sleeper-task"
    assert http.get("/jobs/sleeper-task").json()["suspended"] is True
    upcoming = json.loads(ecss("jobs", "upcoming", "sleeper-task", "-o", "json").stdout)
    assert upcoming["suspended"] is True and upcoming["fires"] == []
    assert ecss("jobs", "resume", "sleeper-task").returncode == 0
    assert http.get("/jobs/sleeper-task").json()["suspended"] is False

    refused = ecss("jobs", "delete", "sleeper-task", stdin="n\n")
    assert refused.returncode != 0 and http.get("/jobs/sleeper-task").status_code == 200
    deleted = ecss("jobs", "delete", "sleeper-task", stdin="y\n")
    assert deleted.returncode == 0, deleted.stderr
    assert http.get("/jobs/sleeper-task").status_code == 404


def test_upcoming_and_preview(ecss: Ecss, http: httpx.Client) -> None:
    http.post("/jobs", json={"taskDefinition": "t", "schedule": "25 */5", "timezone": "Asia/Tokyo"})
    table = ecss("jobs", "upcoming", "t", "--count", "3").stdout.splitlines()
    assert table[0] == "25 */5 (every 5 minutes at second 25, Asia/Tokyo)"
    fires = [datetime.fromisoformat(line) for line in table[1:]]
    assert len(fires) == 3 and all(f.second == 25 and f.minute % 5 == 0 for f in fires)
    assert all(f.utcoffset() is not None and f.utcoffset().total_seconds() == 9 * 3600 for f in fires)  # type: ignore[union-attr]
    assert fires == sorted(fires) and fires[0] > datetime.now(UTC)

    preview = json.loads(ecss("preview", "0 0 12 * * * * 2099", "--count", "2", "-o", "json").stdout)
    assert preview["fires"] == ["2099-01-01T12:00:00+00:00", "2099-01-02T12:00:00+00:00"]
    assert preview["description"] == "at 12:00:00 in 2099"


def test_runs_shows_history_with_tasks_and_failures(
    ecss: Ecss, http: httpx.Client, sqlite_store: JobStore
) -> None:
    http.post("/jobs", json={"taskDefinition": "t", "schedule": "*/10"})
    record_fire(
        sqlite_store,
        "t",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        tasks=["task-abc"],
        failures=[LaunchFailure(reason="RESOURCE:MEMORY", arn="arn:aws:ecs:container-instance/1")],
        expected=2,
    )
    table = ecss("jobs", "runs", "t").stdout.splitlines()
    assert table[0].split() == ["SCHEDULED", "FOR", "STATUS", "EXPECTED", "STARTED", "TASKS", "FAILURES"]
    assert table[1].split() == [
        "2026-01-02T03:04:05Z",
        "partially_launched",
        "2",
        "1",
        "task-abc",
        "RESOURCE:MEMORY",
        "arn:aws:ecs:container-instance/1",
    ]
    as_json = json.loads(ecss("jobs", "runs", "t", "-o", "json").stdout)
    assert as_json["runs"][0]["failures"][0]["reason"] == "RESOURCE:MEMORY"


def test_run_of_an_unknown_job_is_the_apis_404_not_a_missing_route(ecss: Ecss) -> None:
    """A 404 naming the job is the API's answer and is shown as is; only a 404/405 without it
    (a server without POST /jobs/{id}/runs) is reported as "cannot run jobs on demand"."""
    result = ecss("jobs", "run", "nope")
    assert result.returncode == 1
    assert "Job nope does not exist" in result.stderr and "HTTP 404" in result.stderr
    assert "cannot run jobs on demand" not in result.stderr
