"""bench/ceiling.py's minimal app, in-process: what makes it an upper bound for an audited read
is that no read is answered before its audit row is committed, in a chain that verifies."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import json
import secrets
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def ceiling(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("ceiling")


def rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT at, actor, path, mac FROM audit ORDER BY id").fetchall()


async def get(app: Any, db: Path, path: str, token: bytes) -> tuple[int, bytes, int]:
    """GET `path`: the status, the body, and the audit rows committed when the answer began."""
    scope = {"type": "http", "path": path, "headers": [(b"x-vault-token", token)]}
    seen: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"], seen["committed"] = message["status"], len(rows(db))
        else:
            seen["body"] = message["body"]

    await app(scope, None, send)
    return seen["status"], seen["body"], seen["committed"]


@pytest.mark.parametrize("commit", ["loop", "thread"])
def test_each_read_is_answered_after_its_audit_row_is_committed(
    ceiling: ModuleType, tmp_path: Path, commit: str
) -> None:
    db, secret = tmp_path / "ceiling.db", secrets.token_bytes(64)
    ceiling.seed_db(db, ["one", "two"], secret)
    app = ceiling.Ceiling(db, "token", secret, commit)
    prefix = ceiling.PREFIX

    async def reads() -> list[tuple[int, bytes, int]]:
        first = await get(app, db, prefix + "one", b"token")
        rest = await asyncio.gather(*(get(app, db, prefix + "two", b"token") for _ in range(5)))
        return [first, *rest]

    answers = asyncio.run(reads())
    for status, body, _ in answers:
        assert status == 200 and json.loads(body)["data"]["data"] == {"value": ceiling.VALUE}
    # the k-th answer began with at least k rows on disk: its own, and those answered before
    counts = sorted(committed for _, _, committed in answers)
    assert all(count >= k for k, count in enumerate(counts, start=1)), counts
    assert answers[0][2] == 1
    chain = rows(db)
    assert [path for _, _, path, _ in chain] == ["one"] + ["two"] * 5
    mac = b"\0" * 32
    for at, actor, path, stored in chain:  # every row chained to the one before it
        mac = hmac.digest(
            secret[32:], b"|".join((mac, at.encode(), actor, path.encode())), "sha256"
        )
        assert stored == mac and actor == hashlib.sha256(b"token").digest()


def test_a_wrong_token_or_a_missing_key_reads_nothing(ceiling: ModuleType, tmp_path: Path) -> None:
    db, secret = tmp_path / "ceiling.db", secrets.token_bytes(64)
    ceiling.seed_db(db, ["one"], secret)
    app = ceiling.Ceiling(db, "token", secret, "thread")
    assert asyncio.run(get(app, db, ceiling.PREFIX + "one", b"other"))[0] == 403
    assert asyncio.run(get(app, db, ceiling.PREFIX + "none", b"token"))[0] == 404
    assert rows(db) == []
