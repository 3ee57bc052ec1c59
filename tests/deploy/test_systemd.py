"""deploy/systemd: the units pass `systemd-analyze verify` without a warning and score as
hardened by `systemd-analyze security`; the backup script, run as the backup unit runs it,
keeps the newest N backups and the newest one restores (a restore drill)."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, need_tool

SYSTEMD = DEPLOY / "systemd"
UNITS = ["strongroom.service", "strongroom-backup.service", "strongroom-backup.timer"]
VAULTCTL = Path(sys.executable).parent / "vaultctl"
CHEAP_ARGON2 = {
    "STRONGROOM_ARGON2_TIME_COST": "1",
    "STRONGROOM_ARGON2_MEMORY_KIB": "1024",
    "STRONGROOM_ARGON2_PARALLELISM": "1",
}


def templated(dest: Path) -> list[Path]:
    """Copies of the units whose programs exist on this machine (verify checks ExecStart)."""
    out = []
    for name in UNITS:
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        assert (
            "/opt/strongroom/bin/vaultctl" in text
            or "vaultctl" not in text
            or name.endswith("backup.service")
        )
        text = text.replace("/opt/strongroom/bin/vaultctl", str(VAULTCTL))
        text = text.replace(
            "/usr/local/libexec/strongroom-backup", str(SYSTEMD / "strongroom-backup")
        )
        (dest / name).write_text(text, encoding="utf-8")
        out.append(dest / name)
    return out


def directives(name: str) -> dict[str, list[str]]:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    values: dict[str, list[str]] = {}
    section = ""
    for line in (SYSTEMD / name).read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(f"{section}.{key}", []).append(value)
    return values


def test_verify(tmp_path: Path) -> None:
    tool = need_tool("systemd-analyze", "Debian package systemd")
    units = templated(tmp_path)
    result = subprocess.run([tool, "verify", *map(str, units)], capture_output=True, text=True)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_verify_catches_mistakes(tmp_path: Path) -> None:
    tool = need_tool("systemd-analyze", "Debian package systemd")
    (unit,) = [u for u in templated(tmp_path) if u.name == "strongroom.service"]
    unit.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSystm="))
    result = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    assert "Unknown key" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["strongroom.service", "strongroom-backup.service"])
def test_hardening(tmp_path: Path, name: str) -> None:
    tool = need_tool("systemd-analyze", "Debian package systemd")
    templated(tmp_path)
    result = subprocess.run(
        [tool, "security", "--offline=yes", "--threshold=15", str(tmp_path / name)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    found = directives(name)
    for key, value in {
        "User": "strongroom",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert found[f"Service.{key}"] == [value], key
    credentials = dict(v.split(":", 1) for v in found["Service.LoadCredential"])
    assert credentials["master-key"] == "/etc/strongroom/master-key"
    assert found["Service.StateDirectory"][0].split()[0] == "strongroom"


def test_server_unit_reads_keys_from_credentials() -> None:
    found = directives("strongroom.service")
    (exec_start,) = found["Service.ExecStart"]
    assert "--master-key-file %d/master-key" in exec_start
    assert "--jwt-secret-file %d/jwt-secret" in exec_start
    assert "--master-key " not in exec_start and "VAULT_MASTER_KEY=" not in str(found)
    assert found["Service.Restart"] == ["on-failure"]
    assert set(found["Service.LoadCredential"]) == {
        "master-key:/etc/strongroom/master-key",
        "jwt-secret:/etc/strongroom/jwt-secret",
    }


def test_timer_daily() -> None:
    found = directives("strongroom-backup.timer")
    assert found["Timer.OnCalendar"] == ["daily"]
    assert found["Timer.Unit"] == ["strongroom-backup.service"]
    (exec_start,) = directives("strongroom-backup.service")["Service.ExecStart"]
    assert re.fullmatch(r"/usr/local/libexec/strongroom-backup \S+ \d+", exec_start)


def test_backup_script_keeps_newest_and_restores(tmp_path: Path) -> None:
    """The backup unit's command, with its environment: two runs with KEEP=1 leave the newer
    backup only; it restores into an empty database with the secret in it."""
    state, backups = tmp_path / "state", tmp_path / "backups"
    state.mkdir()
    backups.mkdir()
    key_file = tmp_path / "master-key"
    key_file.write_text("backup-drill-master-key-0123456789\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VAULT_")},
        **CHEAP_ARGON2,
        "DATABASE_URL": f"sqlite:///{state / 'vault.db'}",
        "VAULT_MASTER_KEY_FILE": str(key_file),
        "VAULTCTL": str(VAULTCTL),
    }

    def vaultctl(*args: str, **extra: str) -> str:
        result = subprocess.run(
            [str(VAULTCTL), *args], env={**env, **extra}, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    value = tmp_path / "value.txt"
    value.write_text("drill-value")
    vaultctl("create", "--path", "app/db/password", "--value-file", str(value), "--quiet")
    script = [str(SYSTEMD / "strongroom-backup"), str(backups), "1"]
    written = []
    for attempt in range(2):
        run = subprocess.run(script, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        written.append(re.search(r"wrote (\S+)", run.stdout).group(1))  # type: ignore[union-attr]
        if attempt == 0:
            time.sleep(1.05)  # names carry the second
    left = sorted(p.name for p in backups.iterdir())
    assert left == [Path(written[-1]).name], left
    assert all((backups / n).stat().st_mode & 0o777 == 0o600 for n in left)

    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    vaultctl("restore", "--in", written[-1], DATABASE_URL=restored)
    assert (
        vaultctl("get", "--path", "app/db/password", "--quiet", DATABASE_URL=restored)
        == "drill-value\n"
    )

    bad = subprocess.run([*script[:2], "0"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2
