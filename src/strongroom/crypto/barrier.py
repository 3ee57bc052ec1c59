"""The barrier: the only holder of key material.

Key hierarchy (DESIGN §3)::

    master key --Argon2id(salt)--> KEK --wraps--> root key --wraps--> data keys (terms)
                                                    |             `--encrypt--> versions
                                                    `--HKDF--> audit MAC key

The barrier hands out envelopes and plaintexts, never a key. Locking overwrites the bytearrays
that hold keys. What Python cannot promise (copies inside OpenSSL contexts, the interpreter's own
buffers) is stated in docs/security.md. This module must never log, return or format key bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom import errors
from strongroom.crypto.envelope import FORMAT_TAG, NONCE_SIZE, Envelope, encode_aad
from strongroom.crypto.kdf import KEY_SIZE, KDFParams, derive_kek, new_salt

__all__ = ["Barrier", "SealedRoot", "SealedTerm"]


@dataclass(frozen=True, slots=True)
class SealedRoot:
    """What storage keeps to reopen the vault: salt, KDF parameters and the wrapped root key."""

    vault_id: str
    salt: bytes
    kdf_params: dict[str, Any]
    wrapped_root: str


@dataclass(frozen=True, slots=True)
class SealedTerm:
    """One data key, wrapped under the root key."""

    term: int
    wrapped_key: str


def _wipe(buf: bytearray) -> None:
    for i in range(len(buf)):
        buf[i] = 0


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(NONCE_SIZE)
    return Envelope(0, nonce, AESGCM(key).encrypt(nonce, plaintext, aad)).to_text()


def _open(key: bytes, text: str, aad: bytes) -> bytearray:
    env = Envelope.from_text(text)
    return bytearray(AESGCM(key).decrypt(env.nonce, env.ciphertext, aad))


class Barrier:
    """Holds the root key and the keyring while unlocked; encrypts, decrypts and MACs."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._vault_id: str | None = None
        self._root: bytearray | None = None
        self._mac_key: bytearray | None = None
        self._keys: dict[int, bytearray] = {}
        self._ciphers: dict[int, AESGCM] = {}

    # -- state ------------------------------------------------------------------------------
    @property
    def is_unlocked(self) -> bool:
        """True while the root key is held."""
        return self._root is not None

    @property
    def vault_id(self) -> str:
        """Id of the unlocked vault (bound into every AAD)."""
        if self._vault_id is None:
            raise errors.VaultLocked()
        return self._vault_id

    @property
    def current_term(self) -> int:
        """The newest data-key term; new encryptions use it."""
        if not self._keys:
            raise errors.VaultLocked()
        return max(self._keys)

    @property
    def terms(self) -> list[int]:
        """Every term this barrier can decrypt."""
        return sorted(self._keys)

    # -- lifecycle --------------------------------------------------------------------------
    def initialize(self, master_key: str, params: KDFParams) -> tuple[SealedRoot, SealedTerm]:
        """Create a new vault's root key and first data key; leaves the barrier unlocked."""
        params.check()
        vault_id = os.urandom(16).hex()
        root = bytearray(os.urandom(KEY_SIZE))
        sealed = self._wrap_root(vault_id, root, master_key, params)
        with self._mutex:
            self._install(vault_id, root)
        return sealed, self.new_term(1)

    def unlock(self, master_key: str, sealed: SealedRoot, terms: list[SealedTerm]) -> None:
        """Derive the KEK (one Argon2id run), unwrap the root key and every data key.

        Raises:
            InvalidMasterKey: the key does not open the wrapped root key (or it is damaged).
            IntegrityError: a data key fails to unwrap under a correct root key.
        """
        params = KDFParams.from_dict(sealed.kdf_params)
        kek = derive_kek(master_key, sealed.salt, params)
        try:
            root = _open(bytes(kek), sealed.wrapped_root, self._root_aad(sealed.vault_id))
        except (InvalidTag, errors.IntegrityError) as exc:
            raise errors.InvalidMasterKey() from exc
        finally:
            _wipe(kek)
        with self._mutex:
            self._install(sealed.vault_id, root)
        try:
            self.load_terms(terms)
        except errors.IntegrityError:
            self.lock()
            raise

    def matches(self, master_key: str, sealed: SealedRoot) -> bool:
        """True when `master_key` opens `sealed` (one Argon2id run); used to refuse reuse."""
        kek = derive_kek(master_key, sealed.salt, KDFParams.from_dict(sealed.kdf_params))
        try:
            _wipe(_open(bytes(kek), sealed.wrapped_root, self._root_aad(sealed.vault_id)))
            return True
        except (InvalidTag, errors.IntegrityError):
            return False
        finally:
            _wipe(kek)

    def lock(self) -> None:
        """Overwrite and drop every key held."""
        with self._mutex:
            for buf in (self._root, self._mac_key, *self._keys.values()):
                if buf is not None:
                    _wipe(buf)
            self._root = self._mac_key = None
            self._keys.clear()
            self._ciphers.clear()
            self._vault_id = None

    def load_terms(self, terms: list[SealedTerm]) -> None:
        """Unwrap data keys not yet held (another process may have added a term).

        Raises:
            IntegrityError: a wrapped data key was modified.
        """
        root = self._require_root()
        for sealed in terms:
            if sealed.term in self._keys:
                continue
            try:
                key = _open(bytes(root), sealed.wrapped_key, self._term_aad(sealed.term))
            except InvalidTag as exc:
                raise errors.IntegrityError("keyring integrity check failed") from exc
            with self._mutex:
                self._keys[sealed.term] = key
                self._ciphers[sealed.term] = AESGCM(bytes(key))

    def new_term(self, term: int, *, install: bool = True) -> SealedTerm:
        """Generate data key `term` and return it wrapped for storage.

        With `install=False` the key is not held yet: the caller loads it (`load_terms`) once
        the wrapped key is durably stored, so nothing is ever encrypted under a key that a
        rolled-back transaction lost.
        """
        root = self._require_root()
        key = bytearray(os.urandom(KEY_SIZE))
        wrapped = _seal(bytes(root), bytes(key), self._term_aad(term))
        if install:
            with self._mutex:
                self._keys[term] = key
                self._ciphers[term] = AESGCM(bytes(key))
        else:
            _wipe(key)
        return SealedTerm(term, wrapped)

    def rewrap(self, new_master_key: str, params: KDFParams) -> SealedRoot:
        """Wrap the same root key under a KEK derived from `new_master_key` (fresh salt)."""
        params.check()
        root = self._require_root()
        return self._wrap_root(self.vault_id, root, new_master_key, params)

    # -- data -------------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, *context: str | int | None, term: int | None = None) -> str:
        """Encrypt under `term` (default: newest), binding `context` into the AAD."""
        use = self.current_term if term is None else term
        cipher = self._ciphers.get(use)
        if cipher is None:
            raise errors.VaultLocked()
        nonce = os.urandom(NONCE_SIZE)
        aad = encode_aad(FORMAT_TAG, self.vault_id, *context)
        return Envelope(use, nonce, cipher.encrypt(nonce, plaintext, aad)).to_text()

    def decrypt(self, text: str, *context: str | int | None) -> bytes:
        """Decrypt an envelope written with the same `context`.

        Raises:
            IntegrityError: any failure: bad encoding, unknown term, wrong context, flipped bit.
            VaultLocked: the barrier holds no keys.
        """
        env = Envelope.from_text(text)
        if not self.is_unlocked:
            raise errors.VaultLocked()
        cipher = self._ciphers.get(env.term)
        if cipher is None:
            raise errors.IntegrityError("unknown key term")
        aad = encode_aad(FORMAT_TAG, self.vault_id, *context)
        try:
            return cipher.decrypt(env.nonce, env.ciphertext, aad)
        except InvalidTag as exc:
            raise errors.IntegrityError() from exc

    @staticmethod
    def envelope_term(text: str) -> int:
        """The key term an envelope names (no decryption)."""
        return Envelope.from_text(text).term

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 of `data` under the audit key (hex)."""
        key = self._mac_key
        if key is None:
            raise errors.VaultLocked()
        return hmac.new(bytes(key), data, hashlib.sha256).hexdigest()

    # -- internals --------------------------------------------------------------------------
    def _install(self, vault_id: str, root: bytearray) -> None:
        self._vault_id = vault_id
        self._root = root
        mac_key = HKDF(hashes.SHA256(), KEY_SIZE, salt=None, info=b"strongroom audit chain v1")
        self._mac_key = bytearray(mac_key.derive(bytes(root)))

    def _require_root(self) -> bytearray:
        if self._root is None:
            raise errors.VaultLocked()
        return self._root

    def _root_aad(self, vault_id: str) -> bytes:
        return encode_aad(FORMAT_TAG, "root", vault_id)

    def _term_aad(self, term: int) -> bytes:
        return encode_aad(FORMAT_TAG, "term", self.vault_id, term)

    def _wrap_root(
        self, vault_id: str, root: bytearray, master_key: str, params: KDFParams
    ) -> SealedRoot:
        salt = new_salt()
        kek = derive_kek(master_key, salt, params)
        try:
            wrapped = _seal(bytes(kek), bytes(root), self._root_aad(vault_id))
        finally:
            _wipe(kek)
        return SealedRoot(vault_id, salt, json.loads(json.dumps(params.to_dict())), wrapped)
