"""Schedules in words ("every 5 minutes at second 25") for the console and the CLI.

Reads the 8 fields as common/schedule.py splits them; a schedule this module cannot phrase
simply is spelled out field by field, so every valid schedule gets a truthful description.
"""

from __future__ import annotations

import re

from common.schedule import FIELD_NAMES, split_fields

_STEP = re.compile(r"^\*/(\d+)$")
_MONTHS = "January February March April May June July August September October November December".split()
_UNITS = ("second", "minute", "hour")


_FUNCTION = re.compile(r"^\s*(cron|rate|at)\((.*)\)\s*$", re.DOTALL)


def describe_schedule(expression: str) -> str:
    """A short English phrase for a (valid) schedule expression."""
    function = _FUNCTION.match(expression)
    if function:
        return _describe_function(function.group(1), function.group(2).strip())
    given = split_fields(expression)
    fields = dict(zip(FIELD_NAMES, given + ["*"] * (len(FIELD_NAMES) - len(given)), strict=True))
    times = [fields[unit] for unit in _UNITS]
    dates = _date_phrases(fields)
    first_open = next((i for i, value in enumerate(times) if not value.isdigit()), None)
    if first_open is None:
        second, minute, hour = (int(value) for value in times)
        when = f"at {hour:02d}:{minute:02d}:{second:02d}"
        return " ".join([when, *dates]) if dates else f"every day {when}"
    period = _period(times[first_open], _UNITS[first_open])
    higher = times[first_open + 1 :]
    if period is not None and all(value == "*" for value in higher):
        below = [int(value) for value in times[:first_open]]
        parts = [period]
        if first_open == 1:
            parts.append(f"at second {below[0]}")
        elif first_open == 2:
            parts.append(f"at {below[1]:02d}:{below[0]:02d} past the hour")
        return " ".join(parts + dates)
    spelled = [f"{unit} {value.replace('_', ' ')}" for unit, value in zip(_UNITS, times, strict=True)]
    return "at " + ", ".join(spelled) + (" " + " ".join(dates) if dates else "")


def _describe_function(kind: str, body: str) -> str:
    """EventBridge-style expressions, where the parser accepts them: said plainly."""
    if kind == "rate":
        value, _, unit = body.partition(" ")
        return f"every {unit}" if value == "1" else f"every {value} {unit}"
    if kind == "at":
        return f"once, at {body}"
    return f"cron {body}"


def _period(value: str, unit: str) -> str | None:
    if value == "*":
        return f"every {unit}"
    match = _STEP.match(value)
    if match:
        step = int(match.group(1))
        return f"every {unit}" if step == 1 else f"every {step} {unit}s"
    return None


def _date_phrases(fields: dict[str, str]) -> list[str]:
    phrases = []
    if fields["day_of_week"] != "*":
        phrases.append(f"on {fields['day_of_week'].replace('_', ' ')}")
    if fields["week"] != "*":
        phrases.append(f"in ISO week {fields['week']}")
    if fields["day"] != "*":
        phrases.append(f"on day {fields['day'].replace('_', ' ')} of the month")
    month = fields["month"]
    if month != "*":
        name = _MONTHS[int(month) - 1] if month.isdigit() and 1 <= int(month) <= 12 else f"month {month}"
        phrases.append(f"in {name}")
    if fields["year"] != "*":
        phrases.append(f"in {fields['year']}")
    return phrases
