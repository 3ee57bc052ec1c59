"""`Sender`: delivers the outbox (`core.events`) to webhooks, signed, with retries.

A pass (`run`, a `leader_only` scheduler job, so one sender across workers and instances) starts
due deliveries on the sender's own threads, keeping at most `in_flight` running (never a
request's thread: a slow receiver never slows requests, and a hanging one holds one slot, not
the pass); each delivery records its outcome when it ends. A 2xx is
delivered; anything else is retried with exponential back-off (`retry_base` * 2^attempts) until
`max_age` after the event, then marked failed (`vaultctl webhook list` shows it). Delivery is at
least once: a crash between the POST and the record sends it again, with the same event id.

Signature: `X-Strongroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
This module must never log a body or a signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import SplitResult, urlsplit

from strongroom import errors
from strongroom.core.state import VaultState
from strongroom.core.webhook_rules import resolve_checked, signing_key
from strongroom.storage import OutboxRow, Tx, WebhookRow

__all__ = ["SendOptions", "Sender", "sign"]

log = logging.getLogger("strongroom.webhooks")

SIGNATURE_HEADER = "X-Strongroom-Signature"


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class SendOptions:
    """How the sender delivers.

    Attributes:
        in_flight: deliveries sent concurrently (and taken per pass), at most.
        retry_base: the first retry's delay; each further one doubles it.
        max_age: an event still undelivered this long after it was queued is marked failed.
        timeout: seconds a receiver gets to answer one POST.
    """

    in_flight: int = 8
    retry_base: timedelta = timedelta(seconds=10)
    max_age: timedelta = timedelta(hours=24)
    timeout: float = 10.0


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to the address the checks passed, whatever the name resolves to now;
    the Host header still names the URL's host."""

    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As `_PinnedHTTP`, over TLS: the certificate is verified for the URL's host (SNI too)."""

    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _pinned(url: SplitResult, address: str, timeout: float) -> http.client.HTTPConnection:
    kind = _PinnedHTTPS if url.scheme == "https" else _PinnedHTTP
    return kind(url.hostname or address, url.port, address, timeout)


class Sender:
    """Delivers due outbox rows; `on_result(result)` counts delivered / retry / failed."""

    def __init__(
        self,
        state: VaultState,
        options: SendOptions | None = None,
        on_result: Callable[[str], None] = lambda result: None,
    ) -> None:
        self._state = state
        self.options = options or SendOptions()
        self._on_result = on_result
        self._pool = ThreadPoolExecutor(self.options.in_flight, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight: set[int] = set()

    def close(self) -> None:
        """Stop the delivery threads (after the deliveries in flight)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> int:
        """One pass: start the due deliveries that fit in the free slots (at most `in_flight`
        at once, counting those still running from earlier passes); return how many started.
        A pass never waits for a receiver: each delivery records its outcome when it ends.
        Nothing is sent while the vault is locked (the signing keys derive from its keys)."""
        if not self._state.is_unlocked:
            return 0
        with self._lock:
            busy = set(self._in_flight)
        free = self.options.in_flight - len(busy)
        if free <= 0:
            return 0
        now = self._state.clock.now()
        with self._state.storage.read() as tx:
            due = [r for r in tx.events.due(now, free + len(busy)) if r.id not in busy][:free]
            hooks = {h.id: h for h in tx.events.webhooks()} if due else {}
        with self._lock:
            self._in_flight.update(r.id for r in due)
        for row in due:
            self._pool.submit(self._deliver, row, hooks.get(row.webhook_id))
        return len(due)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no delivery is in flight (tests; shutdown).

        Raises:
            TimeoutError: deliveries still running after `timeout` seconds.
        """
        end = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("webhook deliveries still in flight")
                self._idle.wait(left)

    def _deliver(self, row: OutboxRow, hook: WebhookRow | None) -> None:
        try:
            self._settle([(row, self._send(row, hook))])
        except Exception:  # recorded by the next attempt; never kill the pool thread
            log.exception("webhook delivery %s could not be recorded", row.event_id)
        finally:
            with self._idle:
                self._in_flight.discard(row.id)
                self._idle.notify_all()

    def _send(self, row: OutboxRow, hook: WebhookRow | None) -> str | None:
        """POST one delivery; None when delivered, else why not (no body, no secret)."""
        if hook is None:
            return "webhook removed"
        url = urlsplit(hook.url)
        try:
            address = resolve_checked(url.hostname or "", allow_link_local=hook.allow_link_local)
            key = signing_key(self._state, hook.key_nonce)
        except errors.StrongroomError as exc:
            return exc.message
        data = row.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "strongroom-webhooks",
            SIGNATURE_HEADER: sign(key, int(time.time()), data),
            "X-Strongroom-Event": row.event,
            "X-Strongroom-Delivery": row.event_id,
        }
        conn = _pinned(url, address, self.options.timeout)
        try:
            target = url.path or "/"
            conn.request("POST", f"{target}?{url.query}" if url.query else target, data, headers)
            status = conn.getresponse().status  # redirects are answers, never followed
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'reason', '') or exc}"[:200]
        finally:
            conn.close()
        return None if 200 <= status < 300 else f"receiver answered {status}"

    def _settle(self, outcomes: list[tuple[OutboxRow, str | None]]) -> None:
        now = self._state.clock.now()
        results: list[str] = []

        def run(tx: Tx) -> tuple[None, None]:
            results.clear()
            for row, error in outcomes:
                attempts = row.attempts + 1
                if error is None:
                    tx.events.settle(row.id, "delivered", attempts, now, now, None)
                    results.append("delivered")
                    continue
                retry_at = now + self.options.retry_base * (2 ** (attempts - 1))
                gave_up = retry_at > row.created_at + self.options.max_age
                status = "failed" if gave_up else "pending"
                tx.events.settle(row.id, status, attempts, retry_at, None, error)
                results.append("failed" if gave_up else "retry")
                log.warning(
                    "webhook %d delivery %s (%s) %s: %s",
                    row.webhook_id,
                    row.event_id,
                    row.event,
                    "failed for good" if gave_up else f"will retry (attempt {attempts})",
                    error,
                )
            return None, None

        self._state.submit(run, lambda exc: None)
        for result in results:
            self._on_result(result)
