"""The HTTP/1.1 protocol of `vaultctl server`: uvicorn's httptools parser, taught Vault's LIST.

httptools (llhttp) rejects methods it does not know, and Vault clients such as hvac send `LIST`.
Vault treats `LIST /v1/p` exactly as `GET /v1/p?list=true`, so a request line starting a chunk
with `LIST` is rewritten to that before parsing. The alternative, uvicorn's pure-Python h11
parser, accepts any method but halved the server's throughput (docs/decisions.md).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["VaultHTTPProtocol", "list_as_get"]

_LIST = b"LIST "


def list_as_get(data: bytes) -> bytes:
    """`LIST <target> HTTP/1.1...` -> `GET <target>?list=true HTTP/1.1...` (else unchanged)."""
    if not data.startswith(_LIST):
        return data
    line_end = data.find(b"\r\n")
    if line_end < 0:
        return data
    parts = data[len(_LIST) : line_end].split(b" ")
    if len(parts) != 2:
        return data
    target, version = parts
    target += b"&list=true" if b"?" in target else b"?list=true"
    return b"GET " + target + b" " + version + data[line_end:]


class VaultHTTPProtocol(HttpToolsProtocol):
    """httptools with LIST accepted as Vault accepts it."""

    def data_received(self, data: bytes) -> None:
        super().data_received(list_as_get(data))
