"""Barrier, envelope and KDF: known answers, bounds, tamper (issue #2)."""

from __future__ import annotations

import base64

import pytest
from argon2.low_level import Type, hash_secret_raw

from strongroom import errors
from strongroom.crypto import Barrier, KDFParams
from strongroom.crypto.envelope import Envelope, encode_aad
from strongroom.crypto.kdf import derive_kek

CHEAP = KDFParams(1, 1024, 1)


def test_aad_encoding_is_unambiguous() -> None:
    assert encode_aad("ab", "c") != encode_aad("a", "bc")
    assert encode_aad(1, "x") != encode_aad("1", "x")
    assert encode_aad(None) != encode_aad("")
    assert encode_aad("a") == b"s\x00\x00\x00\x01a"
    with pytest.raises(TypeError):
        encode_aad(True)


def test_envelope_round_trip_and_rejects() -> None:
    env = Envelope(7, b"n" * 12, b"c" * 20)
    assert Envelope.from_text(env.to_text()) == env
    raw = base64.b64decode(env.to_text())
    assert raw[0] == 1 and raw[1:5] == b"\x00\x00\x00\x07"
    for bad in [
        "",
        "!!",
        base64.b64encode(b"\x01" + b"\x00" * 10).decode(),
        base64.b64encode(b"\x02" + b"\x00" * 40).decode(),
    ]:
        with pytest.raises(errors.IntegrityError):
            Envelope.from_text(bad)


def test_kdf_matches_argon2id_reference() -> None:
    salt = b"0123456789abcdef"
    expected = hash_secret_raw(
        b"pw", salt, time_cost=1, memory_cost=1024, parallelism=1, hash_len=32, type=Type.ID
    )
    assert bytes(derive_kek("pw", salt, CHEAP)) == expected


def test_kdf_params_bounds() -> None:
    assert KDFParams().to_dict()["memory_kib"] == 65536
    for bad in (KDFParams(0, 1024, 1), KDFParams(1, 4, 1), KDFParams(1, 1024, 0)):
        with pytest.raises(errors.InvalidInput):
            bad.check()
    with pytest.raises(errors.IntegrityError):
        KDFParams.from_dict({"alg": "scrypt", "time_cost": 1, "memory_kib": 1024, "parallelism": 1})


def test_barrier_lifecycle_and_binding() -> None:
    b = Barrier()
    sealed, term = b.initialize("master-key", CHEAP)
    env = b.encrypt(b"secret", "version", 1, "a/b", 1)
    assert b.decrypt(env, "version", 1, "a/b", 1) == b"secret"
    for ctx in [(2, "a/b", 1), (1, "a/c", 1), (1, "a/b", 2)]:
        with pytest.raises(errors.IntegrityError):
            b.decrypt(env, "version", *ctx)
    mac = b.mac(b"data")
    b.lock()
    with pytest.raises(errors.VaultLocked):
        b.encrypt(b"x", "version", 1, "a/b", 1)
    with pytest.raises(errors.InvalidMasterKey):
        Barrier().unlock("wrong", sealed, [term])
    again = Barrier()
    again.unlock("master-key", sealed, [term])
    assert again.decrypt(env, "version", 1, "a/b", 1) == b"secret"
    assert again.mac(b"data") == mac
    assert again.matches("master-key", sealed) and not again.matches("nope", sealed)


def test_new_term_and_rewrap() -> None:
    b = Barrier()
    _, t1 = b.initialize("old-master-key", CHEAP)
    old_env = b.encrypt(b"v", "ctx")
    t2 = b.new_term(2)
    assert b.current_term == 2 and Barrier.envelope_term(b.encrypt(b"v", "ctx")) == 2
    rewrapped = b.rewrap("new-master-key", CHEAP)
    fresh = Barrier()
    with pytest.raises(errors.InvalidMasterKey):
        fresh.unlock("old-master-key", rewrapped, [t1, t2])
    fresh.unlock("new-master-key", rewrapped, [t1, t2])
    assert fresh.decrypt(old_env, "ctx") == b"v"
    unknown = Barrier()
    unknown.unlock("new-master-key", rewrapped, [t2])
    with pytest.raises(errors.IntegrityError, match="unknown key term"):
        unknown.decrypt(old_env, "ctx")
    pending = b.new_term(3, install=False)
    assert b.current_term == 2 and pending.term == 3
