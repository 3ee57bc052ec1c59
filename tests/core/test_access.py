"""Access control in the core: users, policies, JWT verification, login throttling."""

from __future__ import annotations

import time
import warnings
from datetime import timedelta

import jwt
import pytest

from strongroom import Vault, errors
from strongroom.clock import ManualClock
from strongroom.core.access import LoginLimiter
from strongroom.core.policy import Policy, Rule, parse_rules, rules_from_json, rules_to_json
from strongroom.core.tokens import JWTAuth
from strongroom.models import Actor

SECRET = "k" * 32


def test_users_roundtrip_and_authenticate(vault: Vault) -> None:
    alice = vault.access.create_user("alice", "password-one-1", "Admin", policies=["p1"])
    assert (alice.username, alice.role, alice.policies, alice.disabled) == (
        "alice",
        "Admin",
        ("p1",),
        False,
    )
    assert [u.username for u in vault.access.list_users()] == ["alice"]
    assert vault.access.authenticate("alice", "password-one-1").id == alice.id
    with pytest.raises(errors.AuthenticationFailed, match="invalid username or password"):
        vault.access.authenticate("alice", "wrong-password")
    with pytest.raises(errors.AuthenticationFailed):
        vault.access.authenticate("nobody", "password-one-1")
    with pytest.raises(errors.Conflict):
        vault.access.create_user("alice", "password-two-2", "Admin")
    vault.access.set_user_disabled("alice")
    with pytest.raises(errors.AuthenticationFailed):
        vault.access.authenticate("alice", "password-one-1")
    with pytest.raises(errors.UserNotFound):
        vault.access.set_user_disabled("nobody")
    logins = vault.audit_logs(action="login")
    assert [e.success for e in logins] == [False, False, False, True]


@pytest.mark.parametrize(
    ("username", "password", "role"),
    [
        ("", "password-one-1", "Admin"),
        ("a b", "password-one-1", "Admin"),
        ("ok", "short", "Admin"),
        ("ok", "password-one-1", ""),
        ("ok", "password-one-1", "x" * 65),
    ],
)
def test_user_validation(vault: Vault, username: str, password: str, role: str) -> None:
    with pytest.raises(errors.InvalidInput):
        vault.access.create_user(username, password, role)


def test_users_work_while_locked(vault: Vault) -> None:
    vault.lock()
    vault.access.create_user("bob", "password-one-1", "User")
    assert vault.access.authenticate("bob", "password-one-1").role == "User"


def test_policies(vault: Vault) -> None:
    vault.access.write_policy(
        "billing", "# app billing\napp/billing/*: read, list\napp/+/cfg: read\n"
    )
    (policy,) = vault.access.get_policies(["billing", "missing"])
    assert policy.allows("read", "app/billing/stripe")
    assert policy.allows("list", "app/billing/a/b")
    assert policy.allows("read", "app/x/cfg")
    assert not policy.allows("read", "app/x/y/cfg")
    assert not policy.allows("update", "app/billing/stripe")
    assert not policy.allows("read", "app/billingx")
    assert not policy.allows("read", "other/app/billing/x")
    assert [p.name for p in vault.access.list_policies()] == ["billing"]
    vault.access.delete_policy("billing")
    assert vault.access.get_policies(["billing"]) == []
    with pytest.raises(errors.NotFound):
        vault.access.delete_policy("billing")


@pytest.mark.parametrize(
    "text",
    ["", "app/*", "app/*: fly", "app/*:", "a//b: read", '[{"path": 1}]', "[1]", "bad name: read"],
)
def test_bad_policies(text: str) -> None:
    with pytest.raises(errors.InvalidInput):
        parse_rules(text)


def test_rules_json_roundtrip() -> None:
    rules = parse_rules("a/*: read\nb/c: update, delete")
    assert rules_from_json(rules_to_json(rules)) == rules
    assert Policy("p", (Rule("*", frozenset({"read"})),)).allows("read", "any/path/at/all")


def test_jwt_issue_verify_and_cache() -> None:
    auth = JWTAuth(SECRET)
    token, expires_at = auth.issue(7, "App", ttl=timedelta(minutes=5), policies=["p"])
    who = auth.verify(token)
    assert (who.user_id, who.role, who.policies) == (7, "App", ("p",))
    assert auth.verify(token) is who  # cached
    assert expires_at.tzinfo is not None


def test_jwt_rejections() -> None:
    auth = JWTAuth(SECRET)
    now = int(time.time())
    bad = [
        jwt.encode({"sub": "1", "role": "A", "exp": now - 30}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "1", "role": "A", "exp": now + 60, "nbf": now + 60}, SECRET, algorithm="HS256"
        ),
        jwt.encode({"sub": "1", "role": "A"}, SECRET, algorithm="HS256"),
        jwt.encode({"role": "A", "exp": now + 60}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "1", "exp": now + 60}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": True, "role": "A", "exp": now + 60}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "1", "role": "A", "exp": now + 60}, "z" * 32, algorithm="HS256"),
        jwt.encode(
            {"sub": "1", "role": "A", "exp": now + 60, "policies": "p"}, SECRET, algorithm="HS256"
        ),
        "a.b.c",
        "",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bad.append(
            jwt.encode({"sub": "1", "role": "A", "exp": now + 60}, SECRET, algorithm="HS384")
        )
    for token in bad:
        with pytest.raises(errors.AuthenticationFailed):
            auth.verify(token)


def test_jwt_secret_length() -> None:
    with pytest.raises(errors.InvalidInput, match="at least 32 bytes"):
        JWTAuth("short")


def test_login_limiter_backs_off_per_user_and_per_ip() -> None:
    clock = ManualClock()
    limiter = LoginLimiter(clock, free_per_user=2, free_per_ip=3)
    limiter.failed("u", "1.1.1.1")
    limiter.check("u", "1.1.1.1")
    limiter.failed("u", "1.1.1.1")
    with pytest.raises(errors.TooManyAttempts) as caught:
        limiter.check("u", "2.2.2.2")
    assert caught.value.retry_after == pytest.approx(5.0)
    limiter.check("v", "2.2.2.2")
    clock.advance(timedelta(seconds=6))
    limiter.check("u", "1.1.1.1")
    limiter.failed("w", "1.1.1.1")
    with pytest.raises(errors.TooManyAttempts):
        limiter.check("fresh-user", "1.1.1.1")
    limiter.succeeded("u")
    clock.advance(timedelta(seconds=30))
    limiter.check("u", "1.1.1.1")


def test_record_denied_and_expiring(vault: Vault, clock: ManualClock) -> None:
    vault.access.record_denied("read", "x/y", Actor(9, "10.0.0.1", "rid-1"))
    (entry,) = vault.audit_logs(path="x/y")
    assert (entry.success, entry.error, entry.user_id, entry.request_id) == (
        False,
        "PermissionDenied",
        9,
        "rid-1",
    )
    vault.create_secret("soon", "v", expires_in=timedelta(days=2))
    vault.create_secret("later", "v", expires_in=timedelta(days=30))
    assert vault.secrets.count_expiring(timedelta(days=7)) == 1
    vault.state.auto_lock()
    assert vault.is_locked
    vault.unlock("test-master-key-0123456789")
    assert [e.user_id for e in vault.audit_logs(action="auto_lock")] == [0]
