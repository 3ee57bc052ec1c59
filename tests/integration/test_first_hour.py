"""The first hour of a new user (issue 11, items 2-10): no silent vault, strong new keys, global
--format, versions in JSON, bare loopback --addr, a port in use, --dev cleanup, role case, how to
unlock, and what backup's audit count means."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from strongroom import errors, open_vault
from strongroom.core import state as core_state
from tests.conftest import fast_config
from tests.integration.cli_support import Vaultctl, base_env, one_error_line
from tests.integration.server_proc import CHEAP_ARGON2, JWT_SECRET, ServerProcess, free_port

INIT_LINE = re.compile(r"^Initialized a new vault \(Storage: sqlite:///\S+vault\.db\)$", re.M)

READ_ONLY = [
    ("get", "--path", "a/b"),
    ("get", "--path", "a/b", "--format", "json"),
    ("list",),
    ("versions", "--path", "a/b"),
    ("audit",),
    ("audit", "verify"),
    ("audit", "export"),
    ("status",),
    ("export", "--prefix", "a/"),
    ("run", "--prefix", "a/", "--", "true"),
    ("generate",),
    ("backup", "--out", "x.backup"),
    ("lock",),
    ("update", "--path", "a/b", "--value", "v"),
    ("delete", "--path", "a/b"),
    ("rollback", "--path", "a/b", "--version", "1"),
    ("cleanup",),
    ("rotate", "--path", "a/b"),
    ("user", "list"),
    ("policy", "list"),
]


@pytest.fixture
def vc(tmp_path: Path) -> Vaultctl:
    return Vaultctl(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)


# -- item 2: no silent vault --------------------------------------------------------------------
@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a[:2]))
def test_commands_that_do_not_write_create_no_vault(vc: Vaultctl, args: tuple[str, ...]) -> None:
    r = vc(*args)
    one_error_line(r, 1, f"no vault at {vc.dsn}", "vaultctl unlock", "--db-dsn")
    assert sorted(p.name for p in vc.cwd.iterdir()) == [], "a file was left behind"


def test_default_dsn_is_named_and_not_created(tmp_path: Path) -> None:
    env = {**base_env(), "VAULT_MASTER_KEY": "cli-master-key-0123456789"}
    done = subprocess.run(
        [sys.executable, "-m", "strongroom", "get", "--path", "a/b"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and done.stderr.startswith("Error: no vault at sqlite:///vault.db")
    assert not (tmp_path / "vault.db").exists()


@pytest.mark.postgres
def test_no_tables_are_created_in_an_empty_postgres_database(pg_dsn: str, tmp_path: Path) -> None:
    import psycopg

    vc = Vaultctl(pg_dsn, tmp_path)
    one_error_line(vc("list"), 1, "no vault at postgresql://", "vaultctl unlock")
    one_error_line(vc("status"), 1, "no vault at")
    with psycopg.connect(pg_dsn) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()
    assert found == (0,)
    r = vc("unlock")
    assert r.code == 0 and "Initialized a new vault (Storage: postgresql://" in r.err


def test_every_initialisation_prints_one_line(tmp_path: Path) -> None:
    for i, args in enumerate(
        [
            ("unlock",),
            ("unlock", "--format", "json"),
            ("--quiet", "unlock"),
            ("create", "--path", "a/b", "--value", "v"),
        ]
    ):
        folder = tmp_path / str(i)
        folder.mkdir()
        vc = Vaultctl(f"sqlite:///{folder / 'vault.db'}", folder)
        r = vc(*args)
        assert r.code == 0, r
        assert len(INIT_LINE.findall(r.err)) == 1 and r.err.count("\n") == 1, r.err
        again = vc(*args) if args[0] != "create" else vc("get", "--path", "a/b")
        assert again.code == 0 and "Initialized" not in again.err, again


def test_server_start_announces_a_new_vault(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    assert server.stop() == 0
    assert len(INIT_LINE.findall(server.output())) == 1, server.output()
    again = ServerProcess(tmp_path).start()
    assert again.stop() == 0
    assert "Initialized" not in again.output()


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("short-key", "at least 16 characters"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "too weak"),
        ("passwordpassword", "too weak"),
        ("abcdefghijklmnopq", "too weak"),
        ("8473629184756302", "too weak"),
    ],
)
def test_weak_keys_cannot_create_a_vault(tmp_path: Path, key: str, needle: str) -> None:
    vc = Vaultctl(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path, key=key)
    for args in (("unlock",), ("create", "--path", "a/b", "--value", "v")):
        one_error_line(vc(*args), 2, "master key", needle)
        assert not (tmp_path / "vault.db").exists()
    # The library refuses it too.
    vault = open_vault(f"sqlite:///{tmp_path / 'lib.db'}", fast_config(auto_lock=False))
    with pytest.raises(errors.InvalidInput, match=needle):
        vault.unlock(key)
    assert vault.status().initialized is False
    vault.close()
    # And the server, before anything is created or bound.
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.server",
            "--listen",
            f"127.0.0.1:{port}",
            "--db-dsn",
            f"sqlite:///{tmp_path / 'srv.db'}",
        ],
        env={**os.environ, **CHEAP_ARGON2, "VAULT_JWT_SECRET": JWT_SECRET, "VAULT_MASTER_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stderr.startswith("Error: master key") and needle in done.stderr
    assert "Traceback" not in done.stderr and "Strongroom server on" not in done.stdout
    assert not (tmp_path / "srv.db").exists()


def test_a_vault_made_with_a_short_key_keeps_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = f"sqlite:///{tmp_path / 'vault.db'}"
    with monkeypatch.context() as m:  # a vault from before the rule
        m.setattr(core_state, "check_new_master_key", lambda key, what="": key)
        old = open_vault(dsn, fast_config(auto_lock=False))
        old.unlock("short")
        old.create_secret("a/b", "v")
        old.close()
    reopened = open_vault(dsn, fast_config(auto_lock=False))
    reopened.unlock("short")
    assert reopened.get_secret("a/b") == "v"
    reopened.close()
    vc = Vaultctl(dsn, tmp_path, key="short")
    assert vc.ok("get", "--path", "a/b", "-q") == "v\n"
    (tmp_path / "new.key").write_text("short2\n")
    rotate = vc("rotate", "--all", "--new-master-key-file", str(tmp_path / "new.key"))
    one_error_line(rotate, 2, "new master key must be at least 16 characters")


# -- items 3 and 4: global --format, the version read ---------------------------------------------
def test_format_is_global_and_get_json_names_the_version(vc: Vaultctl) -> None:
    vc.ok("create", "--path", "a/b", "--value", "v1")
    vc.ok("update", "--path", "a/b", "--value", "v2")
    for args in (
        ("--format", "json", "get", "--path", "a/b"),
        ("get", "--path", "a/b", "--format", "json"),
        ("--format", "text", "get", "--path", "a/b", "--format", "json"),
    ):
        assert json.loads(vc.ok(*args)) == {"path": "a/b", "value": "v2", "version": 2}, args
    assert json.loads(vc.ok("--format", "json", "get", "--path", "a/b", "--version", "1")) == {
        "path": "a/b",
        "value": "v1",
        "version": 1,
    }
    assert json.loads(vc.ok("--format", "json", "list"))["count"] == 1
    assert json.loads(vc.ok("--format", "json", "status"))["initialized"] is True
    assert json.loads(vc.ok("--format", "json", "export", "--prefix", "a/")) == {"B": "v2"}
    assert vc.ok("--format", "json", "export", "--prefix", "a/", "--format", "dotenv") == "B='v2'\n"
    assert vc.ok("--format", "json", "get", "--path", "a/b", "--format", "text") == (
        "Path: a/b\nValue: v2\n"
    )
    one_error_line(vc("--format", "yaml", "list"), 2, "--format")


# -- item 5: --addr without a scheme --------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path).start()
    yield proc
    proc.stop()


def _remote(tmp_path: Path, addr: str, role: str = "SuperAdmin") -> Vaultctl:
    from tests.integration.server_proc import token

    return Vaultctl(
        "sqlite:///unused.db",
        tmp_path,
        key=None,
        extra_env={"VAULT_ADDR": addr, "VAULT_TOKEN": token(role)},
    )


def test_bare_loopback_addr_means_http(server: ServerProcess, tmp_path: Path) -> None:
    bare = f"127.0.0.1:{server.port}"
    vc = _remote(tmp_path, bare)
    vc.ok("create", "--path", "a/b", "--value", "v")
    assert vc.ok("get", "--path", "a/b", "--addr", f"localhost:{server.port}", "-q") == "v\n"
    for addr in ("vault.example.com:8200", "10.0.0.5:8200"):
        one_error_line(vc("get", "--path", "a/b", "--addr", addr), 2, "add http:// or https://")
    one_error_line(vc("list", "--addr", f"ftp://127.0.0.1:{server.port}"), 2, "http://")
    assert not (tmp_path / "unused.db").exists()


# -- item 9: how to unlock -------------------------------------------------------------------------
def test_locked_errors_say_how_to_unlock(server: ServerProcess, tmp_path: Path) -> None:
    vc = _remote(tmp_path, server.url)
    vc.ok("lock")
    one_error_line(vc("get", "--path", "a/b"), 1, "vault is locked", "run 'vaultctl unlock'")


# -- item 6: a port in use -------------------------------------------------------------------------
def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for extra in ([], ["--workers", "1"], ["--workers", "2"], ["--dev"]):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "strongroom.cli.server",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--db-dsn",
                    f"sqlite:///{tmp_path / 'vault.db'}",
                    *extra,
                ],
                env={**os.environ, **CHEAP_ARGON2, "VAULT_JWT_SECRET": JWT_SECRET},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 2, done
            assert done.stderr == f"Error: 127.0.0.1:{port} is in use\n", done
            assert done.stdout == ""


# -- item 7: --dev cleans up -----------------------------------------------------------------------
def _wait(predicate: object, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/vault/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_dev_removes_its_folder_on_exit(tmp_path: Path, sig: int, workers: str) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, **CHEAP_ARGON2, "TMPDIR": str(tmp)}
    env.pop("DATABASE_URL", None)
    env.pop("VAULT_JWT_SECRET", None)
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strongroom.cli.server",
                "--dev",
                "--workers",
                workers,
                "--listen",
                f"127.0.0.1:{port}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _wait(lambda: "Admin token" in log.read_text()), log.read_text()
        assert _wait(lambda: _serving(port)), log.read_text()
        folders = list(tmp.glob("strongroom-dev-*"))
        assert len(folders) == 1 and (folders[0] / "vault.db").exists()
        assert len(INIT_LINE.findall(log.read_text())) == 1, log.read_text()
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert _wait(lambda: not folders[0].exists(), 10), list(folders[0].iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- item 8: role names ----------------------------------------------------------------------------
def test_builtin_roles_match_in_any_case(vc: Vaultctl, tmp_path: Path) -> None:
    vc.extra_env["VAULT_JWT_SECRET"] = JWT_SECRET
    for given, canonical in (("admin", "Admin"), ("SUPERADMIN", "SuperAdmin"), ("App", "App")):
        text = vc.ok("token", "create", "--jwt", "--user-id", "3", "--role", given).strip()
        claims = jwt.decode(text, JWT_SECRET, algorithms=["HS256"])
        assert claims["role"] == canonical
    vc.ok("unlock")
    out = vc.ok(
        "user", "create", "--username", "alice", "--role", "admin", "--password-stdin",
        input="a-long-password\n",
    )  # fmt: skip
    assert "role Admin" in out
    assert json.loads(vc.ok("user", "list", "--format", "json"))["users"][0]["role"] == "Admin"


# -- item 10: backup's audit count -----------------------------------------------------------------
def test_backup_says_what_its_audit_count_is(vc: Vaultctl) -> None:
    vc.ok("create", "--path", "a/b", "--value", "v")
    out = vc.ok("backup", "--out", "v.backup")
    found = re.search(
        r"(\d+) audit entries as of the snapshot, before this backup's own entry", out
    )
    assert found, out
    verified = json.loads(vc.ok("audit", "verify", "--format", "json"))
    # Since the snapshot: the backup's own entry, then this command's unlock.
    assert verified["entries"] == int(found.group(1)) + 2
    counts = json.loads(vc.ok("backup", "--out", "w.backup", "--format", "json"))["counts"]
    assert counts["vault_audit_logs"] == verified["entries"] + 1  # + this backup's unlock
