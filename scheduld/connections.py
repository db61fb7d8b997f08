"""One keep-alive HTTP/1.1 connection per thread, for the launchers' signed RunTask requests.

A launcher's calls run on a fixed set of threads, so a connection per thread is a pool that
needs no lock. Each request is written with one ``sendall`` and its answer read with
httptools' response parser (llhttp, the parser uvicorn serves with): ``http.client`` sent the
head and the body in two writes and parsed the answer's headers with the ``email`` package,
140–157 µs of CPU an exchange against 48–75 (bench/README.md, "Signing once per endpoint").
Before that, urllib3's pool around ``http.client`` had cost a fifth more again.

A kept connection that the server has closed meanwhile fails as the request is written or
before a byte of its answer arrives; the request is then sent once more on a new connection.
Both may have reached ECS: RunTask's client token makes the second a replay, not a second
launch. Anything else (a timeout, an answer cut short or not HTTP) raises
``http.client.HTTPException`` or ``OSError``, as ``http.client`` did.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass, field

import httptools

_CLOSED_UNDER_US = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)
"""What a kept connection the server closed meanwhile fails with (not a timeout)."""

_READ_SIZE = 65536


class MalformedAnswer(http.client.HTTPException):
    """The server's bytes are not an HTTP/1.1 answer."""


@dataclass
class _Answer:
    """httptools' callbacks for one answer."""

    parser: httptools.HttpResponseParser | None = None
    body: list[bytes] = field(default_factory=list)
    delimited: bool = False  # a length or chunks mark the end; else the end is the close
    headed: bool = False
    complete: bool = False
    keep_alive: bool = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.delimited = True

    def on_headers_complete(self) -> None:
        self.headed = True

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()  # only known until the message ends
        self.complete = True


class ThreadConnections:
    """``post`` from any thread; each thread keeps its own connection to ``host``."""

    def __init__(
        self,
        *,
        host: str,
        port: int | None,
        tls: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._host = host
        self._port = port or (443 if tls is not None else 80)
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._local = threading.local()
        self._opened: list[socket.socket] = []  # every thread's, for close()
        self._lock = threading.Lock()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The answer's status and body. ``headers`` must name ``Host`` (the value signed);
        raises OSError or http.client.HTTPException when there is no answer."""
        request = _request(path, body, headers)
        kept: socket.socket | None = getattr(self._local, "connection", None)
        if kept is not None:
            try:
                return self._exchange(kept, request)
            except _CLOSED_UNDER_US:
                pass  # closed while kept: once more, on a new connection
        return self._exchange(self._connect(), request)

    def close(self) -> None:
        """Close every thread's connection (a thread's next ``post`` opens another)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _exchange(self, connection: socket.socket, request: bytes) -> tuple[int, bytes]:
        self._local.connection = None  # kept again only once its answer is read whole
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        received = False
        try:
            connection.sendall(request)
            while not answer.complete:
                data = connection.recv(_READ_SIZE)
                if not data:
                    if answer.headed and not answer.delimited:  # the close ends the body
                        break
                    if not received:
                        raise http.client.RemoteDisconnected("closed before answering")
                    raise http.client.IncompleteRead(b"".join(answer.body))
                received = True
                parser.feed_data(data)
        except httptools.HttpParserError as exc:
            connection.close()
            raise MalformedAnswer(str(exc)) from exc
        except BaseException:
            connection.close()
            raise
        if answer.keep_alive:
            self._local.connection = connection
        else:
            connection.close()
        return parser.get_status_code(), b"".join(answer.body)

    def _connect(self) -> socket.socket:
        connection = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_hostname=self._host)
        except BaseException:
            connection.close()
            raise
        connection.settimeout(self._read_timeout)
        with self._lock:
            self._opened = [kept for kept in self._opened if kept.fileno() != -1]
            self._opened.append(connection)
        return connection


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The request's bytes: one write. Header values carrying a line break are refused, as
    ``http.client`` refuses them (a value must not smuggle in another header)."""
    lines = [f"POST {path} HTTP/1.1"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"invalid value for header {name}")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1") + body
