"""The EventBus contract: run unchanged against every implementation (conftest ``bus``)."""

from __future__ import annotations

import asyncio
import time

from common.bus.base import EventBus, ReceivedMessage
from common.models import ChangeEvent


def receive_all(bus: EventBus, expected: int, *, timeout: float = 10.0) -> list[ReceivedMessage]:
    received: list[ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        received += bus.receive(max_messages=10, wait_seconds=1)
    return received


def receive_events(bus: EventBus, expected: int, *, timeout: float = 10.0) -> list[tuple[str, str]]:
    """(op, job id) of every event received until ``expected`` distinct ones came; each message
    is acked, so a redelivery is a real second send."""
    events: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while len(set(events)) < expected and time.monotonic() < deadline:
        for message in bus.receive(max_messages=10, wait_seconds=1):
            events += [(event.op, event.job_id) for event in message.events]
            bus.ack(message)
    return events


def test_published_events_are_received_and_acked(bus: EventBus) -> None:
    sent = [ChangeEvent(op="add", job_id="a"), ChangeEvent(op="remove", job_id="b")]
    for event in sent:
        bus.publish(event)
    received = receive_all(bus, 2)
    assert sorted((m.event.op, m.event.job_id) for m in received if m.event) == [
        ("add", "a"),
        ("remove", "b"),
    ]
    for message in received:
        bus.ack(message)
    assert bus.receive(max_messages=10, wait_seconds=0) == []


def test_unacked_message_is_delivered_again(bus: EventBus) -> None:
    bus.publish(ChangeEvent(op="modify", job_id="a"))
    (first,) = receive_all(bus, 1)
    (again,) = receive_all(bus, 1, timeout=15)  # after the visibility timeout
    assert again.message_id == first.message_id
    assert again.receive_count >= 2
    bus.ack(again)


def test_dead_letter_moves_message_and_keeps_reason(bus: EventBus) -> None:
    bus.publish(ChangeEvent(op="add", job_id="a"))
    (message,) = receive_all(bus, 1)
    bus.dead_letter(message, reason="cannot apply")
    (dead,) = bus.dead_letters()
    assert dead.body == message.body
    assert dead.error == "cannot apply"
    assert bus.receive(max_messages=10, wait_seconds=0) == []


def test_concurrent_publishes_each_arrive_once(bus: EventBus) -> None:
    import threading

    ids: list[str] = []
    lock = threading.Lock()

    def publish(n: int) -> None:
        message_id = bus.publish(ChangeEvent(op="modify", job_id=f"job{n}"))
        with lock:
            ids.append(message_id)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 30
    received = receive_all(bus, 30)
    assert sorted(m.event.job_id for m in received if m.event) == sorted(f"job{n}" for n in range(30))


def test_concurrent_async_publishes_each_arrive_once(bus: EventBus) -> None:
    import asyncio

    async def publish_all() -> list[str]:
        return await asyncio.gather(
            *(bus.publish_async(ChangeEvent(op="add", job_id=f"async{n}")) for n in range(25))
        )

    ids = asyncio.run(publish_all())
    assert len(set(ids)) == 25
    received = receive_all(bus, 25)
    assert sorted(m.event.job_id for m in received if m.event) == sorted(f"async{n}" for n in range(25))


def test_ack_batch_deletes_every_message_in_as_few_calls(bus: EventBus) -> None:
    for n in range(12):
        bus.publish(ChangeEvent(op="modify", job_id=f"j{n}"))
    received = receive_all(bus, 12)
    assert len(received) == 12
    assert bus.ack_batch(received) == []
    assert bus.receive(max_messages=10, wait_seconds=0) == []


def test_several_events_travel_in_one_message(bus: EventBus) -> None:
    events = [
        ChangeEvent(op="add", job_id="a"),
        ChangeEvent(op="run", job_id="b"),
        ChangeEvent(op="remove", job_id="c"),
    ]
    asyncio.run(bus.publish_events_async(events))
    (message,) = receive_all(bus, 1)
    assert [(e.op, e.job_id) for e in message.events] == [("add", "a"), ("run", "b"), ("remove", "c")]
    assert message.event == message.events[0]
    bus.ack(message)
