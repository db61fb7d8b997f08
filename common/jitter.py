"""``jitterSeconds`` (EventBridge's flexible time window): spread a herd of fires out.

Each fire is delayed by a whole number of seconds in ``[0, jitter)`` taken from a hash of the
job id and the nominal fire time, so every replica, restart and the upcoming-fires list agree
on it. The delay is also kept below the gap to the next nominal fire, so jittered fires keep
their order and none is ever swallowed by the one before it.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

_TICK = timedelta(microseconds=1)
_MAX_STEPS = 1000


def offset_seconds(key: str, nominal: datetime, window: float) -> int:
    """The stable delay of the fire at ``nominal``: whole seconds in ``[0, window)``."""
    if window < 1:
        return 0
    seed = f"{key}@{nominal.astimezone(UTC).isoformat()}".encode()
    fraction = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "big") / 2**64
    return min(math.floor(fraction * window), math.ceil(window) - 1)


class JitteredTrigger(BaseTrigger):  # type: ignore[misc]
    """``inner``'s fire times, each delayed by ``offset_seconds(key, time, ...)``."""

    __slots__ = ("inner", "key", "jitter")

    def __init__(self, inner: BaseTrigger, *, key: str, jitter: float) -> None:
        self.inner = inner
        self.key = key
        self.jitter = jitter

    def nominal_after(self, moment: datetime) -> datetime | None:
        found: datetime | None = self.inner.get_next_fire_time(None, moment + _TICK)
        return found

    def jittered(self, nominal: datetime, following: datetime | None) -> datetime:
        window = self.jitter
        if following is not None:
            window = min(window, (following - nominal).total_seconds())
        return nominal + timedelta(seconds=offset_seconds(self.key, nominal, window))

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first jittered time at or after ``now`` (and after ``previous_fire_time``).

        A fire delayed past ``now`` may be nominally due up to ``jitter`` earlier, so the
        search starts there; jittered times grow with nominal ones, so the first match wins.
        """
        lower = now - timedelta(seconds=self.jitter)
        if previous_fire_time is not None:
            lower = max(lower, previous_fire_time - timedelta(seconds=self.jitter))
        nominal = self.nominal_after(lower - _TICK)
        steps = 0
        while nominal is not None and steps < 2 * _MAX_STEPS:
            steps += 1
            if steps == _MAX_STEPS:  # a dense schedule under a wide window: go on from now
                nominal = self.nominal_after(max(now, previous_fire_time or now) - _TICK)
                if nominal is None:
                    return None
            following = self.nominal_after(nominal)
            fire = self.jittered(nominal, following)
            if fire >= now and (previous_fire_time is None or fire > previous_fire_time):
                return fire
            nominal = following
        return None

    def __str__(self) -> str:
        return f"jitter[{self.jitter}s]({self.inner})"
