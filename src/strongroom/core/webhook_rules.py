"""Rules of webhook configuration: the event names, URL and address checks, the signing key.

Shared by `core.events` (checked when a webhook is added) and `core.webhook_sender` (the address
checked again before each delivery; the key derived to sign). This module must never log or
return the signing key except to its caller.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from strongroom import errors

if TYPE_CHECKING:
    from strongroom.core.state import VaultState

__all__ = [
    "EVENTS",
    "check_address",
    "check_events",
    "check_url",
    "resolve_checked",
    "signing_key",
]

EVENTS = (
    "secret.expiring",
    "secret.expired",
    "secret.created",
    "secret.updated",
    "secret.deleted",
    "secret.version_deleted",
    "secret.rolled_back",
    "vault.locked",
    "vault.unlocked",
    "audit.verify_failed",
    "rotation.completed",
)
_METADATA_HOSTS = ("metadata", "metadata.google.internal", "metadata.azure.internal")
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
#: NAT64 (RFC 6052): its last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries and would reach (IPv4-mapped, 6to4, NAT64), else
    the address itself: `::ffff:169.254.169.254` is the metadata service."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def signing_key(state: VaultState, nonce: str) -> bytes:
    """The HMAC key of a webhook's signatures (hex text, as shown to the admin, as bytes).

    Raises:
        VaultLocked: the vault is locked (the key derives from the audit key).
    """
    return state.barrier.mac(b"strongroom webhook signing v1:" + nonce.encode()).encode()


def check_address(host: str, *, allow_link_local: bool) -> list[str]:
    """Refuse a link-local or cloud-metadata host (169.254.0.0/16, fe80::/10, also inside an
    IPv4-mapped, 6to4 or NAT64 IPv6 address) or an unspecified one (0.0.0.0, ::), by name or
    by any address it resolves to, unless `allow_link_local`. Return the addresses checked
    (none for a name that does not resolve now: it passes when a webhook is added, and the
    sender refuses to deliver until it resolves).

    Raises:
        InvalidInput: the host is link-local, unspecified or a metadata service.
    """
    name = host.strip("[]").lower().rstrip(".")
    if name in _METADATA_HOSTS and not allow_link_local:
        raise errors.InvalidInput(f"webhook host {host!r} is a cloud metadata service")
    try:
        addresses = [ipaddress.ip_address(name.split("%")[0])]
    except ValueError:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return []
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        reached = _embedded(address)
        if reached.is_unspecified:
            raise errors.InvalidInput(f"webhook address {address} is unspecified")
        if not allow_link_local and any(reached in net for net in _LINK_LOCAL):
            raise errors.InvalidInput(
                f"webhook address {address} is link-local (cloud metadata); refused unless "
                "allow_link_local is set"
            )
    return list(dict.fromkeys(str(a) for a in addresses))


def resolve_checked(host: str, *, allow_link_local: bool) -> str:
    """The one address a delivery connects to: `host` resolved and checked once, so a name
    that re-resolves between the check and the connection (DNS rebinding) cannot slip by.

    Raises:
        InvalidInput: refused by `check_address`, or the name does not resolve.
    """
    addresses = check_address(host, allow_link_local=allow_link_local)
    if not addresses:
        raise errors.InvalidInput(f"webhook host {host!r} does not resolve")
    return addresses[0]


def check_url(url: object, allow_link_local: bool) -> str:
    """The URL, if it is an http(s) URL with a host that is not link-local (see `check_address`).

    Raises:
        InvalidInput: anything else.
    """
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise errors.InvalidInput("url must be a non-empty string of at most 2000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise errors.InvalidInput(f"url is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise errors.InvalidInput("url must be http:// or https://")
    if not parts.hostname:
        raise errors.InvalidInput("url has no host")
    if port == 0:
        raise errors.InvalidInput("url port must be from 1 to 65535")
    check_address(parts.hostname, allow_link_local=allow_link_local)
    return url


def check_events(events: object) -> tuple[str, ...]:
    """Known event names, de-duplicated in order (None or empty: every event).

    Raises:
        InvalidInput: not a list of strings, or an unknown name.
    """
    if events is None:
        return ()
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise errors.InvalidInput("events must be a list of event names")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise errors.InvalidInput(f"unknown event {unknown[0]!r}; known: {', '.join(EVENTS)}")
    return tuple(dict.fromkeys(events))
