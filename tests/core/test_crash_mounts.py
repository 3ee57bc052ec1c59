"""Crash safety of `DELETE sys/mounts/<path>` (`vault.mounts.disable`): a child process
disabling a mount of 2,000 keys (4,000 versions) is killed with SIGKILL at several moments;
after each kill the mount is there with every key and version, or gone with none of them.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from strongroom import Vault
from strongroom.models import SYSTEM_ACTOR
from strongroom.storage import Tx, tables
from tests.conftest import MASTER_KEY
from tests.core.dbutil import raw_sql

CHILD = Path(__file__).with_name("mount_child.py")
KEYS = 2000


def populate(vault: Vault) -> int:
    """A mount `big/` holding KEYS keys of two versions each (bulk inserts in one transaction;
    the values are real envelopes of the mount's AAD); return the mount id."""
    mount_id = vault.mounts.enable("big", "kv-v2").id

    def run(tx: Tx) -> tuple[None, None]:
        now = vault.state.clock.now()
        paths = [f"{mount_id}:k/{i:04d}" for i in range(KEYS)]
        tx.conn.execute(
            sa.insert(tables.secrets),
            [
                {
                    "path": p,
                    "created_by": 1,
                    "created_at": now,
                    "updated_at": now,
                    "version": 2,
                    "metadata": "{}",
                    "max_versions": 0,
                    "cas_required": False,
                    "delete_version_after": 0,
                    "mount_id": mount_id,
                }
                for p in paths
            ],
        )
        s = tables.secrets
        rows = []
        for sid, path in tx.conn.execute(
            sa.select(s.c.id, s.c.path).where(s.c.mount_id == mount_id)
        ):
            for n in (1, 2):
                envelope, term = vault.state.encrypt(tx, b'{"n":"1"}', sid, path, n)
                rows.append(
                    {"secret_id": sid, "version": n, "value": envelope, "key_term": term,
                     "updated_by": 1, "updated_at": now, "destroyed": False}
                )  # fmt: skip
        tx.conn.execute(sa.insert(tables.secret_versions), rows)
        return None, None

    vault.state.write("populate", SYSTEM_ACTOR, None, run)
    return mount_id


def counts(dsn: str, mount_id: int) -> tuple[int, int, int]:
    mounts = raw_sql(dsn, "SELECT count(*) FROM vault_mounts WHERE id = ?", (mount_id,))[0][0]
    keys = raw_sql(dsn, "SELECT count(*) FROM vault_secrets WHERE mount_id = ?", (mount_id,))
    versions = raw_sql(
        dsn,
        "SELECT count(*) FROM vault_secret_versions v JOIN vault_secrets s ON s.id = v.secret_id"
        " WHERE s.mount_id = ?",
        (mount_id,),
    )
    return int(mounts), int(keys[0][0]), int(versions[0][0])


def kill_while_disabling(dsn: str, delay: float) -> bool:
    """Start a child disabling `big/`, SIGKILL it `delay` seconds after "go"; True when it
    finished before the kill."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), dsn, "big"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps({"key": MASTER_KEY}) + "\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    time.sleep(delay)  # the moment of the crash (the test's variable, not a wait for a state)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    finished = child.stdout.read().strip() == "done"
    child.stdin.close()
    child.stdout.close()
    return finished


def test_sigkill_during_disable_leaves_all_or_nothing(vault: Vault, dsn: str) -> None:
    vault.kv.write("k/0000", {"n": "secret"})
    outcomes = []
    for delay in (0.0, 0.02, 0.03, 0.04, 0.05, 0.1, 0.4):
        mount = vault.mounts.list()
        if not any(m.path == "big/" for m in mount):
            mount_id = populate(vault)
        else:
            mount_id = next(m.id for m in mount if m.path == "big/")
        assert counts(dsn, mount_id) == (1, KEYS, 2 * KEYS)
        finished = kill_while_disabling(dsn, delay)
        after = counts(dsn, mount_id)
        assert after in ((1, KEYS, 2 * KEYS), (0, 0, 0)), (delay, after)
        assert not finished or after == (0, 0, 0)
        outcomes.append(after[0])
        if after[0]:
            assert vault.kv.read("k/1999", mount="big").data == {"n": "1"}
    assert 1 in outcomes, outcomes  # at least one kill landed before the commit
    vault.mounts.disable("big")
    assert counts(dsn, mount_id) == (0, 0, 0)
    assert vault.kv.read("k/0000").data == {"n": "secret"}
    assert vault.verify_audit().ok
