"""Concurrent updates of one path: versions without gap or duplicate (issue #2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from strongroom import Vault, open_vault
from tests.conftest import FAST_KDF, MASTER_KEY, fast_config


def _hammer(vault: Vault, worker: int, count: int) -> list[int]:
    return [
        vault.update_secret("shared/counter", f"w{worker}-{i}", user_id=worker)
        for i in range(count)
    ]


def test_eight_threads_fifty_updates_each(vault: Vault) -> None:
    vault.create_secret("shared/counter", "start")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda w: _hammer(vault, w, 50), range(8)))
    got = sorted(n for chunk in results for n in chunk)
    assert got == list(range(2, 402))
    versions = [v.version for v in vault.list_versions("shared/counter")]
    assert versions == list(range(401, 0, -1))
    assert vault.verify_audit().ok


_CHILD = textwrap.dedent("""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from strongroom import VaultConfig, open_vault
    v = open_vault(sys.argv[1], VaultConfig(**{kdf}))
    v.unlock(sys.argv[2])
    def work(w):
        for i in range(50):
            v.update_secret("shared/counter", f"p{{sys.argv[3]}}-{{w}}-{{i}}")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    v.close()
""")


@pytest.mark.postgres
def test_two_processes_on_postgresql(pg_dsn: str) -> None:
    v = open_vault(pg_dsn, fast_config())
    v.unlock(MASTER_KEY)
    v.create_secret("shared/counter", "start")
    code = _CHILD.format(kdf=FAST_KDF)
    # 8 threads in 2 processes, 50 updates each: versions 2..401 after the create.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_dsn, MASTER_KEY, str(n)], stderr=subprocess.PIPE
        )
        for n in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    versions = [x.version for x in v.list_versions("shared/counter")]
    assert versions == list(range(401, 0, -1))
    assert v.verify_audit().ok
    v.close()


def test_two_vault_instances_on_one_sqlite_file(sqlite_dsn: str) -> None:
    a = open_vault(sqlite_dsn, fast_config())
    b = open_vault(sqlite_dsn, fast_config())
    a.unlock(MASTER_KEY)
    b.unlock(MASTER_KEY)
    a.create_secret("shared/counter", "start")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda w: _hammer(a if w % 2 else b, w, 20), range(8)))
    assert [x.version for x in b.list_versions("shared/counter")] == list(range(161, 0, -1))
    assert a.verify_audit().ok
    a.close()
    b.close()
