"""Running `vaultctl` as a subprocess with an isolated environment and cheap Argon2."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MASTER_KEY = "cli-master-key-0123456789"
CHEAP_ARGON2 = {
    "STRONGROOM_ARGON2_TIME_COST": "1",
    "STRONGROOM_ARGON2_MEMORY_KIB": "1024",
    "STRONGROOM_ARGON2_PARALLELISM": "1",
    "STRONGROOM_AUTO_LOCK": "false",
}
_DROP = ("VAULT_", "DATABASE_URL", "STRONGROOM_")


def base_env() -> dict[str, str]:
    """The test process's environment without any vault setting, plus cheap Argon2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    env.update(CHEAP_ARGON2)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Vaultctl:
    """`vaultctl` bound to one database; `key=None` runs without VAULT_MASTER_KEY."""

    dsn: str
    cwd: Path
    key: str | None = MASTER_KEY
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, key: str | None) -> dict[str, str]:
        env = base_env()
        env["DATABASE_URL"] = self.dsn
        if key is not None:
            env["VAULT_MASTER_KEY"] = key
        env.update(self.extra_env)
        return env

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        key: str | None = "default",
        check: bool | None = None,
        stdin: int | None = None,
    ) -> Result:
        use_key = self.key if key == "default" else key
        proc = subprocess.run(
            [sys.executable, "-m", "strongroom", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(use_key),
            cwd=self.cwd,
            timeout=120,
            stdin=stdin if input is None else None,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check is True:
            assert result.code == 0, (args, result)
        return result

    def ok(self, *args: str, input: str | None = None) -> str:
        """Run, assert exit 0 and empty stderr, return stdout."""
        r = self(*args, input=input)
        assert r.code == 0, (args, r)
        return r.out


def one_error_line(r: Result, code: int, *needles: str) -> None:
    """The command failed with `code`, one `Error: ...` line, no traceback, nothing on stdout."""
    assert r.code == code, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("Error: "), r.err
    assert "Traceback" not in r.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
