"""GET /jobs/{id}/upcoming and GET /schedules/preview over HTTP, and schedules in words."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.webapi.conftest import Serve, bearer, tokens_auth, write_tokens
from webapi.describe import describe_schedule


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("25 */5", "every 5 minutes at second 25"),
        ("*/10", "every 10 seconds"),
        ("*", "every second"),
        ("0 *", "every minute at second 0"),
        ("0 0 */2", "every 2 hours at 00:00 past the hour"),
        ("7 30 *", "every hour at 30:07 past the hour"),
        ("0 30 9", "every day at 09:30:00"),
        ("0 30 9 mon-fri", "at 09:30:00 on mon-fri"),
        ("0 0 0 * * 1 9", "at 00:00:00 on day 1 of the month in September"),
        ("0 0 0 fri * last", "at 00:00:00 on fri on day last of the month"),
        ("0 0 12 2nd_fri", "at 12:00:00 on 2nd fri"),
        ("0 */5 9-17", "at second 0, minute */5, hour 9-17"),
        ("0 0 3 * 10 * * 2030", "at 03:00:00 in ISO week 10 in 2030"),
        ("rate(5 minutes)", "every 5 minutes"),
        ("rate(1 hour)", "every hour"),
        ("at(2030-01-01T09:00:00)", "once, at 2030-01-01T09:00:00"),
        ("cron(0 9 ? * MON-FRI *)", "cron 0 9 ? * MON-FRI *"),
    ],
)
def test_schedule_in_words(schedule: str, words: str) -> None:
    assert describe_schedule(schedule) == words


def _fires(reply: httpx.Response) -> list[datetime]:
    assert reply.status_code == 200, reply.text
    return [datetime.fromisoformat(fire) for fire in reply.json()["fires"]]


def test_upcoming_honours_timezone_start_end_and_suspension(client: httpx.Client) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    end = start + timedelta(days=3)
    created = client.post(
        "/jobs",
        json={
            "taskDefinition": "t",
            "schedule": "0 30 9",
            "timezone": "America/New_York",
            "scheduleStart": start.isoformat(),
            "scheduleEnd": end.isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    reply = client.get("/jobs/t/upcoming", params={"count": 100})
    body = reply.json()
    assert body["description"] == "every day at 09:30:00" and body["timezone"] == "America/New_York"
    fires = _fires(reply)
    assert 2 <= len(fires) <= 3  # only the days between start and end
    assert all(start <= fire <= end for fire in fires)
    assert all((fire.hour, fire.minute, fire.second) == (9, 30, 0) for fire in fires)
    assert all(fire.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4)) for fire in fires)

    assert client.put("/jobs/t", json={"suspended": True}).status_code == 200
    suspended = client.get("/jobs/t/upcoming").json()
    assert suspended["suspended"] is True and suspended["fires"] == []


def test_upcoming_counts_and_errors(client: httpx.Client) -> None:
    client.post("/jobs", json={"taskDefinition": "t", "schedule": "*/10"})
    fires = _fires(client.get("/jobs/t/upcoming"))
    assert len(fires) == 10 and all(b - a == timedelta(seconds=10) for a, b in itertools.pairwise(fires))
    assert fires[0] > datetime.now(UTC)
    too_many = client.get("/jobs/t/upcoming", params={"count": 101})
    assert too_many.status_code == 400 and "count" in too_many.json()["errors"]
    missing = client.get("/jobs/nope/upcoming")
    assert missing.status_code == 404 and missing.json()["message"] == "Job nope does not exist"


def test_preview(client: httpx.Client) -> None:
    reply = client.get("/schedules/preview", params={"schedule": "0 0 0 * * 1 9 2099", "count": 3})
    assert reply.json() == {
        "schedule": "0 0 0 * * 1 9 2099",
        "timezone": "UTC",
        "description": "at 00:00:00 on day 1 of the month in September in 2099",
        "fires": ["2099-09-01T00:00:00+00:00"],
    }
    wild = client.get("/schedules/preview", params={"schedule": "? */5", "timezone": "Europe/Paris"}).json()
    second, minute = wild["schedule"].split()
    assert minute == "*/5" and 0 <= int(second) <= 59
    assert wild["description"] == f"every 5 minutes at second {second}"
    assert all(fire.endswith(("+01:00", "+02:00")) for fire in wild["fires"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"schedule": "61"}, "schedule"),
        ({"schedule": "0 0 0 * * 30 2"}, "schedule"),
        ({"schedule": "0", "timezone": "Mars/Olympus"}, "timezone"),
        ({"schedule": "0", "scheduleStart": "yesterday"}, "scheduleStart"),
        ({"schedule": "0", "scheduleStart": "2030-01-02", "scheduleEnd": "2030-01-01"}, "scheduleEnd"),
        ({"schedule": "0", "count": "0"}, "count"),
        ({}, "schedule"),
    ],
)
def test_preview_rejects_bad_input_naming_the_field(
    client: httpx.Client, params: dict[str, str], field: str
) -> None:
    reply = client.get("/schedules/preview", params=params)
    assert reply.status_code == 400, reply.text
    assert field in reply.json()["errors"]


def test_upcoming_needs_a_token_and_respects_its_scope(serve: Serve, tmp_path: Path) -> None:
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {
            "admin-1": {"name": "ops", "roles": ["admin"]},
            "data-1": {"name": "d", "roles": ["read"], "taskDefinitions": ["data-*"]},
        },
    )
    with serve(auth=tokens_auth(tokens)) as http:
        assert http.post(
            "/jobs", json={"taskDefinition": "web-a", "schedule": "0"}, headers=bearer("admin-1")
        ).is_success
        assert http.get("/jobs/web-a/upcoming").status_code == 401
        assert http.get("/schedules/preview", params={"schedule": "0"}).status_code == 401
        assert http.get("/jobs/web-a/upcoming", headers=bearer("admin-1")).status_code == 200
        hidden = http.get("/jobs/web-a/upcoming", headers=bearer("data-1"))
        assert hidden.status_code == 404 and hidden.json()["message"] == "Job web-a does not exist"
        assert (
            http.get("/schedules/preview", params={"schedule": "0"}, headers=bearer("data-1")).status_code
            == 200
        )
