"""Building and changing jobs: validation has no side effects; ``?`` is resolved once, by the
write (new_job / apply_update), which parses the schedule exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from common import schedule as schedule_syntax
from common.errors import InvalidJobError
from common.models import JobUpdate, apply_update, new_job, parse_create, parse_update


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each schedule the real parser builds a trigger for."""
    built: list[str] = []
    real = schedule_syntax.build_trigger

    def counting(expression: str, **kwargs: Any) -> Any:
        built.append(expression)
        return real(expression, **kwargs)

    monkeypatch.setattr(schedule_syntax, "build_trigger", counting)
    return built


def test_parsing_a_body_resolves_nothing(builds: list[str]) -> None:
    assert parse_create({"taskDefinition": "td", "schedule": "? ? ?"}).schedule == "? ? ?"
    assert parse_update({"schedule": "? 5"}).schedule == "? 5"
    assert builds == []


def test_create_resolves_wildcards_and_parses_once(builds: list[str]) -> None:
    job = new_job(parse_create({"taskDefinition": "td", "schedule": "? ? ?"}))
    second, minute, hour = (int(field) for field in job.schedule.split())
    assert 0 <= second < 60 and 0 <= minute < 60 and 0 <= hour < 24
    assert builds == [job.schedule]


def test_update_resolves_a_new_schedule_and_parses_once(builds: list[str]) -> None:
    job = new_job(parse_create({"taskDefinition": "td", "schedule": "0 0 0"}))
    builds.clear()
    updated = apply_update(job, JobUpdate(schedule="? 30"))
    assert updated.schedule.split()[1] == "30" and "?" not in updated.schedule
    assert builds == [updated.schedule]
    builds.clear()
    assert apply_update(job, JobUpdate(suspended=True)).schedule == "0 0 0"
    assert builds == []  # the schedule did not change: not parsed again


def test_bad_schedule_names_the_field() -> None:
    with pytest.raises(InvalidJobError) as caught:
        new_job(parse_create({"taskDefinition": "td", "schedule": "0 0 0 ?"}))
    assert set(caught.value.errors) == {"schedule"}


def test_trigger_is_told_apart_by_its_type() -> None:
    create = parse_create(
        {"taskDefinition": "td", "schedule": "0", "trigger": {"type": "sqs", "queueName": "q"}}
    )
    assert create.trigger is not None and create.trigger.queue_name == "q"
    with pytest.raises(InvalidJobError) as caught:
        parse_create({"taskDefinition": "td", "schedule": "0", "trigger": {"type": "kafka", "topic": "t"}})
    assert caught.value.errors == {"trigger.type": "must be one of: sqs"}
