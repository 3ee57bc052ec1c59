"""`vaultctl import-vault` against a real OpenBao dev server: every key, every version, the
metadata; unreadable versions keep their number as destroyed; existing keys are skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from strongroom import errors, open_vault
from tests.conftest import FAST_KDF, MASTER_KEY, fast_config
from tests.integration.kv2_support import ROOT_TOKEN, bao_dev_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with bao_dev_server(tmp_path_factory.mktemp("bao")) as server:
        url = server.url
        client = hvac.Client(url=url, token=ROOT_TOKEN)
        kv = client.secrets.kv.v2
        for i in range(3):
            kv.create_or_update_secret("app/db", {"user": "app", "password": f"pw-{i}"})
        kv.delete_secret_versions("app/db", [2])
        kv.create_or_update_secret("app/api", {"key": "k1"})
        kv.create_or_update_secret("app/api", {"key": "k2", "nested": {"a": [1, 2]}})
        kv.destroy_secret_versions("app/api", [1])
        kv.create_or_update_secret("top", {"value": "plain string"})
        kv.update_metadata("top", max_versions=5, custom_metadata={"owner": "ops"})
        kv.create_or_update_secret("deep/a/b/c", {"x": "1"})
        kv.update_metadata("metaonly", max_versions=3)
        kv.create_or_update_secret("has space", {"x": "1"})
        client.adapter.close()
        yield url


def run_import(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`vaultctl import-vault` as a subprocess."""
    head = [sys.executable, "-m", "strongroom", "--db-dsn", dsn]
    env = {
        **os.environ,
        "VAULT_MASTER_KEY": MASTER_KEY,
        **{f"STRONGROOM_{k.upper()}": str(v) for k, v in FAST_KDF.items()},
    }
    for name in ("VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(name, None)
    return subprocess.run(
        [*head, "import-vault", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_import_copies_every_version(bao: str, tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'v.db'}"
    # Initialised beforehand: a first import announces the new vault with its DSN, and the tmp
    # path (/tmp/pytest-of-root/...) would contain the token's text "root".
    with open_vault(dsn, fast_config(auto_lock=False)) as target:
        target.unlock(MASTER_KEY)
    token_file = tmp_path / "token"
    token_file.write_text(ROOT_TOKEN + "\n")
    done = run_import(dsn, "--addr", bao, "--token-file", str(token_file), "--mount", "secret")
    assert done.returncode == 1, done.stderr  # "has space" is not a valid Strongroom path
    assert "failed has space: invalid path" in done.stderr
    assert "Imported 5 secrets (7 versions, 2 not readable" in done.stdout
    assert ROOT_TOKEN not in done.stdout + done.stderr and "pw-" not in done.stdout

    vault = open_vault(dsn, fast_config(auto_lock=False))
    try:
        vault.unlock(MASTER_KEY)
        assert vault.kv.metadata.list("") == ["app/", "deep/", "metaonly", "top"]
        assert vault.kv.read("app/db").data == {"user": "app", "password": "pw-2"}
        assert vault.kv.read("app/db", 1).data["password"] == "pw-0"
        with pytest.raises(errors.VersionDeleted):  # soft-deleted at the source: no data
            vault.kv.read("app/db", 2)
        meta = vault.kv.metadata.read("app/db")
        assert meta.current_version == 3 and meta.versions[2].deletion_time is not None
        assert vault.kv.read("app/api").data == {"key": "k2", "nested": {"a": [1, 2]}}
        assert vault.kv.metadata.read("app/api").versions[1].destroyed
        assert vault.get_secret("top") == "plain string"
        top = vault.kv.metadata.read("top")
        assert top.custom_metadata == {"owner": "ops"} and top.max_versions == 5
        assert vault.kv.metadata.read("metaonly").current_version == 0
        assert vault.kv.read("deep/a/b/c").data == {"x": "1"}
        assert len(vault.audit_logs(action="import")) == 5
    finally:
        vault.close()

    again = run_import(dsn, "--addr", bao, "--token", ROOT_TOKEN, "--prefix", "copy")
    assert "Imported 5 secrets" in again.stdout
    skipped = run_import(dsn, "--addr", bao, "--token", ROOT_TOKEN)
    assert "skipped app/db: it exists (use --replace)" in skipped.stderr
    assert "Imported 0 secrets" in skipped.stdout


def test_import_reports_a_bad_token(bao: str, tmp_path: Path) -> None:
    done = run_import(f"sqlite:///{tmp_path / 'v.db'}", "--addr", bao, "--token", "wrong")
    assert done.returncode == 1
    assert "403" in done.stderr and "permission denied" in done.stderr
    assert "Traceback" not in done.stderr


def test_import_refuses_a_mount_that_is_not_kv2(bao: str, tmp_path: Path) -> None:
    done = run_import(
        f"sqlite:///{tmp_path / 'v.db'}",
        "--addr",
        bao,
        "--token",
        ROOT_TOKEN,
        "--mount",
        "cubbyhole",
    )
    assert done.returncode == 1
    assert "mount 'cubbyhole' is not a KV version 2 mount" in done.stderr


def test_import_into_another_mount(bao: str, tmp_path: Path) -> None:
    """`--into-mount` copies into a local mount (created as KV v2), apart from `secret/`."""
    dsn = f"sqlite:///{tmp_path / 'v.db'}"
    with open_vault(dsn, fast_config(auto_lock=False)) as target:
        target.unlock(MASTER_KEY)
        target.kv.write("app/db", {"mine": "secret/"})
    done = run_import(dsn, "--addr", bao, "--token", ROOT_TOKEN, "--into-mount", "team")
    assert "Imported 5 secrets" in done.stdout, done.stderr
    vault = open_vault(dsn, fast_config(auto_lock=False))
    try:
        vault.unlock(MASTER_KEY)
        assert vault.kv.read("app/db", mount="team").data == {"user": "app", "password": "pw-2"}
        assert vault.kv.read("app/db", 1, mount="team").data["password"] == "pw-0"
        assert vault.kv.read("app/db").data == {"mine": "secret/"}
        assert vault.kv.metadata.list("", mount="team") == ["app/", "deep/", "metaonly", "top"]
        assert vault.kv.metadata.list("") == ["app/"]
        assert [e.path for e in vault.audit_logs(action="import", path="team:top")] == ["team:top"]
    finally:
        vault.close()


def test_import_all_mounts(bao: str, tmp_path: Path) -> None:
    """`--all-mounts` copies every KV v2 mount of the source into the local mount of the same
    path (a KV v1 mount is left out)."""
    client = hvac.Client(url=bao, token=ROOT_TOKEN)
    client.sys.enable_secrets_engine("kv", path="team/a", options={"version": "2"})
    client.sys.enable_secrets_engine("kv", path="old", options={"version": "1"})
    client.secrets.kv.v2.create_or_update_secret("db", {"team": "a"}, mount_point="team/a")
    client.secrets.kv.v1.create_or_update_secret("x", {"v": "1"}, mount_point="old")
    client.adapter.close()
    dsn = f"sqlite:///{tmp_path / 'v.db'}"
    with open_vault(dsn, fast_config(auto_lock=False)) as target:
        target.unlock(MASTER_KEY)
    done = run_import(dsn, "--addr", bao, "--token", ROOT_TOKEN, "--all-mounts")
    assert "Imported 5 secrets into secret/" in done.stdout, done.stderr
    assert "Imported 1 secrets into team/a/" in done.stdout
    assert "imported db into team/a/ (1 versions)" in done.stdout
    vault = open_vault(dsn, fast_config(auto_lock=False))
    try:
        vault.unlock(MASTER_KEY)
        assert [m.path for m in vault.mounts.list()] == ["secret/", "team/a/"]
        assert vault.kv.read("db", mount="team/a").data == {"team": "a"}
        assert vault.kv.read("app/db").data == {"user": "app", "password": "pw-2"}
    finally:
        vault.close()
