"""Byte layout of a stored ciphertext and of associated data; holds no keys.

Envelope (base64 text in a TEXT column)::

    format tag (1 byte, 0x01) | key term (4 bytes, big-endian) | nonce (12) | ciphertext + tag (16)

Associated data is a sequence of length-prefixed fields, so no two different tuples encode to the
same bytes (``("ab", "c")`` and ``("a", "bc")`` differ).
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from strongroom import errors
from strongroom.records import constructor

__all__ = ["FORMAT_TAG", "NONCE_SIZE", "TAG_SIZE", "Envelope", "encode_aad"]

FORMAT_TAG = 0x01
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER = struct.Struct(">BI")
_LENGTH = struct.Struct(">I").pack


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed envelope: which term's key, the nonce and the AEAD output."""

    term: int
    nonce: bytes
    ciphertext: bytes

    def to_text(self) -> str:
        """Serialise as base64 text."""
        raw = _HEADER.pack(FORMAT_TAG, self.term) + self.nonce + self.ciphertext
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Envelope:
        """Parse base64 text.

        Raises:
            IntegrityError: not base64, too short, or an unknown format tag.
        """
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError, AttributeError) as exc:
            raise errors.IntegrityError() from exc
        if len(raw) < _HEADER.size + NONCE_SIZE + TAG_SIZE:
            raise errors.IntegrityError()
        tag, term = _HEADER.unpack_from(raw)
        if tag != FORMAT_TAG:
            raise errors.IntegrityError()
        start = _HEADER.size
        new = _new_envelope if cls is Envelope else cls
        return new(term, raw[start : start + NONCE_SIZE], raw[start + NONCE_SIZE :])


#: `Envelope(...)` built faster, for every decryption (`strongroom.records`).
_new_envelope = constructor(Envelope)


def encode_aad(*fields: str | int | bytes | None) -> bytes:
    """Length-prefix each field (type byte + 4-byte length + bytes) into one AAD string."""
    parts: list[bytes] = []
    for value in fields:
        if value is None:
            parts.append(b"n\0\0\0\0")
            continue
        if isinstance(value, str):
            kind, data = b"s", value.encode("utf-8")
        elif isinstance(value, bool):
            raise TypeError("bool is not an AAD field type")
        elif isinstance(value, int):
            kind, data = b"i", str(value).encode("ascii")
        else:
            kind, data = b"b", bytes(value)
        parts += (kind, _LENGTH(len(data)), data)
    return b"".join(parts)
