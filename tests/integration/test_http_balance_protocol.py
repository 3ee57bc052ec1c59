"""The server's HTTP protocol in a worker of several (`http.balance`): which answers close their
connection for balance, and that the worker's published count never drifts. A real uvicorn
server on a loopback port, in a thread; the other worker is simulated through the table."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from strongroom.http import balance as b
from strongroom.http.balance import Balance, BalancedServer, ConnectionTable
from strongroom.http.protocol import VaultHTTPProtocol

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            done = message["type"].replace("startup", "startup.complete")
            await send({"type": done.replace("shutdown", "shutdown.complete")})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    early = scope["path"] == "/early"  # answers before reading the body, as a 413 does
    while not early and (await receive()).get("more_body"):
        pass
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 413 if early else 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Worker:
    def __init__(self, table: ConnectionTable, port: int) -> None:
        self.table, self.port = table, port
        self.balance = Balance(table, 0)
        config = uvicorn.Config(
            _app,
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http=VaultHTTPProtocol.balanced(self.balance),
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
        self.server = BalancedServer(config, self.balance)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def peer_holds(self, count: int) -> None:
        """The other worker serves `count` connections and is alive."""
        self.table.counts[1] = count
        self.table.seen[1] = time.monotonic()

    def request(self, sock: socket.socket, raw: bytes) -> bytes:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b'{"ok":true}'):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def settled(self, held: int) -> None:
        """Wait until the worker counts `held` connections (closes are seen asynchronously)."""
        deadline = time.monotonic() + 10
        while self.balance.held != held or self.table.counts[0] != held:
            assert time.monotonic() < deadline, (self.balance.held, self.table.counts[0])
            time.sleep(0.01)


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    monkeypatch.setattr(b, "GAP", 0.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    table = ConnectionTable(2)
    running = Worker(table, port)
    running.thread.start()
    deadline = time.monotonic() + 10
    while table.counts[0] != 0:  # published once it serves
        assert time.monotonic() < deadline, "the worker never started serving"
        time.sleep(0.01)
    try:
        yield running
    finally:
        running.server.should_exit = True
        running.thread.join(10)
        gc.unfreeze()  # (the server froze this test process's heap: `http.uvserver`)
    assert table.counts[0] == -1  # stopped: left out by the others


def _connect(worker: Worker) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", worker.port))
    sock.settimeout(10)
    return sock


GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


def test_a_crowded_worker_closes_after_a_whole_answer(worker: Worker) -> None:
    worker.peer_holds(1)
    idle = _connect(worker)  # connected, no request: no load
    socks = [_connect(worker) for _ in range(3)]
    answers = [worker.request(sock, GET) for sock in socks]
    closed = [b"connection: close" in answer.lower() for answer in answers]
    assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
    assert closed == [False, False, True]  # the third made it serve 3 against 1
    assert socks[2].recv(10) == b""  # closed by the server after its answer
    worker.settled(2)
    worker.peer_holds(2)
    assert b"connection: close" not in worker.request(socks[0], GET).lower()  # balanced
    for sock in [idle, *socks]:
        sock.close()
    worker.settled(0)


def test_an_answer_before_the_body_is_read_is_not_cut_short(worker: Worker) -> None:
    """Closing is decided once the whole request is read, and only before its answer starts:
    a connection answered early (a 413, a 403) is not closed under the client's body."""
    worker.peer_holds(1)
    socks = [_connect(worker) for _ in range(3)]
    for sock in socks[:2]:
        worker.request(sock, GET)
    head = b"PUT /early HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n"
    socks[2].sendall(head)
    answer = socks[2].recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" not in answer.lower()
    socks[2].sendall(b"x" * 200_000)  # the rest of the body, after the answer (crowded now)
    # That request was not marked for closing (its answer had started); the next one is.
    answer = worker.request(socks[2], GET)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" in answer.lower()
    for sock in socks:
        sock.close()
    worker.settled(0)


def test_an_upgrade_leaves_the_count_as_it_was(worker: Worker) -> None:
    worker.peer_holds(0)
    socks = [_connect(worker) for _ in range(3)]
    for sock in socks[:2]:
        worker.request(sock, GET)
    # A request answered with `Connection: close` for balance, an upgrade pipelined behind it.
    socks[2].sendall(GET + UPGRADE)
    while socks[2].recv(65536):
        pass
    lone = _connect(worker)  # an upgrade as a connection's first request
    lone.sendall(UPGRADE)
    while lone.recv(65536):
        pass
    for sock in [*socks, lone]:
        sock.close()
    worker.settled(0)
