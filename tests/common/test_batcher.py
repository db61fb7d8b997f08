"""The SQS publish batcher, with a fake send function: batches, idle latency, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from common.bus.batcher import MAX_BATCH, Batcher, Outcome


class FakeSend:
    """Records each call's bodies; ``delay`` stands for the SQS round trip."""

    def __init__(self, delay: float = 0.0, error: Exception | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.error = error
        self._lock = threading.Lock()

    def __call__(self, bodies: Sequence[str]) -> list[Outcome]:
        with self._lock:
            self.calls.append(list(bodies))
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return [Outcome(message_id=f"id-{body}") for body in bodies]


@pytest.fixture
def send() -> FakeSend:
    return FakeSend(delay=0.02)


@pytest.fixture
def batcher(send: FakeSend) -> Iterator[Batcher]:
    batcher = Batcher(send, senders=2, linger=0.01)
    yield batcher
    batcher.close()


def test_each_submit_gets_its_own_outcome(batcher: Batcher) -> None:
    futures = {f"m{n}": batcher.submit(f"m{n}") for n in range(35)}
    assert {body: future.result(timeout=5).message_id for body, future in futures.items()} == {
        body: f"id-{body}" for body in futures
    }


def test_concurrent_submits_share_calls_of_at_most_ten(batcher: Batcher, send: FakeSend) -> None:
    futures = [batcher.submit(f"m{n}") for n in range(100)]
    for future in futures:
        future.result(timeout=5)
    assert sorted(body for call in send.calls for body in call) == sorted(f"m{n}" for n in range(100))
    assert all(len(call) <= MAX_BATCH for call in send.calls)
    assert len(send.calls) <= 20  # 100 messages, mostly in full batches


def test_a_lone_message_leaves_without_lingering(send: FakeSend) -> None:
    batcher = Batcher(send, senders=2, linger=1.0)
    try:
        started = time.monotonic()
        batcher.submit("alone").result(timeout=5)
        assert time.monotonic() - started < 0.5  # nothing in flight: no linger
    finally:
        batcher.close()


def test_a_failed_call_fails_every_message_in_it() -> None:
    batcher = Batcher(FakeSend(error=RuntimeError("SQS down")), senders=1)
    try:
        futures = [batcher.submit(f"m{n}") for n in range(5)]
        for future in futures:
            with pytest.raises(RuntimeError, match="SQS down"):
                future.result(timeout=5)
        # the sender survives a failed call
        with pytest.raises(RuntimeError):
            batcher.submit("later").result(timeout=5)
    finally:
        batcher.close()


def test_a_cancelled_submit_is_skipped_and_the_sender_survives() -> None:
    gate = threading.Event()
    sent: list[str] = []

    def send(bodies: Sequence[str]) -> list[Outcome]:
        sent.extend(bodies)
        gate.wait(5)  # the only sender stays busy until the test opens the gate
        return [Outcome(message_id=f"id-{body}") for body in bodies]

    batcher = Batcher(send, senders=1, linger=0.0)
    try:
        first = batcher.submit("first")
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.005)
        cancelled = batcher.submit("cancelled")
        assert cancelled.cancel()
        after = batcher.submit("after")
        gate.set()
        assert first.result(timeout=5).message_id == "id-first"
        assert after.result(timeout=5).message_id == "id-after"
        assert "cancelled" not in sent
    finally:
        batcher.close()
