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
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Sequence[T]], Sequence[R]]
"""Writes items in one go; returns one answer per item, in order."""


class _Waiting:
    """One caller's item, and what it is woken for: its answer, or its turn to write."""

    __slots__ = ("item", "woken", "answer", "error", "writes")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.woken = threading.Event()
        self.answer: Any = None
        self.error: BaseException | None = None
        self.writes = False


class GroupCommit(Generic[T, R]):
    """Thread-safe; ``commit(item)`` returns what ``write`` answered for ``item``.

    Each waiting caller is woken once, by its own event: with its answer, or to write what
    has gathered (the oldest waiting caller takes over from one that finished writing)."""

    def __init__(self, write: Write[T, R], *, limit: int = 500) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[_Waiting] = []
        self._writing = False
        self._lock = threading.Lock()

    def commit(self, item: T) -> R:
        mine = _Waiting(item)
        with self._lock:
            self._waiting.append(mine)
            mine.writes = not self._writing
            self._writing = True
        if not mine.writes:
            mine.woken.wait()
        if mine.writes:
            self._write_waiting()
        if mine.error is not None:
            raise mine.error
        answer: R = mine.answer
        return answer

    def _write_waiting(self) -> None:
        """Write the oldest waiting items (this caller's among them), answer them, and hand
        the writing over to the next caller waiting, if any."""
        with self._lock:
            batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
        try:
            answers = list(self._write([waiting.item for waiting in batch]))
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} items")
        except BaseException as exc:  # every caller of the batch sees the write's error
            for waiting in batch:
                waiting.error = exc
        else:
            for waiting, answer in zip(batch, answers, strict=True):  # lengths checked above
                waiting.answer = answer
        with self._lock:
            following = self._waiting[0] if self._waiting else None
            if following is None:
                self._writing = False
            else:
                following.writes = True
        for waiting in batch:
            waiting.writes = False
            waiting.woken.set()
        if following is not None:
            following.woken.set()
