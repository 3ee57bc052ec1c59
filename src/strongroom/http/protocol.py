"""The HTTP/1.1 protocol of `vaultctl server`: uvicorn's httptools parser, taught Vault's LIST,
answering requests it cannot parse in JSON.

httptools (llhttp) rejects methods it does not know, and Vault clients such as hvac send `LIST`.
Vault treats `LIST /v1/p` exactly as `GET /v1/p?list=true`, so a `LIST` request line is
rewritten to that before parsing, wherever a request starts in the received bytes. The
alternative, uvicorn's pure-Python h11 parser, accepts any method but halved the server's
throughput (docs/decisions.md).

A request the parser refuses (invalid UTF-8 or NUL in the request line, a bare CR in a header,
a duplicate `Content-Length`, an over-long request line, header fields over `MAX_HEAD` bytes, an
unknown method) is answered here, before any application code runs, in JSON: the `/v1` dialect
(`{"errors": [...]}`) when the request's path starts with `/v1`, else the `/api` dialect
(`{"error", "code"}`), with the status RFC 9110/9112 and RFC 6585 give it (400; 414 for a request
target over `MAX_TARGET` bytes; 431 for header fields over `MAX_HEAD` bytes; 501 for a method the
server does not implement), and the connection is closed the way nginx and Apache close it
after an error ("lingering close"): the answer is written, the sending side shut (FIN), and what
the client still sends is read and dropped until it hangs up, for at most `LINGER_SECONDS` and
`LINGER_BYTES`. Closing a socket with unread bytes in it makes the kernel reset the connection
(RST), and a reset can destroy the answer before the client reads it: a client that sent 120 KB
of headers got ECONNRESET instead of its 431. Through TLS the connection closes at once (TLS
has no end of stream short of closing). After pipelined requests still being answered, the
refusal waits its turn: answers go out in the order of the requests.

uvicorn's httptools protocol puts no bound on header fields (its h11 protocol has
`h11_max_incomplete_event_size`, 16 KiB, answered as a text/plain 400): the head is bounded here,
both as parsed fields (`on_header`) and as bytes received while the head is incomplete, so one
endless header line cannot grow the server's memory either. Such requests are logged at debug
level only: anyone can send them, so they must not flood the log (uvicorn logs a warning each).

uvicorn writes a response's head and its body separately: two `send` calls and two TCP segments
per response. `OneWriteCycle` holds the head of a response of known length until its body and
writes both at once (reads +5 % at concurrency 16: docs/decisions.md, "Speed, round seven").
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from strongroom.http.balance import Balance

__all__ = ["MAX_HEAD", "MAX_TARGET", "VaultHTTPProtocol", "list_as_get", "protocol_error"]

_LIST = b"LIST "
#: The longest request target (path and query) accepted: RFC 9112 3 recommends at least 8000.
MAX_TARGET = 16 * 1024
#: The most bytes of header fields accepted in one request (Go's net/http allows 1 MiB, nginx
#: 32 KiB by default; a JWT is a few KiB).
MAX_HEAD = 64 * 1024
log = logging.getLogger("strongroom.http")
#: After refusing a request, how long and how much of what the client still sends is read and
#: dropped before the connection is closed (nginx: `lingering_time` 30 s; a refused client has
#: nothing more to say, so a short bound).
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024 * 1024
#: RFC 9110 5.6.2: a method is a token.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")

#: status -> (message, `/api` code)
_REFUSALS = {
    400: ("malformed HTTP request", "invalid_input"),
    414: (f"request target longer than {MAX_TARGET} bytes", "uri_too_long"),
    431: (f"request header fields larger than {MAX_HEAD} bytes", "headers_too_large"),
    501: ("method not implemented", "not_implemented"),
}


def list_as_get(data: bytes) -> bytes:
    """`LIST <target> HTTP/1.1...` -> `GET <target>?list=true HTTP/1.1...` (else unchanged)."""
    if not data.startswith(_LIST):
        return data
    line_end = data.find(b"\r\n")
    if line_end < 0:
        return data
    parts = data[len(_LIST) : line_end].split(b" ")
    if len(parts) != 2:
        return data
    target, version = parts
    target += b"&list=true" if b"?" in target else b"?list=true"
    return b"GET " + target + b" " + version + data[line_end:]


def protocol_error(status: int, target: bytes) -> bytes:
    """The whole HTTP response refusing an unparseable request whose target is `target` (may
    be empty or partial): JSON in the dialect of the path, `Connection: close`."""
    message, code = _REFUSALS.get(status, _REFUSALS[400])
    path = target.split(b"?", 1)[0]
    is_v1 = path == b"/v1" or path.startswith(b"/v1/")
    body: dict[str, object] = {"errors": [message]} if is_v1 else {"error": message, "code": code}
    data = json.dumps(body, separators=(",", ":")).encode("ascii")
    head = [
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"cache-control: no-store\r\n",
        b"content-length: " + str(len(data)).encode("ascii") + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + data


def _status_of(exc: httptools.HttpParserError, target: bytes, data: bytes) -> int:
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        # A well-formed token is a method we do not implement; anything else (a TLS
        # handshake on the plain-text port, binary noise) is a malformed request line.
        return 501 if _TOKEN.fullmatch(data.split(b" ", 1)[0]) else 400
    if len(target) > MAX_TARGET:
        return 414
    return 400


class _Held:
    """The transport a response's head is written to while it is held (`OneWriteCycle`)."""

    __slots__ = ("head", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport, self.head = transport, b""

    def write(self, data: bytes) -> None:
        self.head += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


#: Above this size a body goes out with its head as two buffers of one `writelines` (no copy).
_JOIN_LIMIT = 64 * 1024


class _Joined:
    """The transport of a response whose head is held: its first write carries the head, and
    closing it first writes a head still held (an app that failed after starting its
    response: the client gets the head and a closed connection, as from uvicorn)."""

    __slots__ = ("head", "transport")

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport, self.head = transport, head

    def write(self, data: bytes) -> None:
        head, self.head = self.head, b""
        if len(data) <= _JOIN_LIMIT:
            self.transport.write(head + data)
        else:
            self.transport.writelines((head, data))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def flush(self) -> None:
        """Write a head still held."""
        head, self.head = self.head, b""
        if head and not self.transport.is_closing():
            self.transport.write(head)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _Lingering:
    """The transport of a response that closes the connection before the request's body was
    read (an early 413): closing it lingers (`VaultHTTPProtocol.linger`) instead of
    resetting the connection under the client's feet."""

    __slots__ = ("protocol", "transport")

    def __init__(self, transport: Any, protocol: VaultHTTPProtocol) -> None:
        self.transport, self.protocol = transport, protocol

    def close(self) -> None:
        self.protocol.linger()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, but a response of known length (`Content-Length`)
    holds its head until its body comes, and both go out in one write: one `send` and one TCP
    segment instead of two per response. Streamed responses (chunked, no length: the audit
    export, event streams) send their head at once, as uvicorn does: a client waiting for
    the first event gets the head without waiting for it. While a head is held the cycle's
    transport is a `_Joined` around the connection's, which writes the head first however the
    response goes on (its body, an error, uvicorn closing the connection)."""

    async def send(self, message: Any) -> None:  # (uvicorn's ASGISendEvent)
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()  # (uvicorn's own; here, so no await runs while swapped)
        joined: Any = self.transport  # (a `_Joined` while a head is held)
        if isinstance(joined, _Joined):
            try:
                await super().send(message)
            finally:
                self.transport = joined.transport
                if not self.disconnected:
                    joined.flush()  # nothing written (an error): the head alone
            return
        if message["type"] != "http.response.start" or self.response_started:
            await super().send(message)
            return
        transport = self.transport
        held = _Held(transport)
        self.transport = cast("asyncio.Transport", held)
        try:
            await super().send(message)
        finally:
            self.transport = transport
        if not self.keep_alive and self.more_body:
            # Answering, then closing, before the request's body came (an early 413).
            protocol = getattr(self.on_response, "__self__", None)
            if isinstance(protocol, VaultHTTPProtocol):
                transport = cast("asyncio.Transport", _Lingering(transport, protocol))
                self.transport = transport
        if self.chunked_encoding is False and self.scope["method"] != "HEAD":
            self.transport = cast("asyncio.Transport", _Joined(transport, held.head))
        elif held.head:
            transport.write(held.head)


class VaultHTTPProtocol(HttpToolsProtocol):
    """httptools with LIST accepted as Vault accepts it, protocol errors answered in JSON;
    in a worker of several, keep-alive connections kept spread over the workers."""

    #: A worker's share of the connection table (`http.balance`); None with one process.
    balance: ClassVar[Balance | None] = None
    #: This connection counts in the worker's share (it sent a request).
    _counted = False
    #: This connection's next answer says `Connection: close`, for balance.
    _leaving = False

    #: Bytes of header fields parsed in the current request.
    _header_bytes = 0
    #: Bytes received since the last complete head while no body was being read.
    _pending_head = 0
    #: Heads completed on this connection, and whether a body is being read.
    _heads = 0
    _in_body = False
    _head_too_large = False
    #: No request is being parsed: the next bytes start one (its request line may be LIST).
    _between = True
    #: A request was refused: bytes still to drop before closing (see `_refuse`), else None.
    _lingering: int | None = None
    #: The answer to a refused request, held until earlier pipelined requests are answered.
    _refusal: bytes | None = None

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering -= len(data)
            if self._lingering < 0:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        heads, in_body = self._heads, self._in_body
        try:
            self._feed(data)
            if heads == self._heads and not in_body and not self._in_body:
                # Still inside one head: one endless header line must not grow memory.
                self._pending_head += len(data)
                if self._pending_head > MAX_HEAD + MAX_TARGET:
                    self._head_too_large = True
                    raise httptools.HttpParserError("request head too large")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            target = self.url or _sniff_target(data)
            status = 431 if self._head_too_large else _status_of(exc, target, data)
            log.debug("refused an unparseable HTTP request (%d)", status)
            self._refuse(protocol_error(status, target))

    def _refuse(self, answer: bytes) -> None:
        """Write `answer` and close the connection without a reset destroying it: shut the
        sending side, drop what the client still sends until it hangs up or `LINGER_BYTES`/
        `LINGER_SECONDS` run out, then close."""
        if self._answering():
            # Earlier pipelined requests are still being answered: this answer goes after
            # theirs (`on_response_complete`); what the client sends meanwhile is dropped.
            self._refusal, self._lingering = answer, LINGER_BYTES
            return
        self.transport.write(answer)
        self.linger()

    def _answering(self) -> bool:
        """A request of this connection is still being answered, or waits its turn."""
        cycle = self.cycle
        return bool(self.pipeline) or (cycle is not None and not cycle.response_complete)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal is not None and not self._answering():
            answer, self._refusal, self._lingering = self._refusal, None, None
            if not self.transport.is_closing():
                self.transport.write(answer)
                self.linger()

    def linger(self) -> None:
        """Close after an answer without reading the request to its end (see `_refuse`).
        Through TLS, which has no end of stream short of closing, close at once (its close
        sends TLS's close_notify first)."""
        transport = self.transport
        if self._lingering is not None or transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        self._lingering = LINGER_BYTES
        transport.write_eof()  # the client reads the answer, then end of stream
        self.loop.call_later(LINGER_SECONDS, transport.close)

    def _feed(self, data: bytes) -> None:
        """Parse `data`, rewriting a LIST request line wherever a request starts in it: at
        the start of the chunk, or after a request that ends inside it (a body the client sent
        after the server had answered, or pipelined requests)."""
        at = data.find(_LIST, 1)
        while at > 0:
            self._feed_one(data[:at])
            data = data[at:]
            at = data.find(_LIST, 1)
        self._feed_one(data)

    def _feed_one(self, data: bytes) -> None:
        self.parser.feed_data(list_as_get(data) if self._between else data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._between = False

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header field, refusing header fields over `MAX_HEAD` bytes (431)."""
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_bytes > MAX_HEAD:
            self._head_too_large = True
            raise httptools.HttpParserError("request header fields too large")
        super().on_header(name, value)

    @classmethod
    def balanced(cls, balance: Balance) -> type[VaultHTTPProtocol]:
        """This protocol for a worker of several, serving its share of the connections."""
        return cast("type[VaultHTTPProtocol]", type(cls.__name__, (cls,), {"balance": balance}))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._uncount()

    def handle_websocket_upgrade(self) -> None:
        self._uncount()  # no longer this protocol's: its connection_lost will not run
        super().handle_websocket_upgrade()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            if self.balance is not None and not self._leaving:
                self.balance.left()

    def on_headers_complete(self) -> None:
        self._heads += 1
        self._pending_head = 0
        self._in_body = True
        if self._heads == 1 and self.balance is not None:
            self._counted = True  # a connection counts once it sends a request
            self.balance.joined()
        super().on_headers_complete()
        cycle = self.cycle
        if type(cycle) is RequestResponseCycle:
            # (created by uvicorn just now; its task looks `send` up when it first runs)
            cycle.__class__ = OneWriteCycle

    def on_message_complete(self) -> None:
        self._in_body = False
        self._between = True
        super().on_message_complete()
        balance, cycle = self.balance, self.cycle
        if (
            balance is not None
            and self._counted
            and not self._leaving
            and cycle is not None
            and cycle.keep_alive
            and not cycle.response_started  # decided with the whole request read
            and balance.crowded()
        ):
            # Answered with `Connection: close`; the client's next connection goes to
            # whichever worker accepts first.
            cycle.keep_alive = False
            self._leaving = True
            balance.closing()

    def on_url(self, url: bytes) -> None:
        """Collect the request target, refusing one over `MAX_TARGET` bytes (414)."""
        super().on_url(url)
        if len(self.url) > MAX_TARGET:
            raise httptools.HttpParserError("request target too long")


def _sniff_target(data: bytes) -> bytes:
    """The target of a request line the parser gave up on before reading it (bad method)."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return parts[1] if len(parts) >= 3 else b""
