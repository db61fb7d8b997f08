"""A total deadline per request (``webapi.limits.request_deadline_seconds``): past it the
client gets a 503 that names what the request was waiting on, and no acknowledged work is lost.

Plain ASGI. The app runs in a task of its own; the middleware waits for it up to the deadline.
When the deadline passes before the reply has started:

- a read (GET/HEAD/OPTIONS) is cancelled: nothing was changed;
- a write is **not** cancelled: it runs to its end in the background (store write, then the
  change event), so a write that lands after the 503 is complete and scheduld hears of it.
  The client only learns that the outcome is unknown, and is told how to find out (README
  "Limits and quotas": PUT is idempotent, a retried POST gets 409 once the first one was
  saved, a retried DELETE 404).

Code that waits on a dependency says so with ``with waiting_on(STORE):``; the mark lives in a
context variable set for the request's task, so it costs a lookup and two attribute writes.
"""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from types import TracebackType

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapi.errors import DeadlineExceededError, error_reply

logger = logging.getLogger(__name__)

STORE = "the job store"
QUEUE = "the event queue (SQS)"
REQUEST_BODY = "the request body"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Wait:
    """What the request is waiting on right now (None: computing)."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on: str | None = None


_current: ContextVar[_Wait | None] = ContextVar("ecss_request_waiting_on", default=None)


class _WaitingOn:
    __slots__ = ("_what", "_wait", "_before")

    def __init__(self, what: str) -> None:
        self._what = what
        self._wait: _Wait | None = None
        self._before: str | None = None

    def __enter__(self) -> None:
        wait = self._wait = _current.get()
        if wait is not None:
            self._before, wait.on = wait.on, self._what

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._wait is not None:
            self._wait.on = self._before


def waiting_on(what: str) -> _WaitingOn:
    """``with waiting_on(STORE): ...``: a deadline passing inside the block blames ``what``."""
    return _WaitingOn(what)


class Deadline:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._finishing: set[asyncio.Future[None]] = set()  # writes answered 503, still running

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replied = False  # the client has its 503: later messages of the app are dropped
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if replied:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        wait = _Wait()
        token = _current.set(wait)  # the task below runs in a copy of this context
        try:
            task: asyncio.Future[None] = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        finally:
            _current.reset(token)
        done, _ = await asyncio.wait((task,), timeout=self.seconds)
        if done or started:  # in time, or the reply is already on its way: let it finish
            await task
            return
        replied = True
        method = scope["method"]
        write = method not in _SAFE_METHODS
        error = DeadlineExceededError(self.seconds, wait.on, write=write)
        logger.warning("%s %s: %s", method, scope["path"], error.message)
        if write:
            self._finishing.add(task)
            task.add_done_callback(self._finished(method, scope["path"]))
        else:
            task.cancel()
        await error_reply(error)(scope, receive, send)

    def _finished(self, method: str, path: str) -> _Finished:
        return _Finished(self._finishing, method, path)


class _Finished:
    """Logs how a write answered 503 by the deadline ended, once it has."""

    __slots__ = ("_tasks", "_method", "_path")

    def __init__(self, tasks: set[asyncio.Future[None]], method: str, path: str) -> None:
        self._tasks, self._method, self._path = tasks, method, path

    def __call__(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            logger.warning("%s %s, answered 503 at its deadline, was cancelled", self._method, self._path)
        elif (exc := task.exception()) is not None:
            logger.error(
                "%s %s, answered 503 at its deadline, failed",
                self._method,
                self._path,
                exc_info=exc,
            )
        else:
            logger.info("%s %s, answered 503 at its deadline, has now finished", self._method, self._path)
