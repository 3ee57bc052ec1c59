"""Users (issue 15): change role, reset password, delete; the password rule; every change
revokes the user's recorded tokens at once; who may manage whom."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom import Vault, errors
from strongroom.core.tokens import Principal
from strongroom.models import Actor

WHO = Actor(1, "10.1.1.1", "r")
PASSWORD = "a-long-enough-password"


def _token_for(vault: Vault, user_id: int) -> str:
    return vault.tokens.create(user_id, "App", ttl=timedelta(hours=1), kind="login").token


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v.access.set_user_role("carl", "Other", actor=WHO),
        lambda v: v.access.reset_password("carl", "another-long-password", actor=WHO),
        lambda v: v.access.set_user_disabled("carl", True, actor=WHO),
        lambda v: v.access.set_user_policies("carl", ["x"], actor=WHO),
        lambda v: v.access.delete_user("carl", actor=WHO),
    ],
    ids=["role", "password", "disable", "policies", "delete"],
)
def test_every_user_change_revokes_their_tokens_at_once(vault: Vault, change: object) -> None:
    carl = vault.access.create_user("carl", PASSWORD, "App")
    other = vault.access.create_user("dina", PASSWORD, "App")
    token, kept = _token_for(vault, carl.id), _token_for(vault, other.id)
    assert vault.tokens.verify(token, WHO).user_id == carl.id  # cached now
    change(vault)  # type: ignore[operator]
    with pytest.raises(errors.AuthenticationFailed):
        vault.tokens.verify(token, WHO)
    assert vault.tokens.verify(kept, WHO).user_id == other.id


def test_role_password_and_delete(vault: Vault) -> None:
    carl = vault.access.create_user("carl", PASSWORD, "App")
    assert vault.access.set_user_role("carl", "admin", actor=WHO).role == "Admin"
    vault.access.reset_password("carl", "brand-new-password-9", actor=WHO)
    with pytest.raises(errors.AuthenticationFailed):
        vault.access.authenticate("carl", PASSWORD)
    assert vault.access.authenticate("carl", "brand-new-password-9").role == "Admin"
    vault.access.delete_user("carl", actor=WHO)
    assert vault.access.get_user(carl.id) is None
    with pytest.raises(errors.UserNotFound):
        vault.access.delete_user("carl", actor=WHO)
    entries = vault.audit_logs(user_id=carl.id)
    assert entries, "the user's audit rows keep the id"
    again = vault.access.create_user("carl", PASSWORD, "App")
    assert again.id != carl.id  # ids are never reused
    actions = [e.action for e in vault.audit_logs(path="user:carl", limit=20)]
    assert {"user_role", "user_password", "user_delete"} <= set(actions)


@pytest.mark.parametrize(
    "password",
    ["short-pass1", "qwerty123456", "QWERTY123456", "1q2w3e4r5t6y", "leavemealone"],
)
def test_password_rule(vault: Vault, password: str) -> None:
    with pytest.raises(errors.InvalidInput):
        vault.access.create_user("erin", password, "App")
    vault.access.create_user("erin", PASSWORD, "App")
    with pytest.raises(errors.InvalidInput):
        vault.access.reset_password("erin", password)


def test_only_a_superadmin_manages_administrators(vault: Vault) -> None:
    admin = Principal(1, "Admin")
    superadmin = Principal(2, "SuperAdmin")
    app = Principal(3, "App")
    authz = vault.authorizer
    authz.require_manage(admin, ["App", "Reader"], "user_role", WHO)
    authz.require_manage(superadmin, ["App", "admin"], "user_role", WHO)
    for who, roles in ((admin, ["App", "Admin"]), (admin, ["superadmin"]), (app, ["App"])):
        with pytest.raises(errors.PermissionDenied):
            authz.require_manage(who, roles, "user_role", WHO)
    assert len(vault.audit_logs(action="user_role")) == 3  # every refusal audited
