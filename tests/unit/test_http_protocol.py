"""LIST requests become Vault's equivalent GET ?list=true before httptools parses them."""

from __future__ import annotations

import pytest

from strongroom.http.protocol import list_as_get


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"LIST /v1/secret/metadata/a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v1/secret/metadata/a?list=true HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            b"LIST /v1/secret/metadata/?after=b HTTP/1.1\r\n\r\n",
            b"GET /v1/secret/metadata/?after=b&list=true HTTP/1.1\r\n\r\n",
        ),
        (b"GET /v1/sys/health HTTP/1.1\r\n\r\n", b"GET /v1/sys/health HTTP/1.1\r\n\r\n"),
        (b"LIST /incomplete", b"LIST /incomplete"),
        (b"LIST a b c\r\n\r\n", b"LIST a b c\r\n\r\n"),
    ],
)
def test_list_as_get(raw: bytes, expected: bytes) -> None:
    assert list_as_get(raw) == expected
