"""Faults found by probing a real server from outside (#11 items 13-18): a client hanging up
mid-body, 405 without `Allow`, lenient types, `text/plain` protocol errors, 404s that kept the
vault awake."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.http.protocol import LINGER_SECONDS, MAX_HEAD, MAX_TARGET
from tests.integration.server_proc import ServerProcess, token
from tests.integration.tls_certs import CA

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("hardening")).start()
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def unique(prefix: str = "h") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def raw_request(server: ServerProcess, data: bytes, *, close: bool = False) -> bytes:
    """Send raw bytes; return everything the server answers until it closes (or 5 s)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(data)
        if close:
            return b""
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


_MANY_HEADERS = (
    b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(2000))
    + b"\r\n"
)


def status_of(answer: bytes) -> bytes:
    """The status code of the first response in `answer`."""
    return answer.split(b"\r\n", 1)[0].split(b" ")[1]


# --- 15: 405 carries Allow -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/vault/health", {"GET"}),
        ("DELETE", "/api/vault/secrets", {"GET", "POST"}),
        ("PATCH", "/api/vault/secrets/a/b", {"GET", "PUT", "DELETE"}),
        ("GET", "/api/vault/lock", {"POST"}),
        ("OPTIONS", "/v1/secret/data/a", {"GET", "POST", "PUT", "PATCH", "DELETE"}),
    ],
)
def test_405_carries_allow(api: httpx.Client, method: str, path: str, allowed: set[str]) -> None:
    response = api.request(method, path)
    assert response.status_code == 405, response.text
    given = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= given, given
    assert method not in given
    assert response.headers["content-type"] == "application/json"


# --- 16: a string is never an integer; a body that is not JSON is 400 -------------------------


def test_string_version_in_a_body_is_400(api: httpx.Client) -> None:
    path = unique()
    assert api.post("/api/vault/secrets", json={"path": path, "value": "v1"}).status_code == 201
    assert api.put(f"/api/vault/secrets/{path}", json={"value": "v2"}).status_code == 200
    refused = api.post(f"/api/vault/secrets/{path}/rollback", json={"version": "1"})
    assert refused.status_code == 400, refused.text
    assert api.post(f"/api/vault/secrets/{path}/rollback", json={"version": 1}).status_code == 200
    # Query strings are text by nature: digits there stay numbers.
    assert api.get(f"/api/vault/secrets/{path}", params={"version": "1"}).json()["value"] == "v1"
    cas = api.post(f"/v1/secret/data/{path}", json={"options": {"cas": "3"}, "data": {"a": "b"}})
    assert cas.status_code == 400, cas.text
    read = api.get(f"/v1/secret/data/{path}", params={"version": "1"})
    assert read.status_code == 200, read.text


@pytest.mark.parametrize("body", [b"\x0c", b"\x0b", b"\x0c{}", b"\x1c"])
def test_a_body_that_is_not_json_is_400(api: httpx.Client, body: bytes) -> None:
    json_type = {"content-type": "application/json"}
    answer = api.post("/api/vault/generate-token", content=body, headers=json_type)
    assert answer.status_code == 400, answer.text
    v1 = api.post(f"/v1/secret/data/{unique()}", content=body)
    assert v1.status_code == 400, v1.text


def test_an_empty_body_still_means_empty(api: httpx.Client) -> None:
    json_type = {"content-type": "application/json"}
    for body in (b"", b" \r\n\t"):
        answer = api.post("/api/vault/generate-token", content=body, headers=json_type)
        assert answer.status_code == 200, answer.text


# --- 13: a client hanging up mid-body is a normal event --------------------------------------


def disconnects(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    found = re.search(r"^strongroom_client_disconnects_total ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("authenticated", [False, True])
def test_client_disconnect_mid_body_is_quiet(
    server: ServerProcess, api: httpx.Client, authenticated: bool
) -> None:
    before, log_before = disconnects(api), len(server.output())
    target = "/api/vault/secrets" if authenticated else "/api/auth/login"
    headers = f"Authorization: {api.headers['authorization']}\r\n" if authenticated else ""
    raw_request(
        server,
        f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
        'Content-Length: 100\r\n\r\n{"a'.encode(),
        close=True,
    )
    deadline = time.monotonic() + 10
    while disconnects(api) < before + 1:
        assert time.monotonic() < deadline, "disconnect not counted"
        time.sleep(0.05)
    assert disconnects(api) == before + 1
    new = server.output()[log_before:]
    assert new.count("\n") <= 1, new
    for word in ("Traceback", "ClientDisconnect", "Exception in ASGI"):
        assert word not in new, new


# --- 17: protocol-level errors are JSON with the right status --------------------------------


@pytest.mark.parametrize(
    ("name", "data", "status", "v1"),
    [
        ("invalid utf-8", b"GET /api/vault/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400, False),
        ("NUL", b"GET /v1/secret/data/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
        ("bare CR", b"GET /api/vault/health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, False),
        (
            "duplicate Content-Length",
            b"POST /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\nab",
            400,
            True,
        ),
        ("70 KB line", b"GET /api/vault/" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, False),
        ("70 KB line /v1", b"GET /v1/" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, True),
        (
            "100 KB header field",
            b"GET /api/vault/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
            431,
            False,
        ),
        ("2,000 header fields /v1", _MANY_HEADERS, 431, True),
        (
            "endless header line",
            b"GET /api/vault/health HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * (MAX_HEAD + MAX_TARGET + 1000),
            431,
            False,
        ),
        ("unknown method", b"BREW /api/vault/health HTTP/1.1\r\nHost: x\r\n\r\n", 501, False),
        ("unknown method /v1", b"FOO /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n", 501, True),
        ("TLS on plain text", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400, False),
    ],
)
def test_protocol_errors_are_json(
    server: ServerProcess, name: str, data: bytes, status: int, v1: bool
) -> None:
    log_before = len(server.output())
    answer = raw_request(server, data)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == str(status), (name, answer[:200])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/json", name
    assert headers["connection"] == "close"
    parsed = json.loads(body)
    if v1:
        assert isinstance(parsed["errors"], list) and parsed["errors"], name
    else:
        assert parsed["error"] and parsed["code"], name
    assert "Invalid HTTP request" not in server.output()[log_before:]


def test_a_refused_request_is_answered_not_reset(server: ServerProcess) -> None:
    """The server stops reading a request it refuses; closing the socket with the rest of the
    request unread would make the kernel reset the connection, and the reset can destroy the
    answer before the client reads it (a flaky ECONNRESET in CI). The server lingers instead:
    answer, end of stream, the rest read and dropped."""
    big = 3 * 1024 * 1024
    declared_too_large = (
        b"POST /api/vault/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % big
    ) + b"x" * big
    for _ in range(10):
        for data, status in ((_MANY_HEADERS, b"431"), (declared_too_large, b"413")):
            assert status_of(raw_request(server, data)) == status


def test_a_refused_client_that_keeps_sending_is_cut_off(server: ServerProcess) -> None:
    """Lingering is bounded in time: a client that trickles bytes after its refusal (one every
    50 ms, far under the byte bound) is closed after `LINGER_SECONDS`, not at once, not
    never."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(_MANY_HEADERS)
        answer = b""
        while chunk := sock.recv(65536):  # the answer, then end of stream
            answer += chunk
        assert status_of(answer) == b"431"
        started = time.monotonic()
        deadline = started + 15
        with pytest.raises(OSError):  # reset, or broken pipe, once the server has closed
            while time.monotonic() < deadline:
                sock.sendall(b"x")
                time.sleep(0.05)
        assert LINGER_SECONDS * 0.5 < time.monotonic() - started < deadline - started


def test_an_endless_chunked_body_gets_413_and_is_cut_off(server: ServerProcess) -> None:
    """A chunked body that goes on past the limit is answered 413 with `Connection: close`,
    and the connection closed after the bounded linger: the server does not parse the rest
    of the body forever."""
    head = (
        b"POST /v1/secret/data/%s HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % (unique("chunked").encode(), token().encode())
    )
    chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        sock.settimeout(0.01)
        answer = b""
        deadline = time.monotonic() + 20
        with pytest.raises(OSError):  # reset, or broken pipe, once the server has closed
            while time.monotonic() < deadline:
                sock.sendall(chunk)
                with contextlib.suppress(TimeoutError):
                    answer += sock.recv(65536)
        assert time.monotonic() < deadline
    assert status_of(answer) == b"413", answer[:200]
    assert b"connection: close" in answer.lower()


def test_a_refusal_after_pipelined_requests_waits_its_turn(server: ServerProcess) -> None:
    """A request the parser refuses, pipelined after a write: the write's answer comes first,
    then the refusal (never the refusal in the place of the write's answer)."""
    body = json.dumps({"data": {"v": "1"}}).encode()
    write = (
        b"POST /v1/secret/data/%s HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (unique("pipe").encode(), token().encode(), len(body))
    ) + body
    answer = raw_request(server, write + b"GET /\x01bad HTTP/1.1\r\nHost: x\r\n\r\n")
    assert re.findall(rb"HTTP/1\.1 (\d{3})", answer) == [b"200", b"400"], answer[:300]


def test_a_refusal_through_tls_is_answered_at_once(tmp_path: Path) -> None:
    """Through TLS (no end of stream short of closing) a refused request is answered and the
    connection closed at once: a client reading to the end does not wait for the linger."""
    ca = CA.create()
    cert, key, _ = ca.issue(tmp_path, "server")
    ca_pem = ca.write(tmp_path / "ca.pem")
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    proc = ServerProcess(tmp_path, args=args, ca_cert=ca_pem).start()
    try:
        context = ssl.create_default_context(cafile=str(ca_pem))
        for _ in range(3):
            started = time.monotonic()
            with (
                socket.create_connection(("127.0.0.1", proc.port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
            ):
                sock.sendall(_MANY_HEADERS)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            assert status_of(answer) == b"431"
            assert time.monotonic() - started < 1.5  # (the linger would hold it 2 s)
    finally:
        assert proc.stop() == 0, proc.output()


def test_large_heads_under_the_limit_still_work(server: ServerProcess, api: httpx.Client) -> None:
    """40 KiB of headers pass; so do 100 requests of 1 KiB headers on one connection (their
    heads add up past the limit), and a 900 KB body after a small head."""
    answer = api.get("/api/vault/health", headers={"X-Big": "a" * 40_000})
    assert answer.status_code == 200, answer.text
    with httpx.Client(base_url=server.url) as keep_alive:
        for _ in range(100):
            answer = keep_alive.get("/api/vault/health", headers={"X-Pad": "p" * 1024})
            assert answer.status_code == 200, answer.text
    answer = api.put(f"/api/vault/secrets/{unique()}", json={"value": "v" * 900_000})
    assert answer.status_code in (200, 404), answer.text


def test_a_long_but_reasonable_url_still_works(api: httpx.Client) -> None:
    answer = api.get("/api/vault/secrets/" + "a/" * 3000 + "b")  # 6 KB: under MAX_TARGET
    assert answer.status_code in (400, 404), answer.text  # refused by the path rules, not 414
    assert answer.json()["code"] in ("invalid_input", "secret_not_found")


# --- LIST wherever a request starts -------------------------------------------------------------


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """The status lines of the next `count` responses (each read whole by its length)."""
    buffer = b""
    statuses: list[bytes] = []
    while len(statuses) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {statuses}"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        found = re.search(rb"content-length: (\d+)", head, re.I)
        assert found is not None, head
        length = int(found.group(1))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        statuses.append(head.split(b"\r\n", 1)[0])
    return statuses


def test_list_after_a_body_sent_late_is_still_list(
    server: ServerProcess, api: httpx.Client
) -> None:
    """A client sends a body after the server has already answered (a refused request), then
    a LIST in the same packet: the LIST is parsed as Vault's LIST, not refused as malformed."""
    folder = unique("late")
    assert api.post("/api/vault/secrets", json={"path": f"{folder}/k", "value": "v"}).is_success
    body = b'{"versions":[1]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"PUT /v1/secret/destroy/a/b HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert _read_responses(sock, 1) == [b"HTTP/1.1 403 Forbidden"]  # no token: refused
        token = api.headers["authorization"].removeprefix("Bearer ").encode()
        sock.sendall(
            body + b"LIST /v1/secret/metadata/" + folder.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"X-Vault-Token: " + token + b"\r\n\r\n"
            b"LIST /v1/secret/metadata/" + folder.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"X-Vault-Token: " + token + b"\r\n\r\n"
        )
        assert _read_responses(sock, 2) == [b"HTTP/1.1 200 OK"] * 2
