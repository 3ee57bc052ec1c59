"""`--addr` / `VAULT_ADDR`: a server URL, or a bare `host:port` taken as http:// on loopback.

A bare address elsewhere is refused rather than guessed: plain http to another machine would
send the token in clear, and https to it may not be what the user runs.
"""

from __future__ import annotations

import ipaddress

from strongroom import errors

__all__ = ["server_url"]

_SCHEMES = ("http://", "https://")


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_url(addr: str) -> str:
    """`addr` as a URL httpx can use.

    `127.0.0.1:8091`, `localhost:8091` and `[::1]:8091` become `http://...`; a URL with
    http:// or https:// is returned as is.

    Raises:
        InvalidInput: another scheme, or a bare host:port that is not loopback.
    """
    text = addr.strip()
    if text.lower().startswith(_SCHEMES):
        return text
    if "://" in text:
        raise errors.InvalidInput(f"--addr {addr!r}: use an http:// or https:// URL")
    host = text.split("/", 1)[0]
    host = host[: host.rindex("]") + 1] if host.startswith("[") and "]" in host else host
    host = host if host.startswith("[") else host.rsplit(":", 1)[0]
    if host and _is_loopback(host):
        return f"http://{text}"
    raise errors.InvalidInput(
        f"--addr {addr!r} has no scheme: add http:// or https:// "
        "(a bare host:port is taken as http:// only on loopback)"
    )
