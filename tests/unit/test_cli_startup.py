"""`cli.startup`: `vaultctl` imports with the garbage collector off, and turns it back on, with
what exists frozen, once a command has opened what it needs (a vault, a client) or starts
the server."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom import open_vault
from strongroom.cli import startup
from strongroom.cli.session import Session, open_client
from strongroom.config import Secret, Settings
from tests.conftest import MASTER_KEY, fast_config


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The collector as `startup.main` leaves it; restored (and unfrozen) afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was:
            gc.enable()


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each `gc.freeze()` call of this thread, as whether the collector was on at the time.
    (Comparing freeze counts before and after is flaky: a frozen object freed meanwhile, in
    this thread or another, lowers the count.)"""
    calls: list[bool] = []
    real, here = gc.freeze, threading.get_ident()

    def spy() -> None:
        if threading.get_ident() == here:
            calls.append(gc.isenabled())
        real()

    monkeypatch.setattr(gc, "freeze", spy)
    return calls


def test_collector_on_freezes_what_exists_and_enables(
    collector_off: None, freezes: list[bool]
) -> None:
    startup.collector_on()
    assert gc.isenabled()
    assert freezes == [False]  # frozen once, before the collector came back on
    startup.collector_on()  # on already: nothing more
    assert freezes == [False]


def test_collector_on_leaves_an_enabled_collector_alone(freezes: list[bool]) -> None:
    assert gc.isenabled()
    startup.collector_on()
    assert gc.isenabled() and freezes == []


def test_opening_a_local_vault_turns_it_on(collector_off: None, tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'vault.db'}"
    vault = open_vault(dsn, fast_config())
    vault.unlock(MASTER_KEY)  # (a vault there)
    vault.close()
    session = Session()
    session.flags["db_dsn"] = dsn
    assert not gc.isenabled()
    session.local().close()
    assert gc.isenabled()


def test_opening_a_client_turns_it_on(collector_off: None) -> None:
    settings = Settings.from_env(addr="http://127.0.0.1:1", token=Secret("t"))
    client = open_client(settings)
    try:
        assert gc.isenabled()
    finally:
        client.close()


def test_the_console_script_runs_a_command_and_leaves_this_process_alone() -> None:
    """`python -m strongroom` goes through `startup.main` (its exit code and output as
    `vaultctl`'s); importing `strongroom.cli` elsewhere does not touch the collector."""
    done = subprocess.run(
        [sys.executable, "-m", "strongroom", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("vaultctl, version "), done.stdout
    assert gc.isenabled()


def test_the_server_command_turns_it_on_first(collector_off: None, tmp_path: Path) -> None:
    """`vaultctl server` is long-running: the collector is on before anything else happens
    (here the command stops at once, on a certificate without its key)."""
    from strongroom.cli.main import run

    try:
        code = run(["server", "--tls-cert", str(tmp_path / "missing.pem")])
    except SystemExit as exc:
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    assert gc.isenabled()


def test_restore_turns_it_on(collector_off: None, tmp_path: Path) -> None:
    """`restore` opens its database itself (no Session vault): it turns the collector on before
    loading (here the backup file is not a backup, which it reports after)."""
    from strongroom.cli.main import run

    (tmp_path / "not.backup").write_text("{}\n")
    code = run(
        [
            *("restore", "--in", str(tmp_path / "not.backup")),
            *("--db-dsn", f"sqlite:///{tmp_path / 'new.db'}", "--master-key", "k" * 32),
        ]
    )
    assert code == 2
    assert gc.isenabled()
