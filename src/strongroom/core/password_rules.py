"""The rule a built-in user's NEW password must pass (issue 15): at least 12 characters, and not
one of the 10,000 most common passwords.

The list is the first 10,000 entries of the ranked password list that the `zxcvbn` package
ships (`zxcvbn.frequency_lists`, 30,000 passwords from Mark Burnett's / xato.net's 10 million
leaked passwords; MIT licence; see docs/decisions.md). It is loaded once, on first use, and
compared case-insensitively. Checked where a password is set (user creation, reset), never at
login: a user created under the older rule keeps logging in. This module never logs, stores or
echoes a password: its messages name the rule, never the password.
"""

from __future__ import annotations

import functools

from strongroom import errors

__all__ = ["COMMON_COUNT", "MAX_PASSWORD", "MIN_PASSWORD", "check_new_password"]

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
COMMON_COUNT = 10_000


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    ranked: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(p.casefold() for p in ranked[:COMMON_COUNT])


def check_new_password(password: object) -> str:
    """Return `password` if it may become a user's password.

    Raises:
        InvalidInput: not a string of 12-1024 characters, or one of the 10,000 most common.
    """
    if not isinstance(password, str) or not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise errors.InvalidInput(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    if password.casefold() in _common():
        raise errors.InvalidInput(
            f"password is one of the {COMMON_COUNT:,} most common passwords: choose another"
        )
    return password
