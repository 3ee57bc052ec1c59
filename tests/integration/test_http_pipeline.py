"""The request pipeline in a real server: nothing blocks the event loop, negatives are refused,
and `vaultctl server` honours the documented environment (VAULT_MASTER_KEY_FILE,
STRONGROOM_AUTO_LOCK_TIMEOUT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from strongroom import Vault, open_vault
from strongroom.config import Secret, Settings
from strongroom.crypto import Barrier
from strongroom.http.app import create_app
from tests.conftest import MASTER_KEY, fast_config
from tests.integration.server_proc import CHEAP_ARGON2, JWT_SECRET, free_port, token

DEADLINE = 30.0


@dataclass
class InProcess:
    url: str
    vault: Vault
    admin: dict[str, str]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[InProcess]:
    """The app on a loopback port, served by uvicorn in a thread of this process."""
    vault = open_vault(f"sqlite:///{tmp_path / 'v.db'}", fast_config())
    port = free_port()
    settings = Settings(jwt_secret=Secret(JWT_SECRET), listen=f"127.0.0.1:{port}")
    config = uvicorn.Config(
        create_app(settings, vault=vault), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + DEADLINE
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield InProcess(f"http://127.0.0.1:{port}", vault, {"X-Vault-Token": token()})
    finally:
        server.should_exit = True
        thread.join(DEADLINE)


def _wait(event: threading.Event, what: str) -> None:
    assert event.wait(DEADLINE), f"timed out waiting for {what}"


def test_a_v1_request_completes_while_an_unlock_runs_argon2(
    served: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.vault.unlock(MASTER_KEY)  # initialise, then lock: the next unlock runs Argon2
    served.vault.lock()
    in_argon2, release = threading.Event(), threading.Event()
    real_unlock = Barrier.unlock

    def slow_unlock(self: Barrier, *args: object) -> None:
        in_argon2.set()  # the vault's state lock is held from here until Argon2 returns
        release.wait(DEADLINE)
        real_unlock(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Barrier, "unlock", slow_unlock)
    results: dict[str, int] = {}

    def call(name: str, method: str, path: str, **kwargs: object) -> None:
        with httpx.Client(base_url=served.url, headers=served.admin, timeout=DEADLINE) as http:
            results[name] = http.request(method, path, **kwargs).status_code  # type: ignore[arg-type]

    unseal = threading.Thread(
        target=call, args=("unseal", "PUT", "/v1/sys/unseal"), kwargs={"json": {"key": MASTER_KEY}}
    )
    try:
        unseal.start()
        _wait(in_argon2, "the unlock to reach Argon2")
        with httpx.Client(base_url=served.url, headers=served.admin, timeout=5.0) as http:
            # The lock-state check takes no lock: still sealed, answered at once, as Vault does.
            assert http.get("/v1/secret/data/app/db").status_code == 503
            assert http.get("/v1/sys/leader").json() == {"ha_enabled": False}
        assert "unseal" not in results
    finally:
        release.set()
        unseal.join(DEADLINE)
    assert results == {"unseal": 200}
    with httpx.Client(base_url=served.url, headers=served.admin, timeout=DEADLINE) as http:
        assert http.get("/v1/secret/data/app/db").status_code == 404  # unlocked now


def test_negative_numbers_are_refused_on_both_apis(served: InProcess) -> None:
    served.vault.unlock(MASTER_KEY)
    bearer = {"Authorization": f"Bearer {token()}"}
    with httpx.Client(base_url=served.url, timeout=DEADLINE) as http:
        r = http.post("/api/vault/secrets", json={"path": "n/a", "value": "v"}, headers=bearer)
        assert r.status_code == 201, r.text
        r = http.post("/api/vault/secrets/n/a/rollback", json={"version": -1}, headers=bearer)
        assert r.status_code == 400 and "non-negative" in r.json()["error"], r.text
        r = http.get("/api/vault/secrets/n/a/audit", params={"limit": "-5"}, headers=bearer)
        assert r.status_code == 400, r.text
        v1 = served.admin
        r = http.post(
            "/v1/secret/data/n/b", json={"data": {"k": "v"}, "options": {"cas": -1}}, headers=v1
        )
        assert r.status_code == 400 and r.json()["errors"], r.text
        r = http.post("/v1/secret/delete/n/b", json={"versions": [-1]}, headers=v1)
        assert r.status_code == 400, r.text


def test_server_honours_the_documented_environment(tmp_path: Path) -> None:
    """Only VAULT_MASTER_KEY_FILE and STRONGROOM_AUTO_LOCK_TIMEOUT (and the JWT secret): the
    server unlocks from the key file and auto-locks after the timeout."""
    key_file = tmp_path / "master.key"
    key_file.write_text(MASTER_KEY + "\n")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "VAULT_MASTER_KEY_FILE": str(key_file),
        "STRONGROOM_AUTO_LOCK_TIMEOUT": "3s",
        "VAULT_JWT_SECRET": JWT_SECRET,
        **CHEAP_ARGON2,
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strongroom", "server", "--listen", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url, seen = f"http://127.0.0.1:{port}", []
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None:
            try:
                r = httpx.get(
                    f"{url}/api/vault/status", headers={"Authorization": f"Bearer {token()}"}
                )
                seen.append((r.json()["initialized"], r.json()["locked"]))
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if seen and seen[-1] == (True, True):
                break
            time.sleep(0.05)
        output = log.read_text(errors="replace")
        # A fresh vault is initialised only by an unlock with the key: the key file was read
        # (the first answers usually still show it unlocked, unless start-up took over 3 s).
        assert seen and seen[0][0] is True, f"never unlocked from VAULT_MASTER_KEY_FILE: {output}"
        assert seen[-1] == (True, True), f"did not auto-lock after 3s: {seen[-5:]} {output}"
        assert "vault unlocked at start" in output and MASTER_KEY not in output
        assert (tmp_path / "vault.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
