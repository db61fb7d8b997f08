"""Quotas webapi enforces from settings: the minimum interval between fires of one job."""

from __future__ import annotations

import httpx

from common.config import QuotaSettings
from tests.webapi.conftest import JSON, Serve


def test_min_fire_interval_refuses_a_finer_schedule_on_create_and_update(serve: Serve) -> None:
    with serve(quotas=QuotaSettings(min_fire_interval_seconds=60)) as http:
        every_five_seconds = http.post("/jobs", headers=JSON, json={"taskDefinition": "t", "schedule": "*/5"})
        assert every_five_seconds.status_code == 400
        assert "schedule" in every_five_seconds.json()["errors"]

        created = http.post("/jobs", headers=JSON, json={"taskDefinition": "t", "schedule": "0"})
        assert created.status_code == 201
        finer = http.put("/jobs/t", headers=JSON, json={"schedule": "*/10"})
        assert finer.status_code == 400
        assert "schedule" in finer.json()["errors"]
        assert http.get("/jobs/t").json()["schedule"] == "0"


def test_the_default_minimum_interval_keeps_the_seeds_finest_schedule(client: httpx.Client) -> None:
    every_second = client.post("/jobs", headers=JSON, json={"taskDefinition": "t", "schedule": "*"})
    assert every_second.status_code == 201
