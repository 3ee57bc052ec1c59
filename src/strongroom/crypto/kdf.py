"""Argon2id key derivation: master key + salt -> 32-byte KEK. Run at unlock and rotation only."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from strongroom import errors

__all__ = ["KDFParams", "derive_kek", "new_salt"]

SALT_SIZE = 16
KEY_SIZE = 32


@dataclass(frozen=True, slots=True)
class KDFParams:
    """Argon2id cost parameters (RFC 9106 second recommendation by default)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for storage beside the salt."""
        return {"alg": "argon2id", "version": 19, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KDFParams:
        """Rebuild stored parameters.

        Raises:
            IntegrityError: the stored parameters are not Argon2id or out of range.
        """
        try:
            params = cls(int(data["time_cost"]), int(data["memory_kib"]), int(data["parallelism"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.IntegrityError("stored key-derivation parameters are corrupt") from exc
        if data.get("alg") != "argon2id":
            raise errors.IntegrityError("stored key-derivation parameters are corrupt")
        params.check()
        return params

    def check(self) -> None:
        """Raise InvalidInput unless the parameters are within Argon2's bounds."""
        if not (
            1 <= self.time_cost <= 100
            and 8 <= self.memory_kib <= 4 * 1024 * 1024
            and 1 <= self.parallelism <= 64
            and self.memory_kib >= 8 * self.parallelism
        ):
            raise errors.InvalidInput("invalid Argon2id parameters")


def new_salt() -> bytes:
    """A fresh random salt."""
    return os.urandom(SALT_SIZE)


def derive_kek(master_key: str, salt: bytes, params: KDFParams) -> bytearray:
    """Derive the key-encryption key; the caller wipes the returned bytearray."""
    from argon2.low_level import Type, hash_secret_raw  # cffi: loaded on first derive

    raw = hash_secret_raw(
        master_key.encode("utf-8"),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_SIZE,
        type=Type.ID,
    )
    return bytearray(raw)
