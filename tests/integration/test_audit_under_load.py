"""The audit trail under concurrent load, through the real HTTP server with two workers.

DESIGN promises that every 2xx answer means the change and its audit entry are durable, that one
operation is one audit entry, and that the trail is hash-chained. The group commit batches reads'
entries into shared jobs and lets a batch its event loop leads wait for more work
(`core.writer`, decisions.md "Speed, round ten"); this test drives many keep-alive clients at
once and then holds the trail to exact counts: an entry lost, duplicated, given to the wrong
request or chained out of order fails it.
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server_proc import ServerProcess, token

pytestmark = pytest.mark.slow

THREADS = 24
REQUESTS = 150  # per thread: a fixed amount of work, not a time window
KEYS = [f"load/k{i}" for i in range(6)]
WRITTEN = KEYS[:2]  # also written under load (new versions)
MISSING = "load/missing"
#: The audit search's largest `limit` (docs/api.md); the counts here stay well below it.
SEARCH_LIMIT = 10_000


@dataclass(frozen=True)
class Answer:
    """One request of the load and how the server answered it."""

    rid: str  # our X-Request-ID: the audit entry must carry it
    thread: int
    seq: int
    method: str
    path: str  # the secret's path in the `secret/` mount
    status: int
    version: int | None  # the version a write created


def _request(thread: int, seq: int) -> tuple[str, str, dict[str, Any]]:
    """The (method, path, json body) of request `seq` of `thread`: mostly reads of existing
    keys, one in ten a read of a missing key, one in ten a new version of a written key."""
    slot = (thread * 7 + seq) % 10
    if slot == 0:
        return "GET", MISSING, {}
    if slot == 5:
        key = WRITTEN[(thread + seq) % len(WRITTEN)]
        return "POST", key, {"data": {"thread": thread, "seq": seq}}
    return "GET", KEYS[(thread + seq) % len(KEYS)], {}


def _client_thread(
    url: str, thread: int, start: threading.Barrier, answers: list[Answer], errors: list[str]
) -> None:
    headers = {"X-Vault-Token": token()}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        start.wait(timeout=60)
        for seq in range(REQUESTS):
            method, path, body = _request(thread, seq)
            rid = f"load-t{thread}-r{seq}"
            try:
                r = client.request(
                    method,
                    f"/v1/secret/data/{path}",
                    json=body or None,
                    headers={"X-Request-ID": rid},
                )
            except httpx.HTTPError as exc:
                errors.append(f"{rid} {method} {path}: {type(exc).__name__}: {exc}")
                return
            if r.headers.get("x-request-id") != rid:
                errors.append(f"{rid}: answered with X-Request-ID {r.headers.get('x-request-id')}")
            version = None
            if method == "POST" and r.status_code == 200:
                version = int(r.json()["data"]["version"])
            answers.append(Answer(rid, thread, seq, method, path, r.status_code, version))


def _search(api: httpx.Client, path: str, action: str) -> list[dict[str, Any]]:
    """Every audit entry of `path` with `action`, through the documented search."""
    r = api.get("/api/vault/audit", params={"path": path, "action": action, "limit": SEARCH_LIMIT})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["count"] == len(found["logs"]) < SEARCH_LIMIT, "the search was cut off"
    return list(found["logs"])


def _export(api: httpx.Client) -> list[dict[str, Any]]:
    """The whole audit log, oldest first (the streamed JSON-lines export)."""
    r = api.get("/api/vault/audit/export", params={"format": "jsonl"})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite in the test's directory, or an empty PostgreSQL schema (`pg_dsn`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vault.db'}"
    return str(request.getfixturevalue("pg_dsn"))


def test_every_answered_request_has_exactly_one_audit_entry_in_order(
    tmp_path: Path, server_dsn: str
) -> None:
    """Under 24 concurrent keep-alive clients on two workers, each answered KV v2 read, failed
    read (404) and write has exactly one audit entry with its request id, action, path and
    outcome; the counts found by the audit search equal the answers; each client's entries are
    chained in the order it was answered, each key's writes in version order; the hash chain
    verifies."""
    server = ServerProcess(tmp_path, dsn=server_dsn, workers=2).start()
    try:
        vault = {"X-Vault-Token": token()}
        with httpx.Client(base_url=server.url, headers=vault, timeout=30) as kv:
            for key in KEYS:
                created = kv.post(f"/v1/secret/data/{key}", json={"data": {"v": key}})
                assert created.status_code == 200, created.text

        answers: list[Answer] = []
        errors: list[str] = []
        start = threading.Barrier(THREADS)
        threads = [
            threading.Thread(target=_client_thread, args=(server.url, n, start, answers, errors))
            for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a client thread did not finish"
        assert errors == [], errors[:10]
        assert len(answers) == THREADS * REQUESTS

        statuses: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
        for a in answers:
            statuses[(a.method, a.path)][a.status] += 1
        for (method, path), seen in statuses.items():
            expected = 404 if path == MISSING else 200
            assert set(seen) == {expected}, f"{method} {path}: {dict(seen)}"

        with server.client() as api:
            # The hash chain verifies (every entry, in the order it is stored).
            verified = api.get("/api/vault/audit/verify")
            assert verified.status_code == 200, verified.text
            result = verified.json()
            assert result["ok"] is True and result["first_bad_id"] is None, result
            assert result["entries"] > THREADS * REQUESTS, result

            # The documented search: exact counts per key and action.
            for key in KEYS:
                reads = _search(api, key, "read")
                assert [e for e in reads if not e["success"]] == [], key
                assert len(reads) == statuses[("GET", key)][200], (
                    f"{key}: {len(reads)} read entries for {statuses[('GET', key)][200]} reads"
                )
                creations = _search(api, key, "create")
                assert len(creations) == 1 and creations[0]["success"], creations
                updates = _search(api, key, "update")
                assert all(e["success"] for e in updates), key
                assert len(updates) == statuses[("POST", key)][200], (
                    f"{key}: {len(updates)} update entries for "
                    f"{statuses[('POST', key)][200]} writes"
                )
            refused = _search(api, MISSING, "read")
            assert {(e["success"], e["error"]) for e in refused} == {(False, "SecretNotFound")}
            assert len(refused) == statuses[("GET", MISSING)][404], (
                f"{len(refused)} failed-read entries for {statuses[('GET', MISSING)][404]} 404s"
            )

            # The whole trail: one entry per request, matching it, in the order of answers.
            rows = _export(api)
            ids = [row["id"] for row in rows]
            assert ids == sorted(set(ids)), "the export's ids are not strictly increasing"
            by_rid: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                if str(row["request_id"]).startswith("load-"):
                    by_rid[row["request_id"]].append(row)
            sent = {a.rid: a for a in answers}
            assert set(by_rid) == set(sent), (
                f"requests without an entry: {sorted(set(sent) - set(by_rid))[:5]}; "
                f"entries of no request: {sorted(set(by_rid) - set(sent))[:5]}"
            )
            twice = {rid: len(found) for rid, found in by_rid.items() if len(found) != 1}
            assert twice == {}, f"requests with more than one entry: {twice}"
            entry = {rid: found[0] for rid, found in by_rid.items()}
            for a in answers:
                row = entry[a.rid]
                action = "read" if a.method == "GET" else "update"
                got = (row["action"], row["path"], row["success"])
                assert got == (action, a.path, a.status == 200), (a, row)

            for n in range(THREADS):
                mine = sorted((a for a in answers if a.thread == n), key=lambda a: a.seq)
                chained = [entry[a.rid]["id"] for a in mine]
                assert chained == sorted(chained), (
                    f"client {n}: an answered request's entry is chained after a later one's"
                )
            for key in WRITTEN:
                writes = sorted(
                    (a for a in answers if a.method == "POST" and a.path == key),
                    key=lambda a: entry[a.rid]["id"],
                )
                versions = [a.version for a in writes]
                assert versions == list(range(2, len(writes) + 2)), (
                    f"{key}: versions in the order of their entries: {versions}"
                )
        assert server.stop() == 0, server.output()
        assert "Traceback" not in server.output(), server.output()
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop(signal.SIGKILL)  # a failed assertion: stopped and waited for
        server.kill_leftovers()
