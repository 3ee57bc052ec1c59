"""The TOTP second factor on a real server (issue 15): enrolment through the administration
API, `/api/auth/login` and `/v1/auth/userpass/login` with and without a code, a replayed code
refused, wrong codes throttled and audited, neither seed nor code in the server's log; and
`vaultctl user totp enable|disable` as a subprocess, locally and in remote mode."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.integration.cli_support import Vaultctl, one_error_line
from tests.integration.kv2_support import bao_binary
from tests.integration.server_proc import ServerProcess, auth, token

PASSWORD = "a-long-enough-password"


def _key_file(tmp: Path) -> Path:
    path = tmp / "totp.key"
    path.write_text("0123456789abcdef" * 4 + "\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("totp")
    proc = ServerProcess(tmp, args=["--totp-key-file", str(_key_file(tmp))]).start()
    yield proc
    proc.stop()


def _admin(server: ServerProcess, method: str, path: str, role: str = "SuperAdmin", **kw: Any):
    return httpx.request(
        method, f"{server.url}/api/vault{path}", headers=auth(role), timeout=10, **kw
    )


def _login(server: ServerProcess, user: str, **extra: str) -> httpx.Response:
    body = {"username": user, "password": PASSWORD, **extra}
    return httpx.post(f"{server.url}/api/auth/login", json=body, timeout=10)


def _enrolled(server: ServerProcess, user: str, role: str = "App") -> pyotp.TOTP:
    new = {"username": user, "password": PASSWORD, "role": role}
    assert _admin(server, "POST", "/users", json=new).status_code == 201
    made = _admin(server, "POST", f"/users/{user}/totp")
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["uri"].startswith("otpauth://totp/") and body["secret"] in body["uri"]
    return pyotp.TOTP(body["secret"])


def test_login_with_and_without_a_code_and_replay(server: ServerProcess) -> None:
    totp = _enrolled(server, "tess")
    shown = _admin(server, "GET", "/users/tess").json()
    assert shown["totp"] is True and "secret" not in shown
    missing = _login(server, "tess")
    assert missing.status_code == 401
    assert missing.json()["error"] == "a TOTP code is required for this user"
    assert missing.json()["code"] == "second_factor_failed"
    code = totp.now()
    ok = _login(server, "tess", totp=code)
    assert ok.status_code == 200 and ok.json()["token"].startswith("sr.")
    replay = _login(server, "tess", totp=code)
    assert replay.status_code == 401 and replay.json()["error"] == "TOTP code already used"
    bad_type = httpx.post(
        f"{server.url}/api/auth/login",
        json={"username": "tess", "password": PASSWORD, "totp": 123456},
        timeout=10,
    )
    assert bad_type.status_code == 400
    # /v1 userpass: the code in the body as `totp`; the next step's code (inside the window).
    v1 = f"{server.url}/v1/auth/userpass/login/tess"
    refused = httpx.post(v1, json={"password": PASSWORD}, timeout=10)
    assert refused.status_code == 400
    assert refused.json() == {"errors": ["a TOTP code is required for this user"]}
    later = totp.at(time.time(), counter_offset=1)
    logged = httpx.post(v1, json={"password": PASSWORD, "totp": later}, timeout=10)
    assert logged.status_code == 200, logged.text
    assert logged.json()["auth"]["client_token"].startswith("sr.")
    again = httpx.post(v1, json={"password": PASSWORD, "totp": later}, timeout=10)
    assert again.status_code == 400
    assert again.json() == {"errors": ["TOTP code already used"]}
    wrong_password = httpx.post(v1, json={"password": "not-the-password!", "totp": later})
    assert wrong_password.json() == {"errors": ["invalid username or password"]}
    # Disabling: the password alone logs in again; audited.
    assert _admin(server, "DELETE", "/users/tess/totp").status_code == 200
    assert _login(server, "tess").status_code == 200
    assert _admin(server, "DELETE", "/users/tess/totp").status_code == 400
    logs = _admin(server, "GET", "/audit", params={"action": "user_totp_disable"}).json()["logs"]
    assert [e["success"] for e in logs] == [False, True]
    log = server.output()
    assert totp.secret not in log and code not in log


def test_wrong_codes_are_throttled_and_audited(server: ServerProcess) -> None:
    totp = _enrolled(server, "wanda")
    valid = {totp.at(time.time(), counter_offset=o) for o in (-1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    for _ in range(5):
        r = _login(server, "wanda", totp=wrong)
        assert r.status_code == 401 and r.json()["error"] == "invalid TOTP code"
    throttled = _login(server, "wanda", totp=totp.now())
    assert throttled.status_code == 429 and "retry" in throttled.json()["error"]
    logs = _admin(server, "GET", "/audit", params={"action": "login", "limit": 100}).json()
    failed = [e for e in logs["logs"] if not e["success"] and e["user_id"] > 0]
    assert sum(e["error"] == "SecondFactorFailed" for e in failed) >= 5
    assert any(e["error"] == "TooManyAttempts" for e in logs["logs"])


def test_who_may_enrol(server: ServerProcess) -> None:
    boss = {"username": "bossy", "password": PASSWORD, "role": "Admin"}
    assert _admin(server, "POST", "/users", json=boss).status_code == 201
    assert _admin(server, "POST", "/users/bossy/totp", "Admin").status_code == 403
    assert _admin(server, "POST", "/users/bossy/totp", "App").status_code == 403
    assert _admin(server, "POST", "/users/nobody/totp").status_code == 404
    assert _login(server, "bossy").status_code == 200  # nothing was enabled


def test_cli_enrolment_local_and_remote(tmp_path: Path, server: ServerProcess) -> None:
    vc = Vaultctl(
        f"sqlite:///{tmp_path / 'v.db'}",
        tmp_path,
        extra_env={"VAULT_TOTP_KEY_FILE": str(_key_file(tmp_path))},
    )
    vc.ok("user", "create", "--username", "cli", "--role", "App", "--password-stdin",
          input=PASSWORD + "\n")  # fmt: skip
    out = vc.ok("user", "totp", "enable", "cli")
    assert out.startswith("TOTP enabled: cli\nSecret: ") and "URI: otpauth://totp/" in out
    listed = json.loads(vc.ok("user", "list", "--format", "json"))
    assert listed["users"][0]["totp"] is True
    assert vc.ok("user", "totp", "disable", "cli") == "TOTP disabled: cli\n"
    one_error_line(vc("user", "totp", "disable", "cli"), 2, "TOTP is not enabled")
    one_error_line(vc("user", "totp", "enable", "nobody"), 1, "user not found")
    del vc.extra_env["VAULT_TOTP_KEY_FILE"]
    one_error_line(vc("user", "totp", "enable", "cli"), 2, "VAULT_TOTP_KEY_FILE")
    # Remote: through the server's /api/vault/users/<user>/totp.
    new = {"username": "remo", "password": PASSWORD, "role": "App"}
    assert _admin(server, "POST", "/users", json=new).status_code == 201
    vc.extra_env.update({"VAULT_ADDR": server.url, "VAULT_TOKEN": token("Admin")})
    made = json.loads(vc.ok("user", "totp", "enable", "remo", "--format", "json"))
    assert set(made) == {"username", "secret", "uri"}
    assert _login(server, "remo", totp=pyotp.TOTP(made["secret"]).now()).status_code == 200
    assert vc.ok("user", "totp", "disable", "remo") == "TOTP disabled: remo\n"
    vc.extra_env["VAULT_TOKEN"] = token("App")
    one_error_line(vc("user", "totp", "enable", "remo"), 1, "permission denied")


def test_bao_cli_sends_the_code_in_the_login_body(server: ServerProcess, tmp_path: Path) -> None:
    """As docs/api.md says: `bao write auth/userpass/login/U password=... totp=...`."""
    totp = _enrolled(server, "bart")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update({"HOME": str(tmp_path), "VAULT_ADDR": server.url})

    def bao(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bao_binary(), "write", "-format=json", "auth/userpass/login/bart", *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    refused = bao(f"password={PASSWORD}")
    assert refused.returncode != 0 and "a TOTP code is required" in refused.stderr
    logged = bao(f"password={PASSWORD}", f"totp={totp.now()}")
    assert logged.returncode == 0, logged.stderr
    assert json.loads(logged.stdout)["auth"]["client_token"].startswith("sr.")


def test_replay_refused_across_workers(tmp_path: Path) -> None:
    """Two workers share the claimed step through the database: a code used on one is refused
    on either (new connections, so the kernel spreads them over both)."""
    proc = ServerProcess(tmp_path, workers=2, args=["--totp-key-file", str(_key_file(tmp_path))])
    proc.start()
    try:
        totp = _enrolled(proc, "wes")
        code = totp.now()
        assert _login(proc, "wes", totp=code).status_code == 200
        for _ in range(4):
            again = _login(proc, "wes", totp=code)
            assert again.status_code == 401 and again.json()["error"] == "TOTP code already used"
    finally:
        proc.stop()


def test_console_sign_in_takes_the_totp_code(server: ServerProcess) -> None:
    code = _enrolled(server, "consoleuser")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("/ui/login")
        assert 'name="totp"' in page.text and 'autocomplete="one-time-code"' in page.text
        pre = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"csrf": pre, "username": "consoleuser", "password": PASSWORD}
        refused = client.post("/ui/login", data=form)
        assert refused.status_code == 401 and "TOTP code is required" in refused.text
        assert 'value="consoleuser"' in refused.text  # the name stays for the second try
        done = client.post("/ui/login", data={**form, "totp": code.now()})
        assert done.status_code == 303, done.text
        assert "strongroom_ui=" in done.headers["set-cookie"]
        # Signed in (an App user without policies may see no dashboard, but is no longer
        # sent to the sign-in page).
        assert client.get("/ui/").status_code in (200, 403)
        assert "/ui/login" not in client.get("/ui/").headers.get("location", "")
