"""The HTTP transport of `strongroom.client`: the standard library's `http.client`, one
keep-alive connection per thread, or httpx where the environment names a proxy (httpx honours
`HTTPS_PROXY`, `NO_PROXY` and the rest) or the caller passes an httpx transport.

Importing httpx and building its client cost ~100 ms of every `vaultctl --addr ...` call on
this project's VMs, more than a third of it (issue #16 asks for 150 ms; docs/decisions.md,
"Speed, round eight"); `http.client` costs a few. Both give the client the same small
interface (`request`, `stream`, `headers`, `close`), the same answers, and the same failure
(`Unreachable`) when the server cannot be reached or the exchange breaks off.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

__all__ = ["Http", "Response", "Unreachable", "open_http"]

#: Environment variables that name a proxy (any case): httpx then carries the requests.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
USER_AGENT = "strongroom-client"


class Unreachable(Exception):
    """The server could not be reached, or the exchange broke off (the cause's type name is
    the message: never a URL with credentials, never a body)."""


class Response:
    """An answer: status, headers (case-insensitive `get`), body."""

    def __init__(self, status_code: int, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        """The body as JSON.

        Raises:
            ValueError: it is not JSON.
        """
        return json.loads(self.content)


class Stream(Protocol):
    """An answer whose body is read as it arrives (`Http.stream`)."""

    status_code: int
    headers: Any

    @property
    def is_success(self) -> bool: ...

    def read(self) -> bytes: ...

    def json(self) -> Any: ...

    def iter_lines(self) -> Iterator[str]: ...


class Http(Protocol):
    """What `Client` needs of a transport."""

    headers: dict[str, str]

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Response: ...

    def stream(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[Stream]: ...

    def close(self) -> None: ...


def open_http(
    base_url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    verify: ssl.SSLContext | None,
    transport: Any = None,
) -> Http:
    """A transport to `base_url` (http:// or https://, maybe with a path prefix). `verify`: the
    context that checks an https server (None: `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else
    certifi's bundle, as httpx does). `transport`: an httpx transport (tests)."""
    if transport is not None or _proxied():
        return _Httpx(base_url, headers, timeout=timeout, verify=verify, transport=transport)
    return _Stdlib(base_url, headers, timeout=timeout, verify=verify)


def _proxied() -> bool:
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES)


def _query(params: Mapping[str, Any] | None) -> str:
    """`params` as a query string, values written as httpx writes them."""
    if not params:
        return ""

    def text(value: Any) -> str:
        if value is True:
            return "true"
        if value is False:
            return "false"
        return "" if value is None else str(value)

    return "?" + urlencode([(key, text(value)) for key, value in params.items()])


def _body(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class _Stdlib:
    """`http.client`, one keep-alive connection per thread (a connection the server closed
    while idle is replaced before it is used)."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        verify: ssl.SSLContext | None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the server's address must be an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._context = verify if verify is not None or not self._https else _default_context()
        self.headers: dict[str, str] = {"User-Agent": USER_AGENT, **headers}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[http.client.HTTPConnection] = []

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and _closed_by_peer(conn.sock):
            self._drop(conn)
            conn = None
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._open.append(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        conn.close()

    def _send(
        self, method: str, url: str, document: Any, params: Mapping[str, Any] | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        headers = dict(self.headers)
        body = None
        if document is not None:
            body = _body(document)
            headers["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, self._prefix + url + _query(params), body=body, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(conn)
            raise Unreachable(type(exc).__name__) from exc

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Response:
        conn, answer = self._send(method, url, json, params)
        try:
            content = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(conn)
            raise Unreachable(type(exc).__name__) from exc
        if answer.will_close:
            self._drop(conn)
        return Response(answer.status, answer.headers, content)

    @contextmanager
    def stream(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[Stream]:
        conn, answer = self._send(method, url, None, params)
        complete = False
        try:
            yield _StdlibStream(answer)
            complete = answer.isclosed() and not answer.will_close
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(type(exc).__name__) from exc
        finally:
            if not complete:
                self._drop(conn)  # (a body not read to its end cannot be followed on it)

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for conn in connections:
            conn.close()


class _StdlibStream:
    def __init__(self, answer: http.client.HTTPResponse) -> None:
        self._answer = answer
        self.status_code = answer.status
        self.headers = answer.headers
        self._content: bytes | None = None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def read(self) -> bytes:
        if self._content is None:
            self._content = self._answer.read()
        return self._content

    def json(self) -> Any:
        return json.loads(self.read())

    def iter_lines(self) -> Iterator[str]:
        for line in self._answer:
            yield line.decode().rstrip("\r\n")


def _closed_by_peer(sock: Any) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it (or
    sent something unasked for); either way it is not reused."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _default_context() -> ssl.SSLContext:
    """What httpx verifies a server with by default: `SSL_CERT_FILE` or `SSL_CERT_DIR` when
    set, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi  # (httpx's own dependency)

    return ssl.create_default_context(cafile=certifi.where())


class _Httpx:
    """httpx, for proxies (it reads them from the environment) and httpx transports."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        verify: ssl.SSLContext | None,
        transport: Any,
    ) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=timeout,
            transport=transport,
            verify=verify if verify is not None else True,
        )
        self.headers: Any = self._client.headers

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Response:
        try:
            answer = self._client.request(method, url, json=json, params=params)
        except self._httpx.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from exc
        return Response(answer.status_code, answer.headers, answer.content)

    @contextmanager
    def stream(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[Stream]:
        try:
            with self._client.stream(method, url, params=params) as answer:
                yield answer
        except self._httpx.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from exc

    def close(self) -> None:
        self._client.close()
