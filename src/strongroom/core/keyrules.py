"""The rule a NEW master key must pass: at least 16 characters and not obviously guessable.

Checked where a key starts protecting a vault (initialisation, master-key rotation), never on
unlock: a vault created under an older, weaker rule keeps opening with its key. The strength
estimate is a deliberately small heuristic, not a password cracker (no word lists, no dependency):

- at least 16 characters;
- at least 8 different characters (refuses `aaaaaaaaaaaaaaaa`, `passwordpassword`);
- not one short pattern repeated (`abc123abc123abc1`: a period of at most half the length);
- not mostly runs of equal or consecutive characters (`abcdefghijklmnop`, `1234567890123456`:
  over half of the neighbouring pairs differ by 0 or 1 code point);
- an estimated 64 bits or more, counting log2 of the character classes' pool size per character
  (lower-case 26, upper-case 26, digits 10, uncased letters 26, anything else 33): 16 digits
  (53 bits) are refused, 16 lower-case letters (75 bits) pass.

A generated key (`python -c "import secrets; print(secrets.token_urlsafe(32))"`, as `make run` and
`vaultctl server --dev` do) always passes. This module never logs, stores or echoes a key: its
messages name the rule that failed, never the key.
"""

from __future__ import annotations

import itertools
import math

from strongroom import errors

__all__ = ["MIN_MASTER_KEY_LENGTH", "check_new_master_key", "master_key_weakness"]

MIN_MASTER_KEY_LENGTH = 16
MIN_DISTINCT = 8
MIN_BITS = 64
GENERATE_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _pool(key: str) -> int:
    pool = 0
    pool += 26 if any(c.islower() for c in key) else 0
    pool += 26 if any(c.isupper() for c in key) else 0
    pool += 10 if any(c.isdigit() for c in key) else 0
    pool += 33 if any(not c.isalnum() for c in key) else 0
    # Letters of scripts without case (CJK, Arabic...) count as one more alphabet.
    pool += 26 if any(c.isalpha() and not (c.islower() or c.isupper()) for c in key) else 0
    return pool


def _is_periodic(key: str) -> bool:
    n = len(key)
    return any(all(key[i] == key[i - p] for i in range(p, n)) for p in range(1, n // 2 + 1))


def _mostly_runs(key: str) -> bool:
    steps = [abs(ord(b) - ord(a)) for a, b in itertools.pairwise(key)]
    return sum(1 for s in steps if s <= 1) * 2 > len(steps)


def master_key_weakness(key: str) -> str | None:
    """Why `key` is too weak to protect a new vault, or None when it passes (see module doc)."""
    if len(key) < MIN_MASTER_KEY_LENGTH:
        return f"must be at least {MIN_MASTER_KEY_LENGTH} characters"
    if len(set(key)) < MIN_DISTINCT:
        return f"is too weak: it uses fewer than {MIN_DISTINCT} different characters"
    if _is_periodic(key):
        return "is too weak: it repeats a short pattern"
    if _mostly_runs(key):
        return "is too weak: it is mostly runs like 'aaaa' or 'abcd'"
    if len(key) * math.log2(_pool(key)) < MIN_BITS:
        return f"is too weak: under {MIN_BITS} bits estimated (add letters or symbols)"
    return None


def check_new_master_key(key: object, what: str = "master key") -> str:
    """Return `key` if it may protect a vault from now on.

    Args:
        key: the proposed master key.
        what: how messages name it ("master key", "new master key").

    Raises:
        InvalidInput: not a string, shorter than 16 characters, or of low estimated strength.
    """
    if not isinstance(key, str):
        raise errors.InvalidInput(f"{what} must be a string")
    problem = master_key_weakness(key)
    if problem is not None:
        raise errors.InvalidInput(f"{what} {problem}; {GENERATE_HINT}")
    return key
