"""Token accessors never start with `-`: `vaultctl token lookup ACCESSOR` would read one as an
option (it failed one run in 64 of a remote-mode test)."""

from __future__ import annotations

import secrets

import pytest

from strongroom.core.token_records import new_accessor


def test_an_accessor_starting_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-Wsk5leKjyDyq80T20EZ9svR", "_Ask5leKjyDyq80T20EZ9svR"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert new_accessor() == "_Ask5leKjyDyq80T20EZ9svR"


def test_accessors_are_24_url_safe_characters() -> None:
    for _ in range(200):
        accessor = new_accessor()
        assert len(accessor) == 24 and not accessor.startswith("-")
        assert accessor.replace("-", "").replace("_", "").isalnum()
