"""The TOTP second factor of built-in users (issue 15) on both backends, with an injected clock:
enrolment, login with and without a code, replay refused, disable, audit, no key configured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest

from strongroom import Vault, errors, open_vault
from strongroom.clock import ManualClock
from strongroom.config import Settings
from strongroom.core.backup import restore
from strongroom.models import Actor
from tests.conftest import MASTER_KEY, fast_config

WHO = Actor(1, "10.1.1.1", "r")
PASSWORD = "a-long-enough-password"
TOTP_KEY = "t" * 40


@pytest.fixture
def tvault(dsn: str, clock: ManualClock) -> Iterator[Vault]:
    v = open_vault(dsn, fast_config(clock=clock, auto_lock=False, totp_key=TOTP_KEY))
    v.unlock(MASTER_KEY)
    yield v
    v.close()


def _login(vault: Vault, code: str | None = None, password: str = PASSWORD) -> int:
    return vault.access.authenticate("alice", password, totp=code, actor=WHO).id


def _failures(vault: Vault) -> list[str | None]:
    entries = vault.audit.query(action="login", limit=100)
    return [e.error for e in entries if not e.success]


def test_login_needs_a_fresh_code_once_enabled(tvault: Vault, clock: ManualClock) -> None:
    alice = tvault.access.create_user("alice", PASSWORD, "Admin")
    assert _login(tvault) == alice.id  # no TOTP yet: the password is enough
    made = tvault.totp.enable("alice", actor=WHO)
    assert made.secret not in repr(made)
    assert made.uri.startswith("otpauth://totp/") and made.secret in made.uri
    assert tvault.access.get_user(alice.id).totp is True  # type: ignore[union-attr]
    totp = pyotp.TOTP(made.secret)
    with pytest.raises(errors.SecondFactorFailed, match="TOTP code is required"):
        _login(tvault)
    with pytest.raises(errors.AuthenticationFailed, match="invalid TOTP code"):
        _login(tvault, "000000" if totp.at(clock.now()) != "000000" else "111111")
    with pytest.raises(errors.AuthenticationFailed, match="invalid username or password") as e:
        _login(tvault, totp.at(clock.now()), password="wrong-password-here")  # checked first
    assert not isinstance(e.value, errors.SecondFactorFailed)  # says nothing about TOTP
    code = totp.at(clock.now())
    assert _login(tvault, code) == alice.id
    with pytest.raises(errors.AuthenticationFailed, match="already used"):
        _login(tvault, code)  # replayed within its window
    earlier = totp.at(clock.now(), counter_offset=-1)
    with pytest.raises(errors.AuthenticationFailed, match="already used"):
        _login(tvault, earlier)  # an older step than the one used
    clock.advance(timedelta(seconds=30))
    assert _login(tvault, totp.at(clock.now())) == alice.id  # the next step's code works
    failures = _failures(tvault)
    assert sorted(str(f) for f in failures) == ["AuthenticationFailed"] + ["SecondFactorFailed"] * 4
    for entry in tvault.audit.query(limit=200):
        assert made.secret not in str(entry.as_dict()) and code not in str(entry.path)


def test_disable_and_reenable(tvault: Vault, clock: ManualClock) -> None:
    tvault.access.create_user("alice", PASSWORD, "App")
    first = tvault.totp.enable("alice", actor=WHO)
    second = tvault.totp.enable("alice", actor=WHO)  # a new seed replaces the old one
    assert first.secret != second.secret
    with pytest.raises(errors.AuthenticationFailed, match="invalid TOTP code"):
        _login(tvault, pyotp.TOTP(first.secret).at(clock.now()))
    tvault.totp.disable("alice", actor=WHO)
    assert _login(tvault) > 0
    with pytest.raises(errors.InvalidInput, match="not enabled"):
        tvault.totp.disable("alice", actor=WHO)
    with pytest.raises(errors.UserNotFound):
        tvault.totp.enable("nobody", actor=WHO)
    done = [(e.action, e.success) for e in tvault.audit.query(limit=50)]
    assert done.count(("user_totp_enable", True)) == 2
    assert done.count(("user_totp_enable", False)) == 1  # the unknown user, audited
    assert done.count(("user_totp_disable", True)) == 1
    assert done.count(("user_totp_disable", False)) == 1


def test_locked_vault_still_checks_codes(tvault: Vault, clock: ManualClock) -> None:
    tvault.access.create_user("alice", PASSWORD, "Admin")
    made = tvault.totp.enable("alice", actor=WHO)
    tvault.lock()
    assert _login(tvault, pyotp.TOTP(made.secret).at(clock.now())) > 0


def test_without_a_totp_key_enrolment_is_refused_and_totp_users_fail_closed(
    dsn: str, clock: ManualClock, tvault: Vault
) -> None:
    tvault.access.create_user("alice", PASSWORD, "App")
    made = tvault.totp.enable("alice", actor=WHO)
    other = open_vault(dsn, fast_config(clock=clock, auto_lock=False))
    wrong = open_vault(dsn, fast_config(clock=clock, auto_lock=False, totp_key="w" * 32))
    try:
        with pytest.raises(errors.SecondFactorFailed, match="does not open"):
            wrong.access.authenticate(
                "alice", PASSWORD, totp=pyotp.TOTP(made.secret).at(clock.now()), actor=WHO
            )
        with pytest.raises(errors.InvalidInput, match="VAULT_TOTP_KEY_FILE"):
            other.totp.enable("alice", actor=WHO)
        with pytest.raises(errors.AuthenticationFailed, match="not configured"):
            other.access.authenticate(
                "alice", PASSWORD, totp=pyotp.TOTP(made.secret).at(clock.now()), actor=WHO
            )
    finally:
        other.close()
        wrong.close()


def test_backup_keeps_the_sealed_seed(tvault: Vault, clock: ManualClock, tmp_path: Path) -> None:
    """A backup carries the sealed seed; a restored vault with the same TOTP key checks codes."""
    tvault.access.create_user("alice", PASSWORD, "App")
    made = tvault.totp.enable("alice", actor=WHO)
    out = tmp_path / "vault.backup"
    with out.open("w") as f:
        tvault.backup.write(f)
    assert made.secret not in out.read_text()
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    config = fast_config(clock=clock, auto_lock=False, totp_key=TOTP_KEY)
    restore(target, out, MASTER_KEY, config)
    restored = open_vault(target, config)
    try:
        code = pyotp.TOTP(made.secret).at(clock.now())
        assert restored.access.authenticate("alice", PASSWORD, totp=code, actor=WHO).totp
    finally:
        restored.close()


def test_settings_read_the_totp_key_file(tmp_path: Path) -> None:
    key = tmp_path / "totp.key"
    key.write_text(TOTP_KEY + "\n")
    settings = Settings.from_env({"VAULT_TOTP_KEY_FILE": str(key)})
    assert settings.vault_config().totp_key == TOTP_KEY
    assert TOTP_KEY not in repr(settings.vault_config())
    with pytest.raises(errors.InvalidInput, match="cannot read key file"):
        Settings.from_env({"VAULT_TOTP_KEY_FILE": str(tmp_path / "missing")})
    key.write_text("short")
    with pytest.raises(errors.InvalidInput, match="at least 32 bytes"):
        open_vault(f"sqlite:///{tmp_path / 'v.db'}", Settings.from_env(
            {"VAULT_TOTP_KEY_FILE": str(key)}).vault_config())  # fmt: skip
