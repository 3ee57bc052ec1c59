"""TOTP seeds of built-in users: generation, sealing under the server's TOTP key, code checks.

A seed must be readable while the vault is locked (an administrator logs in to unlock), so it
cannot be encrypted under the barrier's data keys. It is sealed with AES-256-GCM under a key
derived (HKDF-SHA256) from the TOTP key file every server process shares
(`VAULT_TOTP_KEY_FILE`), bound to the user's id. This module never logs or returns a code it
was given, and returns a seed only to the enrolment that created it.
"""

from __future__ import annotations

import base64
import hmac
import os
from datetime import datetime

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom import errors

__all__ = ["STEP_SECONDS", "SeedBox", "new_seed", "otpauth_uri", "totp_step"]

STEP_SECONDS = 30
_TAG = "t1."
_INFO = b"strongroom totp seed v1"
_MIN_KEY = 32


def new_seed() -> str:
    """A fresh base32 seed of 160 random bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def otpauth_uri(seed: str, username: str, issuer: str = "Strongroom") -> str:
    """The `otpauth://totp/...` URI an authenticator app scans."""
    return pyotp.TOTP(seed).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(now: datetime) -> int:
    """The 30-second time step `now` falls in."""
    return int(now.timestamp()) // STEP_SECONDS


def _aad(user_id: int) -> bytes:
    return f"strongroom-totp|{user_id}".encode()


class SeedBox:
    """Seals and opens TOTP seeds under the server's TOTP key, and checks codes."""

    def __init__(self, key: str) -> None:
        """`key`: the TOTP key file's content (at least 32 characters).

        Raises:
            InvalidInput: the key is too short.
        """
        raw = key.encode("utf-8")
        if len(raw) < _MIN_KEY:
            raise errors.InvalidInput(f"the TOTP key must be at least {_MIN_KEY} bytes")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)
        self._aead = AESGCM(derived)

    def seal(self, seed: str, user_id: int) -> str:
        """The seed encrypted and bound to `user_id`, as text for the users table."""
        nonce = os.urandom(12)
        body = self._aead.encrypt(nonce, seed.encode("ascii"), _aad(user_id))
        return _TAG + base64.b64encode(nonce + body).decode("ascii")

    def open(self, sealed: str, user_id: int) -> str:
        """The seed of `sealed`.

        Raises:
            IntegrityError: not sealed under this key for this user (or altered).
        """
        try:
            if not sealed.startswith(_TAG):
                raise ValueError(sealed[:3])
            blob = base64.b64decode(sealed[len(_TAG) :], validate=True)
            return self._aead.decrypt(blob[:12], blob[12:], _aad(user_id)).decode("ascii")
        except (ValueError, InvalidTag) as exc:
            raise errors.IntegrityError("a TOTP seed failed its integrity check") from exc

    def matching_step(self, sealed: str, user_id: int, code: str, now: datetime) -> int | None:
        """The time step (now - 1, now or now + 1) whose code equals `code`, or None.

        Every candidate is compared in constant time, and all three are always compared.

        Raises:
            IntegrityError: the stored seed does not open (see `open`).
        """
        totp = pyotp.TOTP(self.open(sealed, user_id))
        step = totp_step(now)
        given = code.strip().encode("ascii", "replace")
        found: int | None = None
        for offset in (-1, 0, 1):
            expected = totp.at(now, counter_offset=offset).encode("ascii")
            if hmac.compare_digest(expected, given) and found is None:
                found = step + offset
        return found
