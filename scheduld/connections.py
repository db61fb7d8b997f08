"""One keep-alive HTTP connection per thread, for the launchers' signed RunTask requests.

``http.client`` alone needs nothing else per call; urllib3's pool around it (a queue, a
connection check per request, its own request and response wrappers) cost about a fifth of a
signed RunTask's CPU more (bench/README.md, "Signed RunTask requests"). A launcher's calls
run on a fixed set of threads, so a connection per thread is a pool that needs no lock.

A kept connection that the server has closed meanwhile fails as the request is written or as
its answer is awaited; the request is then sent once more on a new connection. Both may have
reached ECS: RunTask's client token makes the second a replay, not a second launch.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading

_CLOSED_UNDER_US = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)
"""What a kept connection the server closed meanwhile fails with (not a timeout)."""


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
        self._port = port
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []  # every thread's, for close()
        self._lock = threading.Lock()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The answer's status and body; raises OSError or http.client.HTTPException when
        there is none."""
        kept: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if kept is not None:
            try:
                return self._exchange(kept, path, body, headers)
            except _CLOSED_UNDER_US:
                pass  # closed while kept: once more, on a new connection
        return self._exchange(self._connect(), path, body, headers)

    def close(self) -> None:
        """Close every thread's connection (a thread's next ``post`` opens another)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _exchange(
        self, connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        self._local.connection = None  # kept again only once its answer is read whole
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._local.connection = connection
        return response.status, data

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._tls is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        else:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._tls
            )
        connection.connect()
        with self._lock:
            self._opened = [kept for kept in self._opened if kept.sock is not None]
            self._opened.append(connection)
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection
