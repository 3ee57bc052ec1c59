"""`canonical`: the bytes an audit entry's MAC covers never change, whichever encoder writes them
(entries written before orjson wrote them must still verify)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from strongroom.core.audit import canonical
from strongroom.storage import NewAudit


def _reference(prev_mac: str, entry: NewAudit) -> bytes:
    """The definition: `json.dumps` of the fields, compact, ASCII only."""
    fields = [
        prev_mac,
        entry.timestamp.isoformat(),
        entry.secret_id,
        entry.path,
        entry.user_id,
        entry.action,
        entry.ip_address,
        entry.success,
        entry.error,
        entry.request_id,
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _entry(text: str, *, user_id: int = 1000, secret_id: int | None = 7) -> NewAudit:
    return NewAudit(
        timestamp=datetime(2026, 12, 4, 18, 0, 0, 123456, tzinfo=UTC),
        secret_id=secret_id,
        path=f"team/{text}",
        user_id=user_id,
        action="read",
        ip_address="127.0.0.1",
        success=False,
        error=text or None,
        request_id=None,
    )


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_is_written_as_json_writes_it(code: int) -> None:
    entry = _entry(f"a{chr(code)}b")
    assert canonical("hmac:prev", entry) == _reference("hmac:prev", entry)


@pytest.mark.parametrize(
    "text",
    ["", "plain/path", 'quote" back\\slash', "tab\tnew\nline", "é", "日本", "\U0001f511", "\ud800"],
)
def test_other_text_is_written_as_json_writes_it(text: str) -> None:
    entry = _entry(text)
    assert canonical("", entry) == _reference("", entry)


def test_integers_beyond_64_bits_and_none_are_written_as_json_writes_them() -> None:
    entry = _entry("x", user_id=2**70, secret_id=None)
    assert canonical("sha256:0", entry) == _reference("sha256:0", entry)
