"""The crypto layer: the only code that touches key material (DESIGN §3)."""

from strongroom.crypto.barrier import Barrier, SealedRoot, SealedTerm
from strongroom.crypto.kdf import KDFParams
from strongroom.crypto.passwords import dummy_verify, hash_password, verify_password

__all__ = [
    "Barrier",
    "KDFParams",
    "SealedRoot",
    "SealedTerm",
    "dummy_verify",
    "hash_password",
    "verify_password",
]
