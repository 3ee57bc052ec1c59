"""Argon2id password hashes for built-in users (DESIGN §6)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["dummy_verify", "hash_password", "verify_password"]

_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # A hash verified against when the user does not exist, so that a login for an unknown user
    # costs the same time as one for a known user. Computed on first use, not at import: one
    # Argon2id run (~0.7 s) at import would slow every `vaultctl` start.
    return _HASHER.hash("strongroom-timing-equaliser")


def hash_password(password: str) -> str:
    """Return an encoded Argon2id hash."""
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """True when `password` matches `encoded` (constant-time inside argon2)."""
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_verify(password: str) -> None:
    """Spend the time of one verification, for unknown users."""
    verify_password(_dummy_hash(), password)
