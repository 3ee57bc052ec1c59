"""Recorded tokens (`vault.tokens`): issue, cached verification, revocation seen by another
process through the epoch, renewal capped at max TTL, refusals audited, coarse last use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom import Vault, errors
from strongroom.clock import ManualClock
from strongroom.core.token_records import PREFIX, Tokens, is_recorded
from strongroom.models import Actor

WHO = Actor(5, "10.0.0.9", "req-1")


class Ticker:
    """An injected monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_opaque_and_only_its_hash_is_stored(vault: Vault) -> None:
    issued = vault.tokens.create(42, "App", policies=["b", "a"], ttl=timedelta(hours=1))
    assert is_recorded(issued.token) and issued.token.startswith(PREFIX)
    assert len(issued.token) > 40 and issued.token.count(".") == 1
    who = vault.tokens.verify(issued.token, WHO)
    assert (who.user_id, who.role, who.policies, who.accessor) == (
        42, "App", ("a", "b"), issued.info.accessor,
    )  # fmt: skip
    assert not who.builtin
    rows = [vars_of(r) for r in vault.tokens.list_tokens()]
    assert rows and all(issued.token not in str(v) for v in rows)
    assert issued.info.issuer == 1 and issued.info.max_expires_at == issued.info.expires_at


def vars_of(info: object) -> dict[str, object]:
    return {k: getattr(info, k) for k in info.__slots__}  # type: ignore[attr-defined]


def test_revocation_is_seen_by_another_process_within_the_staleness_bound(vault: Vault) -> None:
    issued = vault.tokens.create(7, "App", ttl=timedelta(hours=1))
    tick = Ticker()
    other = Tokens(vault.state, staleness=1.0, monotonic=tick)  # another worker or instance
    assert other.verify_cached(issued.token) is None  # never checked the epoch: needs I/O
    assert other.verify(issued.token, WHO).user_id == 7
    assert other.verify_cached(issued.token) is not None  # now free of I/O
    vault.tokens.revoke(issued.info.accessor, actor=WHO)
    with pytest.raises(errors.AuthenticationFailed):
        vault.tokens.verify(issued.token, WHO)  # this process: at once
    tick.now += 0.9
    assert other.verify_cached(issued.token) is not None  # within the bound: still cached
    tick.now += 0.2
    assert other.verify_cached(issued.token) is None  # stale: must re-check
    with pytest.raises(errors.AuthenticationFailed, match="invalid token"):
        other.verify(issued.token, WHO)
    refused = vault.audit_logs(action="token_refused")
    assert len(refused) == 2 and not refused[0].success
    assert refused[0].ip_address == "10.0.0.9" and refused[0].error == "AuthenticationFailed"
    assert vault.audit_logs(action="token_revoke")[0].path == f"token:{issued.info.accessor}"


def test_renewal_keeps_the_token_and_is_capped_at_max_ttl(vault: Vault, clock: ManualClock) -> None:
    issued = vault.tokens.create(1, "App", ttl=timedelta(minutes=10), max_ttl=timedelta(minutes=30))
    clock.advance(timedelta(minutes=5))
    info, warnings = vault.tokens.renew(issued.info.accessor)
    assert info.expires_at == clock.now().replace(microsecond=0) + timedelta(minutes=10)
    assert warnings == []
    info, warnings = vault.tokens.renew(issued.info.accessor, timedelta(hours=2))
    assert info.expires_at == issued.info.created_at + timedelta(minutes=30)
    assert len(warnings) == 1 and "capped" in warnings[0]
    assert not info.is_renewable
    assert vault.tokens.verify(issued.token, WHO).expires_at == info.expires_at.timestamp()
    clock.advance(timedelta(minutes=26))
    with pytest.raises(errors.AuthenticationFailed, match="expired"):
        vault.tokens.verify(issued.token, WHO)
    with pytest.raises(errors.NotFound):
        vault.tokens.renew(issued.info.accessor)


def test_revoke_all_of_a_user_and_bad_input(vault: Vault) -> None:
    mine = [vault.tokens.create(9, "App", ttl=timedelta(hours=1)) for _ in range(3)]
    theirs = vault.tokens.create(10, "App", ttl=timedelta(hours=1))
    for t in (*mine, theirs):
        vault.tokens.verify(t.token, WHO)
    assert vault.tokens.revoke_user(9, actor=WHO) == 3
    for t in mine:
        with pytest.raises(errors.AuthenticationFailed):
            vault.tokens.verify(t.token, WHO)
    assert vault.tokens.verify(theirs.token, WHO).user_id == 10
    with pytest.raises(errors.NotFound):
        vault.tokens.revoke("no-such-accessor")
    with pytest.raises(errors.NotFound):
        vault.tokens.lookup(mine[0].info.accessor)
    for bad in (
        dict(ttl=timedelta(0)),
        dict(ttl=timedelta(hours=1), policies=["bad name"]),
        dict(ttl=timedelta(days=4000)),
    ):
        with pytest.raises(errors.InvalidInput):
            vault.tokens.create(1, "App", **bad)
    with pytest.raises(errors.AuthenticationFailed):
        vault.tokens.verify(PREFIX + "forged", WHO)


def test_last_use_is_written_at_most_once_a_minute(vault: Vault, clock: ManualClock) -> None:
    issued = vault.tokens.create(3, "App", ttl=timedelta(hours=1))
    assert vault.tokens.lookup(issued.info.accessor).last_used_at is None
    for _ in range(5):
        vault.tokens.verify(issued.token, WHO)
    assert vault.tokens.flush_last_used() == 1
    first = vault.tokens.lookup(issued.info.accessor).last_used_at
    assert first == clock.now()
    clock.advance(timedelta(seconds=30))
    vault.tokens.verify(issued.token, WHO)
    assert vault.tokens.flush_last_used() == 0  # within the minute: nothing to write
    clock.advance(timedelta(seconds=31))
    vault.tokens.verify(issued.token, WHO)
    assert vault.tokens.flush_last_used() == 1
    assert vault.tokens.lookup(issued.info.accessor).last_used_at == clock.now()


def test_expired_records_are_cleaned_up(vault: Vault, clock: ManualClock) -> None:
    vault.tokens.create(3, "App", ttl=timedelta(minutes=1))
    keep = vault.tokens.create(3, "App", ttl=timedelta(hours=1))
    clock.advance(timedelta(minutes=2))
    assert vault.tokens.cleanup_expired() == 1
    assert [t.accessor for t in vault.tokens.list_tokens()] == [keep.info.accessor]


def test_revoke_a_subjects_jwts_issued_before_a_time(vault: Vault, clock: ManualClock) -> None:
    from strongroom.core.tokens import Principal

    tick = Ticker()
    other = Tokens(vault.state, monotonic=tick)  # another process
    cut = clock.now()
    before = Principal(7, "App", expires_at=cut.timestamp() + 60, issued_at=cut.timestamp() - 1)
    after = Principal(7, "App", expires_at=cut.timestamp() + 60, issued_at=cut.timestamp())
    stranger = Principal(8, "App", expires_at=cut.timestamp() + 60, issued_at=1.0)
    assert other.jwt_allowed_cached(before) is None  # never checked: needs I/O
    other.check_jwt(before, WHO)
    vault.tokens.revoke_jwts_before(7, cut, actor=WHO)
    with pytest.raises(errors.AuthenticationFailed, match="revoked"):
        vault.tokens.check_jwt(before, WHO)  # this process: at once
    vault.tokens.check_jwt(after, WHO)
    vault.tokens.check_jwt(stranger, WHO)
    assert other.jwt_allowed_cached(before) is True  # within the bound: not yet seen
    tick.now += 1.1
    with pytest.raises(errors.AuthenticationFailed):
        other.check_jwt(before, WHO)
    assert vault.audit_logs(action="token_revoke_jwts")[0].path == "user-id:7"
    assert vault.audit_logs(action="token_refused")[0].path == "user-id:7"
    with pytest.raises(errors.InvalidInput):
        vault.tokens.revoke_jwts_before(7, cut.replace(tzinfo=None))
