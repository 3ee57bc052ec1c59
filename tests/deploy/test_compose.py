"""deploy/compose.yaml and compose.sqlite.yaml: valid Compose files (the vendored Compose
Specification schema), wired as documented; deploy/make-secrets.sh writes the files they mount."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from tests.deploy.support import DEPLOY, need_root

SCHEMA = Path(__file__).parent / "compose-spec" / "compose-spec.json"
FILES = ["compose.yaml", "compose.sqlite.yaml"]


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", FILES)
def test_valid_against_compose_spec(name: str) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft201909Validator.check_schema(schema)
    errors = sorted(Draft201909Validator(schema).iter_errors(load(name)), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file() -> None:
    """The schema really constrains: a misspelt key and a bad depends_on condition fail."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = load("compose.yaml")
    broken["services"]["strongroom"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["strongroom"]["depends_on"]["postgres"]["condition"] = "healthy"
    assert len(list(Draft201909Validator(schema).iter_errors(broken))) == 2


@pytest.mark.parametrize("name", FILES)
def test_hardened_and_keys_from_secret_files(name: str) -> None:
    data = load(name)
    app = data["services"]["strongroom"]
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    assert app["user"] == "10001:10001"
    assert "no-new-privileges:true" in app["security_opt"]
    assert app["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert "/opt/strongroom/healthcheck.py" in app["healthcheck"]["test"]
    assert app["volumes"] == ["strongroom-data:/var/lib/strongroom"]
    assert all(p.startswith("127.0.0.1:") for p in app["ports"])
    command = app["command"]
    flags = dict(a.split("=", 1) for a in command if a.startswith("--") and "=" in a)
    assert flags["--master-key-file"] == "/run/secrets/strongroom_master_key"
    assert flags["--jwt-secret-file"] == "/run/secrets/strongroom_jwt_secret"
    # Secrets come from files only, and every referenced secret is defined.
    env = app.get("environment", {})
    assert not {"VAULT_MASTER_KEY", "VAULT_JWT_SECRET"} & set(env)
    assert not any("@" in v and ":" in v.split("@")[0].split("//")[-1] for v in env.values()), (
        "a password in DATABASE_URL"
    )
    for service in data["services"].values():
        for secret in service.get("secrets", []):
            assert secret in data["secrets"]
    for secret in data["secrets"].values():
        assert secret["file"].startswith("./secrets/")


def test_postgres_variant_waits_for_a_healthy_database() -> None:
    data = load("compose.yaml")
    app, db = data["services"]["strongroom"], data["services"]["postgres"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in db["healthcheck"]["test"]
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert app["environment"]["PGPASSFILE"] == "/run/secrets/strongroom_pgpass"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://strongroom@postgres:5432/")
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert set(data["volumes"]) == {"postgres-data", "strongroom-data"}


def test_sqlite_variant_has_no_database_service() -> None:
    data = load("compose.sqlite.yaml")
    assert list(data["services"]) == ["strongroom"]
    assert (
        "--db-dsn=sqlite:////var/lib/strongroom/vault.db"
        in data["services"]["strongroom"]["command"]
    )


def test_make_secrets(tmp_path: Path) -> None:
    need_root("make-secrets.sh gives each file to the uid that reads it")
    target = tmp_path / "secrets"
    script = str(DEPLOY / "make-secrets.sh")
    run = subprocess.run([script, str(target)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    compose = load("compose.yaml")
    names = {Path(s["file"]).name for s in compose["secrets"].values()}
    assert {p.name for p in target.iterdir()} == names
    owners = {p.name: (p.stat().st_uid, p.stat().st_mode & 0o777) for p in target.iterdir()}
    assert owners == {
        "master_key": (10001, 0o400),
        "jwt_secret": (10001, 0o400),
        "strongroom_pgpass": (10001, 0o400),
        "postgres_password": (999, 0o400),
    }
    assert target.stat().st_mode & 0o777 == 0o700
    assert len((target / "jwt_secret").read_bytes()) >= 32  # the server's minimum
    password = (target / "postgres_password").read_text()
    assert (target / "strongroom_pgpass").read_text() == (
        f"postgres:5432:strongroom:strongroom:{password}\n"
    )
    # Never overwrites a key.
    before = (target / "master_key").read_bytes()
    (target / "jwt_secret").unlink()
    again = subprocess.run([script, str(target)], capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "not overwriting" in again.stderr
    assert (target / "master_key").read_bytes() == before
