"""Backups across schema revisions: one written at a revision whose tables hold the same rows
as today's (`storage.SAME_ROWS_AS_HEAD`: 0007 only added an index) restores; any other is
refused before anything is written, whatever the header holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.core.backup import restore
from strongroom.storage import HEAD_REVISION, SAME_ROWS_AS_HEAD
from tests.conftest import MASTER_KEY, fast_config


def _as_written_at(source: Path, schema: object, out: Path) -> None:
    """The backup at `source` as Strongroom at `schema` would have written it: the header's
    schema changed, and the closing digest over the lines recomputed."""
    lines = source.read_text(encoding="ascii").splitlines(keepends=True)
    header = json.loads(lines[0])
    header["schema"] = schema
    lines[0] = json.dumps(header) + "\n"
    end = json.loads(lines[-1])
    assert end["end"] is True
    end["sha256"] = hashlib.sha256("".join(lines[:-1]).encode("ascii")).hexdigest()
    lines[-1] = json.dumps(end) + "\n"
    out.write_text("".join(lines), encoding="ascii")


def test_a_backup_of_0006_restores_and_an_older_one_is_refused(
    vault: Vault, tmp_path: Path, clock: ManualClock
) -> None:
    assert HEAD_REVISION in SAME_ROWS_AS_HEAD and "0006" in SAME_ROWS_AS_HEAD
    vault.kv.write("app/db", {"password": "s3cret"})
    written = tmp_path / "vault.backup"
    with written.open("w") as f:
        vault.backup.write(f)
    config = fast_config(clock=clock, auto_lock=False)

    for n, schema in enumerate(["0005", ["0006"], {"0006": 1}, None]):
        refused = tmp_path / f"refused{n}.backup"
        _as_written_at(written, schema, refused)
        target = tmp_path / f"refused{n}.db"
        with pytest.raises(errors.InvalidInput, match="incompatible version"):
            restore(f"sqlite:///{target}", refused, MASTER_KEY, config)

    same_rows = tmp_path / "0006.backup"
    _as_written_at(written, "0006", same_rows)
    dsn = f"sqlite:///{tmp_path / 'restored.db'}"
    restore(dsn, same_rows, MASTER_KEY, config)
    restored = open_vault(dsn, config)
    try:
        restored.unlock(MASTER_KEY)
        assert restored.kv.read("app/db").data == {"password": "s3cret"}
        assert restored.verify_audit().ok
    finally:
        restored.close()
