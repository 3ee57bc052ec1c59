"""The crypto layer: the only code that touches key material (DESIGN §3).

Names load on first use (PEP 562): the `cryptography` and `argon2` bindings cost ~20 ms of
every `vaultctl` start, and remote commands never need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.crypto.barrier import Barrier, SealedRoot, SealedTerm
    from strongroom.crypto.kdf import KDFParams
    from strongroom.crypto.passwords import dummy_verify, hash_password, verify_password
    from strongroom.crypto.totp import SeedBox, new_seed, otpauth_uri, totp_step

__all__ = [
    "Barrier",
    "KDFParams",
    "SealedRoot",
    "SealedTerm",
    "SeedBox",
    "dummy_verify",
    "hash_password",
    "new_seed",
    "otpauth_uri",
    "totp_step",
    "verify_password",
]

_HOME = {
    **dict.fromkeys(["Barrier", "SealedRoot", "SealedTerm"], "strongroom.crypto.barrier"),
    "KDFParams": "strongroom.crypto.kdf",
    **dict.fromkeys(
        ["dummy_verify", "hash_password", "verify_password"], "strongroom.crypto.passwords"
    ),
    **dict.fromkeys(["SeedBox", "new_seed", "otpauth_uri", "totp_step"], "strongroom.crypto.totp"),
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'strongroom.crypto' has no attribute {name!r}")
    return getattr(import_module(module), name)
