"""Group commit: the fires of a herd claim (and record) their runs together, one store write
for as many as are waiting, instead of one write each.

Every fire of a second claims its run before launching and records it after; 1 000 fires on
one second were 2 000 SQLite transactions queued on one write lock, each paying its BEGIN,
COMMIT and retry wrapper (bench/README.md, "Herds"). ``GroupCommit`` lets the first caller
write alone, at once; callers that arrive while a write is under way wait, and the next of
them writes everything that gathered meanwhile. A lone fire therefore waits for nobody, and a
herd's writes grow with the herd. Each caller gets its own item's answer, or the write's
error (each then retries as it did alone).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Sequence[T]], Sequence[R]]
"""Writes items in one go; returns one answer per item, in order."""


class GroupCommit(Generic[T, R]):
    """Thread-safe; ``commit(item)`` returns what ``write`` answered for ``item``."""

    def __init__(self, write: Write[T, R], *, limit: int = 500) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[tuple[T, Future[R]]] = []
        self._writing = False
        self._changed = threading.Condition()

    def commit(self, item: T) -> R:
        answer: Future[R] = Future()
        with self._changed:
            self._waiting.append((item, answer))
            while self._writing and not answer.done():
                self._changed.wait()
            if answer.done():  # written by another caller
                return answer.result()
            self._writing = True
            batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
        try:
            self._write_batch(batch)
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()
        return answer.result()

    def _write_batch(self, batch: list[tuple[T, Future[R]]]) -> None:
        try:
            answers = list(self._write([item for item, _ in batch]))
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} items")
        except BaseException as exc:  # every caller of the batch sees the write's error
            for _, answer in batch:
                answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, answer), result in zip(batch, answers, strict=True):  # lengths checked above
            answer.set_result(result)
