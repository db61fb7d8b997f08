"""Per-thread keep-alive connections (scheduld/connections.py) against a real socket server on
127.0.0.1 that closes a kept connection behind the client's back, as ECS's load balancers do
with idle ones."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from scheduld.connections import ThreadConnections

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _ClosesAfterOneRequest:
    """Answers one request per connection, keep-alive promised, then closes it."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                data = b""
                while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(ANSWER)

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def server() -> Iterator[_ClosesAfterOneRequest]:
    served = _ClosesAfterOneRequest()
    yield served
    served.close()


def test_a_connection_closed_while_kept_is_replaced_and_the_request_sent_again(
    server: _ClosesAfterOneRequest,
) -> None:
    connections = ThreadConnections(
        host="127.0.0.1", port=server.port, tls=None, connect_timeout=2.0, read_timeout=2.0
    )
    try:
        first = connections.post("/", b'{"n":1}', {"Content-Type": "application/json"})
        second = connections.post("/", b'{"n":2}', {"Content-Type": "application/json"})
    finally:
        connections.close()
    assert first == (200, b"{}") and second == (200, b"{}")
    assert server.connections == 2
    assert [request.rsplit(b"\r\n\r\n", 1)[1] for request in server.requests] == [b'{"n":1}', b'{"n":2}']
    # each connection carried one whole request, nothing left over from another
    assert all(request.startswith(b"POST / HTTP/1.1\r\n") for request in server.requests)
