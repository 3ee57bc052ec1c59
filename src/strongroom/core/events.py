"""`Events` (`vault.events`): webhooks and the durable outbox of outgoing events.

Events come from the audit entries of each committed writer batch (`VaultState.on_batch`): a
successful `create` is `secret.created`, and so on (`EVENT_OF_ACTION`). They are written to the
outbox *in the batch's transaction*, so an event exists exactly when its change does, and a
crash before sending loses nothing (`core.webhook_sender` delivers it later, at least once,
with its `id` for de-duplication). Expiry reminders are computed by a scheduler job (`remind`)
and remembered in `vault_reminders`, so a restart does not repeat them.

A body holds the event, path, version, time, actor and id: never a value. A webhook's signing
secret is derived from the vault's audit key and the webhook's random nonce (`signing_key`): it
is stored nowhere, and shown once, when the webhook is added.
This module must never put a secret value or key into a body, a log line or an error.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from strongroom import errors
from strongroom.core.options import DEFAULT_LEAD_DAYS
from strongroom.core.state import VaultState
from strongroom.core.versions import is_deleted, versions_of
from strongroom.core.webhook_rules import EVENTS, check_events, check_url, signing_key
from strongroom.models import SYSTEM_ACTOR, Actor, iso, validate_prefix
from strongroom.storage import NewAudit, Tx, WebhookRow

__all__ = [
    "DEFAULT_LEAD_DAYS",
    "EVENTS",
    "EVENT_OF_ACTION",
    "PRUNE_BATCH",
    "EventStore",
    "Events",
    "NewWebhook",
]

#: The event of a successful audited action (`write` is created or updated by version).
EVENT_OF_ACTION = {
    "create": "secret.created",
    "update": "secret.updated",
    "patch": "secret.updated",
    "write": "secret.updated",
    "import": "secret.updated",
    "delete": "secret.deleted",
    "soft_delete": "secret.deleted",
    "destroy": "secret.deleted",
    "rollback": "secret.rolled_back",
    "lock": "vault.locked",
    "auto_lock": "vault.locked",
    "unlock": "vault.unlocked",
    "auto_unlock": "vault.unlocked",
    "rotate": "rotation.completed",
    "rotate_all": "rotation.completed",
}
#: Outbox rows deleted per transaction by `Events.prune`.
PRUNE_BATCH = 1000
_PRUNE_BATCHES_PER_PASS = 100
_NO_VERSION = ("vault.locked", "vault.unlocked", "rotation.completed")
#: KV v2 version deletes: `secret.deleted` when they leave the current version unreadable.
_VERSION_DELETES = ("soft_delete", "destroy")
_SCAN_LIMIT = 1000
#: An event to queue: (name, path, version, actor, extra body fields, time or None for now).
_Item = tuple[str, str | None, int | None, Actor, dict[str, object], datetime | None]


class EventStore(Protocol):
    """What events need from storage (`tx.events`)."""

    def add_webhook(
        self,
        url: str,
        events: tuple[str, ...],
        path_prefix: str,
        key_nonce: str,
        allow_link_local: bool,
        created_by: int,
        now: datetime,
    ) -> int: ...

    def webhooks(self, *, with_counts: bool = False) -> list[WebhookRow]: ...

    def last_failure(self, webhook_id: int) -> str | None: ...

    def remove_webhook(self, webhook_id: int) -> bool: ...

    def enqueue(self, rows: list[dict[str, object]]) -> None: ...

    def pending_count(self) -> int: ...

    def prune(self, failed_before: datetime, limit: int) -> int: ...

    def current_version(self, secret_id: int) -> int | None: ...

    def expiring(self, until: datetime, limit: int) -> list[tuple[int, str, int, datetime]]: ...

    def reminded(self, secret_ids: list[int]) -> set[tuple[int, datetime, int]]: ...

    def remember(self, rows: list[tuple[int, datetime, int]], now: datetime) -> None: ...


def _store(tx: Tx) -> EventStore:
    return tx.events


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A webhook just added, with its signing secret (shown once, stored nowhere)."""

    webhook: WebhookRow
    secret: str


def body(
    event: str,
    path: str | None,
    version: int | None,
    time: datetime,
    actor: Actor,
    **extra: object,
) -> tuple[str, str]:
    """(event id, JSON body) of one event: never a value."""
    event_id = str(uuid.uuid4())
    doc: dict[str, object] = {
        "id": event_id,
        "event": event,
        "path": path,
        "version": version,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": {"user_id": actor.user_id, "ip": actor.ip},
        "request_id": actor.request_id,
        **extra,
    }
    return event_id, json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _matches(hook: WebhookRow, event: str, path: str | None) -> bool:
    if hook.events and event not in hook.events:
        return False
    return not hook.path_prefix or (path is not None and path.startswith(hook.path_prefix))


class Events:
    """Webhook configuration and the outbox (`vault.events`)."""

    def __init__(self, state: VaultState) -> None:
        self._state = state
        state.on_batch(self._from_batch)

    # -- configuration (Admins: the front ends ask the Authorizer first) ---------------------
    def add(
        self,
        url: object,
        *,
        events: object = None,
        path_prefix: object = "",
        allow_link_local: bool = False,
        actor: Actor = SYSTEM_ACTOR,
    ) -> NewWebhook:
        """Add a webhook; the result holds its signing secret, shown this once.

        Raises:
            InvalidInput: the URL is not http(s), has no host, or names a link-local or
                metadata address (without `allow_link_local`); an unknown event name; a bad
                prefix.
            VaultLocked: the vault is locked (the secret derives from the audit key).
        """
        checked = check_url(url, bool(allow_link_local))
        names = check_events(events)
        prefix = validate_prefix(path_prefix or "")
        nonce = secrets.token_hex(16)
        self._state.require_unlocked()
        now = self._state.clock.now()

        def run(tx: Tx) -> tuple[int, NewAudit]:
            wid = _store(tx).add_webhook(
                checked, names, prefix, nonce, bool(allow_link_local), actor.user_id, now
            )
            return wid, self._state.entry("webhook_add", actor, prefix or None)

        wid = self._state.submit(run, lambda exc: self._state.entry("webhook_add", actor))
        hook = next(h for h in self.list() if h.id == wid)
        return NewWebhook(hook, signing_key(self._state, nonce).decode())

    def list(self) -> list[WebhookRow]:
        """Every webhook with its pending and failed delivery counts, and the last delivery
        error of one that has failed or pending deliveries."""
        with self._state.storage.read() as tx:
            hooks = _store(tx).webhooks(with_counts=True)
            return [
                replace(h, last_error=_store(tx).last_failure(h.id)) if h.failed or h.pending else h
                for h in hooks
            ]

    def pending(self) -> int:
        """Deliveries still pending (the `strongroom_outbox_pending` gauge)."""
        with self._state.storage.read() as tx:
            return _store(tx).pending_count()

    def prune(self, retention: timedelta, *, batch: int = PRUNE_BATCH) -> int:
        """Delete delivered outbox rows, and failed ones queued more than `retention` ago
        (pending ones never), `batch` rows per transaction so that requests' writes interleave;
        return how many. A leader-only scheduler job, not a request's work (not audited: the
        audit log records the changes, the outbox only their delivery).

        Raises:
            StorageUnavailable: a batch could not be committed (the next pass goes on).
        """
        failed_before = self._state.clock.now() - retention

        def run(tx: Tx) -> tuple[int, None]:
            return _store(tx).prune(failed_before, batch), None

        total = 0
        # Bounded, so a sender delivering as fast as this deletes cannot keep one pass going.
        for _ in range(_PRUNE_BATCHES_PER_PASS):
            removed: int = self._state.submit(run, lambda exc: None)
            total += removed
            if removed < batch:
                break
        return total

    def remove(self, webhook_id: int, *, actor: Actor = SYSTEM_ACTOR) -> None:
        """Remove a webhook and its undelivered events.

        Raises:
            NotFound: no webhook has this id.
        """

        def run(tx: Tx) -> tuple[None, NewAudit]:
            if not _store(tx).remove_webhook(webhook_id):
                raise errors.NotFound(f"no webhook {webhook_id}")
            return None, self._state.entry("webhook_remove", actor)

        self._state.submit(
            run, lambda exc: self._state.entry("webhook_remove", actor, success=False, error=exc)
        )

    def test(self, webhook_id: int, *, actor: Actor = SYSTEM_ACTOR) -> str:
        """Queue a `webhook.test` event for one webhook; return its event id.

        Raises:
            NotFound: no webhook has this id.
        """
        now = self._state.clock.now()
        event_id, doc = body("webhook.test", None, None, now, actor)

        def run(tx: Tx) -> tuple[None, None]:
            if not any(h.id == webhook_id for h in _store(tx).webhooks()):
                raise errors.NotFound(f"no webhook {webhook_id}")
            _store(tx).enqueue([_row(webhook_id, event_id, "webhook.test", doc, now)])
            return None, None

        self._state.submit(run, lambda exc: None)
        return event_id

    # -- producing events -------------------------------------------------------------------
    def publish(
        self, event: str, path: str | None, version: int | None, actor: Actor, **extra: object
    ) -> None:
        """Queue an event no audited change carries (`audit.verify_failed`), in its own
        transaction."""

        def run(tx: Tx) -> tuple[None, None]:
            self._enqueue(tx, [(event, path, version, actor, extra, None)])
            return None, None

        self._state.submit(run, lambda exc: None)

    def remind(self, lead_days: Sequence[int] = DEFAULT_LEAD_DAYS) -> int:
        """Queue `secret.expiring` (the nearest lead time not yet reminded, once per lead time
        and expiry) and `secret.expired` events; return how many. A scheduler job, not a
        request's work; what was sent is remembered across restarts."""
        now = self._state.clock.now()
        leads = sorted({d for d in lead_days if d > 0})
        horizon = now + timedelta(days=max(leads, default=0))
        with self._state.storage.read() as tx:
            candidates = _store(tx).expiring(horizon, _SCAN_LIMIT)
            sent = _store(tx).reminded([c[0] for c in candidates])
        events: list[_Item] = []
        marks: list[tuple[int, datetime, int]] = []
        for sid, path, version, expires_at in candidates:
            due = (
                [0]
                if expires_at <= now
                else [d for d in leads if expires_at - now <= timedelta(days=d)]
            )
            fresh = [d for d in due if (sid, expires_at, d) not in sent]
            if not fresh:
                continue
            marks += [(sid, expires_at, d) for d in fresh]
            if min(due) not in fresh:
                continue  # a nearer reminder was already sent
            name = "secret.expired" if due == [0] else "secret.expiring"
            extra: dict[str, object] = {"expires_at": iso(expires_at)}
            if name == "secret.expiring":
                extra["lead_days"] = min(due)
            events.append((name, path, version, SYSTEM_ACTOR, extra, None))
        if not marks:
            return 0

        def run(tx: Tx) -> tuple[None, None]:
            _store(tx).remember(marks, now)
            self._enqueue(tx, events)
            return None, None

        self._state.submit(run, lambda exc: None)
        return len(events)

    def _from_batch(self, tx: Tx, entries: Sequence[NewAudit]) -> None:
        """The writer's hook: events of a batch's successful entries, in its transaction."""
        found = []
        for e in entries:
            name = EVENT_OF_ACTION.get(e.action) if e.success else None
            if name is None or (e.action == "rotate_all" and e.path is not None):
                continue
            found.append((name, e))
        if any(e.action == "rotate_all" for _, e in found) and _rotating(tx):
            # A master-key rotation audits its atomic step, a resume and its end alike: only
            # the entry that leaves no rotation marker behind is its one `rotation.completed`.
            found = [(n, e) for n, e in found if e.action != "rotate_all"]
        hooks = _store(tx).webhooks() if found else []
        if not hooks:
            return  # no webhook: no query for versions either
        items = [item for name, e in found if (item := self._item(tx, name, e)) is not None]
        self._enqueue(tx, items, hooks)

    def _item(self, tx: Tx, name: str, e: NewAudit) -> _Item | None:
        """The event of one successful entry; None for a delete that removed nothing."""
        extra: dict[str, object] = {}
        version = None
        if name == "secret.deleted" and e.secret_id is None:
            return None  # deleting what is not there (KV v2 answers 204) changes nothing
        if e.action == "delete":
            extra["removed"] = True
        elif name not in _NO_VERSION and e.secret_id is not None:
            version = _store(tx).current_version(e.secret_id)
        if e.action in _VERSION_DELETES:
            if not version or e.secret_id is None:
                return None  # a key with metadata only: no version was touched
            current = versions_of(tx).get_version(e.secret_id, version)
            gone = (
                current is None or current.destroyed or is_deleted(current, self._state.clock.now())
            )
            name = "secret.deleted" if gone else "secret.version_deleted"
            extra.update(removed=False, destroyed=e.action == "destroy")
        if e.action == "write" and version == 1:
            name = "secret.created"
        actor = Actor(e.user_id, e.ip_address, e.request_id)
        return name, e.path, version, actor, extra, e.timestamp

    def _enqueue(
        self,
        tx: Tx,
        items: Sequence[_Item],
        hooks: Sequence[WebhookRow] | None = None,
    ) -> None:
        hooks = _store(tx).webhooks() if hooks is None else hooks
        if not hooks:
            return
        now = self._state.clock.now()
        rows = []
        for name, path, version, actor, extra, at in items:
            targets = [h for h in hooks if _matches(h, name, path)]
            if targets:
                event_id, doc = body(name, path, version, at or now, actor, **extra)
                rows += [_row(h.id, event_id, name, doc, now) for h in targets]
        _store(tx).enqueue(rows)


def _rotating(tx: Tx) -> bool:
    """Whether a master-key rotation is unfinished (its marker is set) in this transaction."""
    keys = tx.keys.get_keys()
    return keys is not None and keys.rotation is not None


def _row(webhook_id: int, event_id: str, event: str, doc: str, now: datetime) -> dict[str, object]:
    return {
        "webhook_id": webhook_id,
        "event_id": event_id,
        "event": event,
        "body": doc,
        "created_at": now,
        "next_attempt_at": now,
    }
