"""Per-thread keep-alive connections (scheduld/connections.py) against a real socket server on
127.0.0.1 that answers each request with the next of a script: kept connections closed behind
the client's back (as ECS's load balancers close idle ones), chunked and close-delimited
answers, answers cut short or not HTTP, silence, and TLS."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trustme

from scheduld.connections import MalformedAnswer, ThreadConnections

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
HEADERS = {"Host": "ecs.test", "Content-Type": "application/json"}


@dataclass
class Step:
    """What the server sends for one request, and whether it then closes the connection."""

    answer: bytes
    close: bool = False
    silent: bool = False  # sends nothing (and keeps the connection open) until the test ends


@dataclass
class _Scripted:
    """Answers the requests it reads, on any connection, with the script's steps in turn."""

    script: list[Step]
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):  # a client that does not trust us
                conn.close()
                return
        self.connections += 1
        with conn:
            while self.script:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                step = self.script.pop(0)
                if step.silent:
                    self._done.wait(10)
                    return
                conn.sendall(step.answer)
                if step.close:
                    return

    def close(self) -> None:
        self._done.set()
        self._socket.close()


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")).split()[1])
    while len(body) < length:
        body += conn.recv(65536)
    return data


Serve = Callable[..., "_Scripted"]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[_Scripted] = []

    def start(*script: Step, tls: ssl.SSLContext | None = None) -> _Scripted:
        servers.append(_Scripted(list(script), tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _connections(
    server: _Scripted, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> ThreadConnections:
    return ThreadConnections(host=host, port=server.port, tls=tls, connect_timeout=2.0, read_timeout=1.0)


def _bodies(server: _Scripted) -> list[bytes]:
    return [request.partition(b"\r\n\r\n")[2] for request in server.requests]


def test_a_connection_closed_while_kept_is_replaced_and_the_request_sent_again(serve: Serve) -> None:
    server = serve(Step(OK, close=True), Step(OK, close=True))
    connections = _connections(server)
    try:
        first = connections.post("/", b'{"n":1}', HEADERS)
        second = connections.post("/", b'{"n":2}', HEADERS)
    finally:
        connections.close()
    assert first == (200, b"{}") and second == (200, b"{}")
    assert server.connections == 2
    assert _bodies(server) == [b'{"n":1}', b'{"n":2}']
    # one whole request on each connection, its head as sent and nothing left over from another
    head = server.requests[0].partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert head == [
        b"POST / HTTP/1.1",
        b"Host: ecs.test",
        b"Content-Type: application/json",
        b"Content-Length: 7",
    ]


def test_keeps_the_connection_for_the_next_request(serve: Serve) -> None:
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n'
    server = serve(Step(chunked), Step(OK), Step(b"HTTP/1.1 400 Bad\r\nContent-Length: 3\r\n\r\nbad"))
    connections = _connections(server)
    try:
        answers = [connections.post("/", b"{}", HEADERS) for _ in range(3)]
    finally:
        connections.close()
    assert answers == [(200, b'{"a":1}'), (200, b"{}"), (400, b"bad")]
    assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
)
def test_an_answer_that_ends_the_connection_is_not_kept(serve: Serve, answer: bytes) -> None:
    server = serve(Step(answer), Step(OK))
    connections = _connections(server)
    try:
        assert connections.post("/", b"{}", HEADERS) == (200, b"{}")
        assert connections.post("/", b"{}", HEADERS) == (200, b"{}")
    finally:
        connections.close()
    assert server.connections == 2  # the second request never met a connection that was ending
    assert len(server.requests) == 2


def test_an_answer_without_a_length_ends_with_the_connection(serve: Serve) -> None:
    server = serve(Step(b'HTTP/1.1 200 OK\r\n\r\n{"whole":true}', close=True))
    connections = _connections(server)
    try:
        assert connections.post("/", b"{}", HEADERS) == (200, b'{"whole":true}')
    finally:
        connections.close()


@pytest.mark.parametrize(
    ("step", "raised"),
    [
        (Step(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", close=True), http.client.IncompleteRead),
        (Step(b"HTTP/1.1 200 OK\r\nContent-", close=True), http.client.IncompleteRead),
        (Step(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", close=True), MalformedAnswer),
        (Step(b"", silent=True), TimeoutError),
    ],
    ids=["body cut short", "head cut short", "not HTTP", "no answer"],
)
def test_a_broken_answer_raises_and_is_not_sent_again(
    serve: Serve, step: Step, raised: type[Exception]
) -> None:
    """Only a connection closed before a byte of the answer is retried: ECS may have acted on
    the request, so the caller hands it to botocore (tests/scheduld/test_signed_runtask.py)."""
    server = serve(step, Step(OK))
    connections = _connections(server)
    try:
        with pytest.raises(raised):
            connections.post("/", b"{}", HEADERS)
        assert issubclass(raised, http.client.HTTPException | OSError)
        assert len(server.requests) == 1
        assert connections.post("/", b"{}", HEADERS) == (200, b"{}")  # on a new connection
    finally:
        connections.close()
    assert server.connections == 2


def test_a_header_value_with_a_line_break_is_refused_unsent(serve: Serve) -> None:
    server = serve(Step(OK))
    connections = _connections(server)
    try:
        with pytest.raises(ValueError, match="X-Amz-Security-Token"):
            connections.post("/", b"{}", {**HEADERS, "X-Amz-Security-Token": "t\r\nX-Injected: 1"})
    finally:
        connections.close()
    assert server.connections == 0


def test_speaks_tls_verified_against_the_given_authority(serve: Serve) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    server = serve(Step(OK), Step(OK), tls=server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    connections = _connections(server, tls=trusting, host="localhost")
    try:
        assert connections.post("/", b"{}", HEADERS) == (200, b"{}")
        assert connections.post("/", b"{}", HEADERS) == (200, b"{}")
    finally:
        connections.close()
    assert server.connections == 1

    stranger = _connections(server, tls=ssl.create_default_context(), host="localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.post("/", b"{}", HEADERS)
    stranger.close()
