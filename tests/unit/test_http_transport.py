"""`strongroom._http`: the client's transport (http.client, httpx behind a proxy), against a
small real HTTP/1.1 server on a loopback port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from strongroom import _http


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "body": body,
                "type": self.headers.get("Content-Type"),
                "auth": self.headers.get("Authorization"),
                "client": self.client_address,
            }
        )
        if self.path.startswith("/prefix/stream"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in (b'{"n": 1}\n', b'{"n": 2}\n'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
            return
        status = 429 if "busy" in self.path else 200
        out = json.dumps({"ok": True}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if status == 429:
            self.send_header("Retry-After", "7")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/prefix/", seen
    httpd.shutdown()
    httpd.server_close()


def test_requests_answers_and_a_path_prefix(server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = server
    http = _http.open_http(url.rstrip("/"), {"Authorization": "Bearer t"}, timeout=5, verify=None)
    assert type(http).__name__ == "_Stdlib"
    answer = http.request("POST", "/api/x", json={"a": "ü"}, params={"f": True, "n": 2, "e": None})
    assert answer.is_success and answer.json() == {"ok": True}
    assert seen[0]["path"] == "/prefix/api/x?f=true&n=2&e="  # as httpx writes them
    assert json.loads(seen[0]["body"]) == {"a": "ü"}
    assert seen[0]["type"] == "application/json" and seen[0]["auth"] == "Bearer t"
    http.headers["Authorization"] = "Bearer other"  # (what `Client.login` does)
    busy = http.request("GET", "/busy")
    assert busy.status_code == 429 and busy.headers.get("retry-after") == "7"
    assert seen[1]["auth"] == "Bearer other"
    # one keep-alive connection for both requests
    assert seen[0]["client"] == seen[1]["client"]
    http.close()


def test_a_connection_the_server_closed_is_replaced(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    http = _http.open_http(url.rstrip("/"), {}, timeout=5, verify=None)
    http.request("GET", "/one")
    conn = http._local.conn  # type: ignore[attr-defined]
    conn.sock.shutdown(1)  # the server sees EOF and closes its side: an idle timeout's effect
    deadline = threading.Event()
    for _ in range(100):  # until the close has arrived (poll with a deadline, no fixed sleep)
        if _http._closed_by_peer(conn.sock):
            break
        deadline.wait(0.01)
    assert http.request("GET", "/two").is_success
    assert seen[0]["client"] != seen[1]["client"]  # a new connection
    http.close()


def test_streamed_lines(server: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = server
    http = _http.open_http(url.rstrip("/"), {}, timeout=5, verify=None)
    with http.stream("GET", "/stream", params={"format": "jsonl"}) as answer:
        assert answer.is_success
        assert [json.loads(line) for line in answer.iter_lines() if line] == [
            {"n": 1},
            {"n": 2},
        ]
    assert http.request("GET", "/after").is_success  # the connection is usable afterwards
    http.close()


def test_threads_each_use_their_own_connection(server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = server
    http = _http.open_http(url.rstrip("/"), {}, timeout=5, verify=None)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(20):
                assert http.request("GET", f"/n{i}").is_success
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(seen) == 80
    assert len({entry["client"] for entry in seen}) == 4
    http.close()


def test_an_unreachable_server() -> None:
    http = _http.open_http("http://127.0.0.1:9", {}, timeout=5, verify=None)
    with pytest.raises(_http.Unreachable, match="ConnectionRefusedError"):
        http.request("GET", "/api/vault/health")


def test_a_proxy_in_the_environment_goes_through_httpx(
    monkeypatch: pytest.MonkeyPatch, server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = server
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    http = _http.open_http(url.rstrip("/"), {}, timeout=5, verify=None)
    assert type(http).__name__ == "_Httpx"
    assert http.request("GET", "/via-httpx", params={"f": False}).json() == {"ok": True}
    assert seen[0]["path"] == "/prefix/via-httpx?f=false"
    http.close()


def test_an_httpx_transport_is_used_as_given() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"path": request.url.path})

    http = _http.open_http(
        "http://vault.test", {}, timeout=5, verify=None, transport=httpx.MockTransport(answer)
    )
    assert http.request("GET", "/api/vault/health").json() == {"path": "/api/vault/health"}
    with pytest.raises(ValueError, match="http:// or https://"):
        _http.open_http("ftp://x", {}, timeout=5, verify=None)
