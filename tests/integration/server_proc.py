"""Start the real `vaultctl server` as a subprocess on a free loopback port, for HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import httpx

from strongroom.core.tokens import JWTAuth

JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123"
MASTER_KEY = "test-master-key-0123456789"
CHEAP_ARGON2 = {
    "STRONGROOM_ARGON2_TIME_COST": "1",
    "STRONGROOM_ARGON2_MEMORY_KIB": "1024",
    "STRONGROOM_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(
    role: str = "SuperAdmin",
    user_id: int = 1,
    policies: Sequence[str] = (),
    ttl: timedelta = timedelta(hours=1),
) -> str:
    """A token signed with the test servers' JWT secret."""
    return JWTAuth(JWT_SECRET).issue(user_id, role, ttl=ttl, policies=policies)[0]


def auth(role: str = "SuperAdmin", **kwargs: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, **kwargs)}"}  # type: ignore[arg-type]


class ServerProcess:
    """One `python -m strongroom.cli.server` process and its log file."""

    def __init__(
        self,
        tmp: Path,
        *,
        dsn: str | None = None,
        workers: int = 1,
        master_key: str | None = MASTER_KEY,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        ca_cert: Path | None = None,
    ) -> None:
        self.port = free_port()
        #: With `ca_cert` the server is expected to serve HTTPS, verified by that CA.
        self.ca_cert = ca_cert
        self.url = f"{'https' if ca_cert else 'http'}://127.0.0.1:{self.port}"
        self.dsn = dsn or f"sqlite:///{tmp / 'vault.db'}"
        self.log = tmp / f"server-{self.port}.log"
        self.master_key = master_key
        self.cmd = [
            sys.executable,
            "-m",
            "strongroom.cli.server",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--db-dsn",
            self.dsn,
            "--workers",
            str(workers),
            *args,
        ]
        self.env = {**os.environ, **CHEAP_ARGON2, "VAULT_JWT_SECRET": JWT_SECRET, **(env or {})}
        self.env.pop("VAULT_MASTER_KEY", None)
        if master_key is not None:
            self.env["VAULT_MASTER_KEY"] = master_key
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline: float = 60.0) -> ServerProcess:
        """Start and wait until /health answers (and the vault is unlocked, if keyed)."""
        with self.log.open("wb") as out:
            # A session of its own, so that stop() can signal the supervisor's workers too.
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                body = httpx.get(
                    f"{self.url}/api/vault/health", timeout=2, verify=self.verify()
                ).json()
                if self.master_key is None or body["locked"] is False:
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"server did not start: {self.output()}")

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies the server with (the test CA under TLS)."""
        if self.ca_cert is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server and wait for it; return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.kill_leftovers()

    def kill_leftovers(self) -> None:
        """SIGKILL whatever is left of the server's process group (workers of a dead supervisor)."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def children(self) -> list[int]:
        """The worker processes of a `--workers N` supervisor."""
        assert self.proc is not None
        pid = self.proc.pid
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(c) for c in found if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]

    def client(self, role: str = "SuperAdmin", **kwargs: object) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers=auth(role, **kwargs), timeout=30, verify=self.verify()
        )
