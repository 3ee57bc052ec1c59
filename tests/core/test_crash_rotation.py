"""Crash safety of master-key rotation: a child process rotating a vault of 2,000 secrets is
killed with SIGKILL at several points; after each kill exactly one key (old or new, whichever the
atomic step says) opens the vault, every version of every secret reads back intact, and
re-running the rotation finishes it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa

from strongroom import Vault, errors, open_vault
from strongroom.core.secrets import as_text, decode_value, encode_value
from strongroom.storage import Tx, tables
from tests.conftest import MASTER_KEY, fast_config
from tests.core.dbutil import raw_sql

CHILD = Path(__file__).with_name("rotation_child.py")
SECRETS = 2000
BATCH = 50
DEADLINE = 30.0

Expected = dict[tuple[str, int], str]


def populate(vault: Vault) -> Expected:
    """2,000 secrets; every fourth has three versions (3,000 versions in all).

    Written in one transaction through the vault's writer and its own encryption (the AAD and
    envelope `create_secret`/`update_secret` produce), with bulk inserts, because 3,000 audited
    API writes would dominate the test's run time.
    """
    expected: Expected = {}
    versions_of = {f"crash/{i:04d}": 3 if i % 4 == 0 else 1 for i in range(SECRETS)}

    def run(tx: Tx) -> tuple[None, None]:
        now = vault.state.clock.now()
        tx.conn.execute(
            sa.insert(tables.secrets),
            [
                {
                    "path": path,
                    "description": None,
                    "created_by": 1,
                    "created_at": now,
                    "updated_at": now,
                    "version": n,
                    "expires_at": None,
                    "metadata": "{}",
                    "max_versions": 0,
                    "cas_required": False,
                    "delete_version_after": 0,
                }
                for path, n in versions_of.items()
            ],
        )
        rows = []
        for sid, path in tx.conn.execute(sa.select(tables.secrets.c.id, tables.secrets.c.path)):
            for n in range(1, versions_of[path] + 1):
                value = f"{path}#{n}"
                envelope, term = vault.state.encrypt(
                    tx, encode_value({"value": value}), sid, path, n
                )
                rows.append(
                    {
                        "secret_id": sid,
                        "version": n,
                        "value": envelope,
                        "key_term": term,
                        "updated_by": 1,
                        "updated_at": now,
                        "deleted_at": None,
                        "destroyed": False,
                    }
                )
                expected[(path, n)] = value
        tx.conn.execute(sa.insert(tables.secret_versions), rows)
        return None, None

    vault.state.submit(run, lambda exc: None)
    return expected


def open_with(dsn: str, keys: list[str]) -> tuple[Vault, str]:
    """Open the vault with whichever of `keys` works; exactly one must."""
    vault = open_vault(dsn, fast_config(auto_lock=False))
    opened = []
    for key in keys:
        try:
            vault.unlock(key)
        except errors.InvalidMasterKey:
            continue
        opened.append(key)
        vault.lock()
    assert len(opened) == 1, f"{len(opened)} of the candidate keys open the vault"
    vault.unlock(opened[0])
    return vault, opened[0]


def check_intact(dsn: str, keys: list[str], expected: Expected) -> str:
    """Every version decrypts to its value; a sample also reads back through the API; stored
    terms cover every row; the audit chain holds. Returns the key that opened the vault."""
    vault, key = open_with(dsn, keys)
    try:
        # Every version, through the decryption path `get_secret_version` uses (unaudited, so
        # 3,000 checks take milliseconds rather than 3,000 durable audit entries).
        found: Expected = {}
        with vault.state.storage.read() as tx:
            for _, stored, path in tx.rotation.versions_below_term_after(
                2**31 - 1, 0, 10 * SECRETS
            ):
                assert stored.value is not None
                plain = vault.state.decrypt(
                    tx, stored.value, stored.secret_id, path, stored.version
                )
                found[(path, stored.version)] = as_text(decode_value(plain))
        assert found == expected

        def read(item: tuple[tuple[str, int], str]) -> bool:
            (path, version), value = item
            return vault.get_secret_version(path, version) == value

        sample = random.sample(sorted(expected.items()), 100)
        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(read, sample))
        rows = {r[0] for r in raw_sql(dsn, "SELECT DISTINCT key_term FROM vault_secret_versions")}
        terms = {r[0] for r in raw_sql(dsn, "SELECT term FROM vault_key_terms")}
        assert rows <= terms
        assert vault.verify_audit().ok
    finally:
        vault.close()
    return key


def keys_row(dsn: str) -> tuple[str, dict[str, int] | None]:
    wrapped, rotation = raw_sql(dsn, "SELECT wrapped_root, rotation FROM vault_keys")[0]
    return wrapped, json.loads(rotation) if rotation else None


def below_target(dsn: str) -> tuple[int, int]:
    """(versions still under an older term, versions under the target term or newer)."""
    _, marker = keys_row(dsn)
    assert marker is not None
    target = marker["target_term"]
    ((old,),) = raw_sql(
        dsn, "SELECT COUNT(*) FROM vault_secret_versions WHERE key_term < ?", (target,)
    )
    ((new,),) = raw_sql(
        dsn, "SELECT COUNT(*) FROM vault_secret_versions WHERE key_term >= ?", (target,)
    )
    return old, new


def poll(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


class Child:
    """rotation_child.py in `mode`, killed with SIGKILL by the test; its lines are read by a
    thread so that every wait has a deadline."""

    def __init__(self, mode: str, dsn: str, keys: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), mode, dsn, str(BATCH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(keys) + "\n")
        self.proc.stdin.flush()
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, out: IO[str]) -> None:
        for text in out:
            self.lines.put(text.strip())
        self.lines.put("")  # end of output

    def line(self) -> str:
        try:
            text = self.lines.get(timeout=DEADLINE)
        except queue.Empty:
            self.kill()
            raise AssertionError("no output from the child within the deadline") from None
        assert text, "child exited early"
        return text

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE)
        self.reader.join(timeout=DEADLINE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.mark.slow
def test_sigkill_during_rotation_never_loses_a_secret(dsn: str) -> None:
    vault = open_vault(dsn, fast_config(auto_lock=False))
    vault.unlock(MASTER_KEY)
    expected = populate(vault)
    vault.close()
    assert len(expected) == 3000
    k1, k2 = "first-new-master-key-1", "second-new-master-key-2"

    # 1. Killed as soon as the rotation starts: old or new key, never both, never neither.
    child = Child("rotate", dsn, {"key": MASTER_KEY, "new_key": k1})
    assert child.line() == "ready"
    child.kill()
    current = check_intact(dsn, [MASTER_KEY, k1], expected)

    # 2. Killed right after the atomic step committed: the new key rules.
    before, _ = keys_row(dsn)
    child = Child("rotate", dsn, {"key": current, "new_key": k2})
    assert child.line() == "ready"
    poll("the atomic step", lambda: keys_row(dsn)[0] != before)
    child.kill()
    assert keys_row(dsn)[1] is not None, "the rotation finished before the kill"
    assert check_intact(dsn, [current, k2], expected) == k2

    # 3. Re-running the same rotation resumes it; killed mid-way through the batches.
    child = Child("resume", dsn, {"key": k2})
    assert child.line() == "ready"
    while True:
        words = child.line().split()
        if words[0] == "progress" and int(words[1]) >= int(words[2]) * 3 // 10 > 0:
            break
    child.kill()
    old, new = below_target(dsn)
    assert old > 0 and new > 0, "the kill did not land mid-rotation"
    assert check_intact(dsn, [current, k2], expected) == k2

    # 4. Again, killed at a random point (usually inside a batch transaction).
    child = Child("resume", dsn, {"key": k2})
    assert child.line() == "ready"
    share = random.uniform(0.05, 0.9)
    while True:
        words = child.line().split()
        if words[0] == "progress" and int(words[1]) >= int(words[2]) * share:
            break
    child.kill()
    assert check_intact(dsn, [current, k2], expected) == k2

    # 5. Resume finishes it: marker cleared, one term left, everything still intact.
    vault, _ = open_with(dsn, [k2])
    try:
        result = vault.rotation.resume()
        assert result.term >= 2
    finally:
        vault.close()
    assert keys_row(dsn)[1] is None
    terms = {r[0] for r in raw_sql(dsn, "SELECT term FROM vault_key_terms")}
    assert {
        r[0] for r in raw_sql(dsn, "SELECT DISTINCT key_term FROM vault_secret_versions")
    } == terms and len(terms) == 1
    assert check_intact(dsn, [current, k2], expected) == k2
