"""Message bodies of the ops queue: one event in the seed's shape, several in an envelope."""

from __future__ import annotations

import pytest

from common.bus.base import MAX_EVENTS_PER_MESSAGE, pack, unpack
from common.models import ChangeEvent


def test_one_event_keeps_the_seed_shape() -> None:
    event = ChangeEvent(op="modify", job_id="j")
    body = pack([event])
    assert body == event.to_json() and '"events"' not in body
    assert unpack(body) == (event,)


def test_several_events_round_trip_in_order() -> None:
    events = [ChangeEvent(op="add", job_id=f"j{n}") for n in range(MAX_EVENTS_PER_MESSAGE)]
    assert unpack(pack(events)) == tuple(events)


@pytest.mark.parametrize(
    "body",
    ["not json", "{}", '{"events": []}', '{"events": [{"op": "explode", "jobId": "j"}]}', "[1, 2]"],
)
def test_a_body_that_is_neither_shape_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        unpack(body)


def test_pack_refuses_too_many_or_none() -> None:
    with pytest.raises(ValueError):
        pack([])
    with pytest.raises(ValueError):
        pack([ChangeEvent(op="add", job_id="j")] * (MAX_EVENTS_PER_MESSAGE + 1))
