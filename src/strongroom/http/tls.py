"""TLS for `vaultctl server`: the server's `ssl.SSLContext`, checked at start and reloaded on
SIGHUP.

TLS 1.2 is the minimum; TLS 1.2 offers only forward-secret AEAD suites (ECDHE with AES-GCM or
ChaCha20-Poly1305), TLS 1.3 its own (all AEAD). With a client CA every client must present a
certificate it signed (mutual TLS). The context is built once per process and handed to uvicorn;
a reload calls `load_cert_chain` on that same context, so new handshakes use the new certificate
while established connections keep theirs (nothing is dropped). A reload is checked on a scratch
context first: a bad new pair is logged and the old one kept.
This module must never log or put into an error the content of a key file.
"""

from __future__ import annotations

import logging
import signal
import ssl
from pathlib import Path

from strongroom import errors
from strongroom.config import Settings
from strongroom.core.audit_devices import request_reopen

__all__ = ["CIPHERS", "install_reload", "reload_context", "server_context"]

log = logging.getLogger("strongroom.http")

#: TLS 1.2 suites: forward-secret key exchange, AEAD only.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS"


def _readable(path: str, what: str) -> None:
    try:
        with Path(path).open("rb"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise errors.InvalidInput(f"cannot read {what} {path!r}: {reason}") from None


def _new_context(settings: Settings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    if settings.tls_client_ca:
        _readable(settings.tls_client_ca, "--tls-client-ca")
        try:
            ctx.load_verify_locations(cafile=settings.tls_client_ca)
        except ssl.SSLError:
            raise errors.InvalidInput(
                f"--tls-client-ca {settings.tls_client_ca!r} holds no PEM certificate"
            ) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _load_pair(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    _readable(cert, "--tls-cert")
    _readable(key, "--tls-key")
    try:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    except ssl.SSLError as exc:
        reason = (
            "the key does not match the certificate"
            if "KEY_VALUES_MISMATCH" in str(exc)
            else "not a PEM certificate and private key"
        )
        raise errors.InvalidInput(f"--tls-cert/--tls-key {cert!r}: {reason}") from None


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's context, or None without `--tls-cert`.

    Raises:
        InvalidInput: a file is unreadable, not PEM, or the key does not match (exit 2).
    """
    if not settings.is_tls:
        return None
    assert settings.tls_cert and settings.tls_key  # noqa: S101 - is_tls says so
    ctx = _new_context(settings)
    _load_pair(ctx, settings.tls_cert, settings.tls_key)
    return ctx


def reload_context(ctx: ssl.SSLContext, settings: Settings) -> bool:
    """Load the certificate and key again into `ctx` (new handshakes use them); keep the old
    pair and log why when the new one is bad. Return whether it reloaded."""
    assert settings.tls_cert and settings.tls_key  # noqa: S101 - only called with TLS on
    try:
        _load_pair(_new_context(settings), settings.tls_cert, settings.tls_key)
        _load_pair(ctx, settings.tls_cert, settings.tls_key)
    except errors.StrongroomError as exc:
        log.error("TLS certificate not reloaded, the old one stays: %s", exc.message)
        return False
    log.warning("TLS certificate reloaded from %s", settings.tls_cert)
    return True


def install_reload(ctx: ssl.SSLContext | None, settings: Settings) -> None:
    """On SIGHUP (this process): reopen the audit devices' files (logrotate) and reload `ctx`
    when serving TLS; never die of it."""

    def on_hup(signum: int, frame: object) -> None:
        request_reopen()
        if ctx is not None:
            reload_context(ctx, settings)

    signal.signal(signal.SIGHUP, on_hup)
