"""LIST requests become Vault's equivalent GET ?list=true before httptools parses them; a
response of known length goes out in one write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState as UvicornState

from strongroom.http.protocol import OneWriteCycle, VaultHTTPProtocol, list_as_get


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"LIST /v1/secret/metadata/a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v1/secret/metadata/a?list=true HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            b"LIST /v1/secret/metadata/?after=b HTTP/1.1\r\n\r\n",
            b"GET /v1/secret/metadata/?after=b&list=true HTTP/1.1\r\n\r\n",
        ),
        (b"GET /v1/sys/health HTTP/1.1\r\n\r\n", b"GET /v1/sys/health HTTP/1.1\r\n\r\n"),
        (b"LIST /incomplete", b"LIST /incomplete"),
        (b"LIST a b c\r\n\r\n", b"LIST a b c\r\n\r\n"),
    ],
)
def test_list_as_get(raw: bytes, expected: bytes) -> None:
    assert list_as_get(raw) == expected


# --------------------------------------------------------------------------------------------
# One write per response of known length (`OneWriteCycle`), through the real protocol.
# --------------------------------------------------------------------------------------------

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class _Transport(asyncio.Transport):
    """Records what the protocol writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.buffers: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        addresses = {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8200)}
        return addresses.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.buffers = list(list_of_data)
        self.writes.append(b"".join(self.buffers))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0)


def _connect(app: ASGIApp, request: bytes) -> tuple[VaultHTTPProtocol, _Transport]:
    """`VaultHTTPProtocol` serving `app`, on a new connection that has sent `request` (call it
    on a running loop)."""
    config = Config(app=app, lifespan="off", log_config=None)
    config.load()
    protocol = VaultHTTPProtocol(config=config, server_state=UvicornState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    return protocol, transport


def _answered(protocol: VaultHTTPProtocol) -> bool:
    return protocol.cycle is not None and protocol.cycle.response_complete


async def _serve(app: ASGIApp, request: bytes) -> tuple[VaultHTTPProtocol, _Transport]:
    """`request` through `VaultHTTPProtocol` serving `app`, to its complete response."""
    protocol, transport = _connect(app, request)
    await _until(lambda: _answered(protocol))
    return protocol, transport


def _response_app(body: bytes, *, streamed: bool = False) -> ASGIApp:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain")]
        if not streamed:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if streamed:
            for part in (body[:2], body[2:]):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": body})

    return app


GET = b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_response_of_known_length_goes_out_in_one_write() -> None:
    protocol, transport = asyncio.run(_serve(_response_app(b"hello"), GET))
    assert type(protocol.cycle) is OneWriteCycle
    assert len(transport.writes) == 1
    head, body = transport.writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 5" in head
    assert body == b"hello"
    assert not transport.closed


def test_a_streamed_response_sends_its_head_before_its_body() -> None:
    _, transport = asyncio.run(_serve(_response_app(b"hello", streamed=True), GET))
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert b"".join(transport.writes[1:]) == b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"


def test_a_streamed_head_is_not_held_back_until_the_first_event() -> None:
    """An event stream's client gets the head while no event has come yet."""
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()
        await send({"type": "http.response.body", "body": b""})

    async def run() -> list[bytes]:
        protocol, transport = _connect(app, GET)
        await _until(lambda: bool(transport.writes))
        seen = list(transport.writes)
        release.set()
        await _until(lambda: _answered(protocol))
        return seen

    seen = asyncio.run(run())
    assert len(seen) == 1 and seen[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_head_request_gets_its_head_and_no_body() -> None:
    head_request = GET.replace(b"GET", b"HEAD", 1)
    _, transport = asyncio.run(_serve(_response_app(b"hello"), head_request))
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


def test_a_body_longer_than_announced_still_sends_the_head_once() -> None:
    """uvicorn refuses the body (an error, the connection closed): the head that was held goes
    out alone, as it did before it was held, and only once."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
        await send({"type": "http.response.body", "body": b"too long"})

    async def run() -> _Transport:
        _, transport = _connect(app, GET)
        await _until(lambda: transport.closed)
        return transport

    transport = asyncio.run(run())
    heads = [w for w in transport.writes if w.startswith(b"HTTP/1.1 200")]
    assert len(heads) == 1 and b"too long" not in b"".join(transport.writes)


def test_an_app_failing_after_its_head_still_sends_the_head_then_closes() -> None:
    """As from uvicorn: the client sees a response cut short, never a silent close."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        raise RuntimeError("failed after the head")

    async def run() -> _Transport:
        _, transport = _connect(app, GET)
        await _until(lambda: transport.closed)
        return transport

    transport = asyncio.run(run())
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


def test_a_large_body_goes_out_with_its_head_uncopied() -> None:
    body = b"x" * (256 * 1024)
    _, transport = asyncio.run(_serve(_response_app(body), GET))
    assert len(transport.writes) == 1  # one writelines: the head and the body's own buffer
    head, sent = transport.buffers
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
    assert sent is body
