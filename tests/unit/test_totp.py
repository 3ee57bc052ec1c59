"""TOTP seeds and codes (crypto.totp): sealing binds the seed to its user and key, codes match
only the current step and its neighbours, compared as given (no seed or code in any message)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from strongroom import errors
from strongroom.crypto import SeedBox, new_seed, otpauth_uri, totp_step

KEY = "k" * 32
NOW = datetime(2026, 1, 5, 12, 0, 10, tzinfo=UTC)  # 10 s into a step


def test_seal_opens_only_for_its_user_and_key() -> None:
    box, seed = SeedBox(KEY), new_seed()
    sealed = box.seal(seed, 7)
    assert seed not in sealed and sealed.startswith("t1.")
    assert box.open(sealed, 7) == seed
    assert box.seal(seed, 7) != sealed  # a fresh nonce each time
    with pytest.raises(errors.IntegrityError) as moved:
        box.open(sealed, 8)  # copied onto another user's row
    assert seed not in str(moved.value)
    with pytest.raises(errors.IntegrityError):
        SeedBox("j" * 32).open(sealed, 7)  # another server's key
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    for bad in (flipped, "garbage", "t1.!!!", "t2." + sealed[3:]):
        with pytest.raises(errors.IntegrityError):
            box.open(bad, 7)


def test_short_key_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="at least 32 bytes"):
        SeedBox("short")


def test_codes_match_the_current_step_and_its_neighbours_only() -> None:
    box, seed = SeedBox(KEY), new_seed()
    sealed, totp, step = box.seal(seed, 1), pyotp.TOTP(seed), totp_step(NOW)
    for offset in (-1, 0, 1):
        code = totp.at(NOW, counter_offset=offset)
        assert box.matching_step(sealed, 1, code, NOW) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.at(NOW, counter_offset=offset)
        if code not in {totp.at(NOW, counter_offset=o) for o in (-1, 0, 1)}:
            assert box.matching_step(sealed, 1, code, NOW) is None
    later = NOW + timedelta(seconds=90)  # three steps on: the old code is gone
    assert box.matching_step(sealed, 1, totp.at(NOW), later) is None
    for junk in ("", "12345", "1234567", "abcdef", "\u00e9" * 6):
        assert box.matching_step(sealed, 1, junk, NOW) is None
    assert box.matching_step(sealed, 1, f" {totp.at(NOW)} ", NOW) == step  # pasted with spaces


def test_otpauth_uri_names_user_and_issuer() -> None:
    seed = new_seed()
    uri = urlparse(otpauth_uri(seed, "alice"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert "alice" in uri.path
    query = parse_qs(uri.query)
    assert query["secret"] == [seed] and query["issuer"] == ["Strongroom"]
    assert len(seed) == 32 and pyotp.TOTP(seed).now().isdigit()
