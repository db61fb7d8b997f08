"""A total deadline per request (``webapi.limits.request_deadline_seconds``): past it the
client gets a 503 that names what the request was waiting on, and no acknowledged work is lost.

Plain ASGI. When the deadline passes before the reply has started:

- the request is **not** cancelled: it runs to its end behind the reply (its own reply is
  dropped), so a write that lands after the 503 is complete, store write and change event
  alike, and scheduld hears of it. Each store and bus call has its own timeout, which bounds
  how long that takes; cancelling would not be faster anyway, since a call in a worker thread
  cannot be interrupted.
  The client only learns that the outcome is unknown, and is told how to find out (README
  "Limits and quotas": PUT is idempotent, a retried POST gets 409 once the first one was
  saved, a retried DELETE 404).

Code that waits on a dependency says so with ``with waiting_on(STORE):``; the mark is kept on
the request found by the task running it, so it costs two lookups and two attribute writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapi.errors import DeadlineExceededError, error_reply

logger = logging.getLogger(__name__)

STORE = "the job store"
REQUEST_BODY = "the request body"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _WaitingOn:
    __slots__ = ("_what", "_wait", "_before")

    def __init__(self, what: str) -> None:
        self._what = what
        self._wait: _Request | None = None
        self._before: str | None = None

    def __enter__(self) -> None:
        wait = self._wait = _under_deadline.get(_current_task()) if _under_deadline else None
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


class _Request:
    """One request under a deadline: its send, guarded once the 503 has gone."""

    __slots__ = ("send", "scope", "receive", "due", "started", "replied", "reply", "on")

    def __init__(self, scope: Scope, receive: Receive, send: Send, due: float) -> None:
        self.send = send
        self.scope = scope
        self.receive = receive
        self.due = due  # loop time of its deadline
        self.started = False  # the app's reply has begun: it is let finish
        self.replied = False  # the client has its 503: the app's messages are dropped
        self.reply: asyncio.Task[None] | None = None
        self.on: str | None = None  # what it waits on right now (None: computing)

    async def guarded_send(self, message: Message) -> None:
        if self.replied:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


_under_deadline: dict[object, _Request] = {}
"""The requests under a deadline, by the task that runs each (the request's own task, where
its middleware and route run): a dict, not a context variable, whose ``set`` per request made
a served GET measurably costlier (bench/README.md, "The deadline's context variable")."""


def _current_task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: no request
        return None


class _Watch:
    """The requests under a deadline on one event loop, and one timer for the oldest.

    Every deadline has the same length, so they fall due in the order the requests came
    (the dict keeps it): the timer waits for the oldest one still running, never one timer
    per request (a ``call_later`` and its cancel are a measurable share of a request's
    CPU: bench/README.md). A request leaves when it ends, so nothing finished is held.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[_Request], None]) -> None:
        self.loop = loop
        self._expire = expire
        self._running: dict[_Request, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, request: _Request) -> None:
        self._running[request] = None
        if self._timer is None:
            self._timer = self.loop.call_at(request.due, self._check)

    def remove(self, request: _Request) -> None:
        self._running.pop(request, None)  # gone already when its deadline passed

    def _check(self) -> None:
        self._timer = None
        now = self.loop.time()
        for request in list(self._running):  # oldest first; stops at the first not yet due
            if request.due > now:
                self._timer = self.loop.call_at(request.due, self._check)
                return
            del self._running[request]
            self._expire(request)


class Deadline:
    """The app runs in the request's own task; when its deadline passes first, the 503 is
    sent from a task of its own (``_Watch`` notices), so the common case costs two dict
    operations and a wrapped ``send``, not a timer or a task per request."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._watch: _Watch | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        watch = self._watch
        if watch is None or watch.loop is not loop:  # an app served by another loop (tests)
            watch = self._watch = _Watch(loop, self._expire)
        request = _Request(scope, receive, send, loop.time() + self.seconds)
        watch.add(request)
        task = asyncio.current_task()
        if task is not None:
            _under_deadline[task] = request
        try:
            await self.app(scope, receive, request.guarded_send)
        except Exception:
            if request.reply is None:
                raise  # answered nothing yet: the error handlers outside reply
            logger.exception(
                "%s %s, answered 503 at its deadline, then failed",
                scope["method"],
                scope["path"],
            )
        finally:
            watch.remove(request)
            _under_deadline.pop(task, None)
        if request.reply is not None:
            logger.info(
                "%s %s, answered 503 at its deadline, has now finished", scope["method"], scope["path"]
            )
            await asyncio.shield(request.reply)  # the 503 is sent even if this request is cancelled

    def _expire(self, request: _Request) -> None:
        if request.started:  # the reply is on its way: let it finish
            return
        scope = request.scope
        request.replied = True
        method = scope["method"]
        error = DeadlineExceededError(self.seconds, request.on, write=method not in _SAFE_METHODS)
        logger.warning("%s %s: %s", method, scope["path"], error.message)
        request.reply = asyncio.get_running_loop().create_task(
            error_reply(error)(scope, request.receive, request.send)
        )
