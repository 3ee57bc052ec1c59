"""Storage queries of outgoing events (`EventQueries`, `tx.events`): webhooks, the outbox and
expiry-reminder state. Rows only: signing and sending are the core's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage import tables_events as te
from strongroom.storage.txbase import Queries, fetch_all

__all__ = ["EventQueries", "OutboxRow", "WebhookRow"]


@dataclass(frozen=True, slots=True)
class WebhookRow:
    """A configured webhook, with its delivery counts (`pending`, `failed`)."""

    id: int
    url: str
    events: tuple[str, ...]
    path_prefix: str
    key_nonce: str
    allow_link_local: bool
    created_by: int
    created_at: datetime
    pending: int = 0
    failed: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event for one webhook, as stored in the outbox."""

    id: int
    webhook_id: int
    event_id: str
    event: str
    body: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime


_W, _O, _R = te.webhooks, te.outbox, te.reminders


# Every write batch with a change in it reads the webhooks (`core.events`): built once.
_WEBHOOKS = sa.select(
    _W.c.id,
    _W.c.url,
    _W.c.events,
    _W.c.path_prefix,
    _W.c.key_nonce,
    _W.c.allow_link_local,
    _W.c.created_by,
    _W.c.created_at,
).order_by(_W.c.id)


def _webhook(row: tuple[Any, ...], counts: dict[int, dict[str, int]]) -> WebhookRow:
    wid, url, events, path_prefix, key_nonce, allow_link_local, created_by, created_at = row
    mine = counts.get(int(wid), {})
    return WebhookRow(
        int(wid),
        url,
        tuple(json.loads(events)),
        path_prefix,
        key_nonce,
        bool(allow_link_local),
        int(created_by),
        created_at,
        mine.get("pending", 0),
        mine.get("failed", 0),
    )


class EventQueries(Queries):
    """Webhooks, outbox and reminders (implements `core.events.EventStore`)."""

    def add_webhook(
        self,
        url: str,
        events: tuple[str, ...],
        path_prefix: str,
        key_nonce: str,
        allow_link_local: bool,
        created_by: int,
        now: datetime,
    ) -> int:
        """Store a webhook; return its id."""
        result = self.conn.execute(
            sa.insert(_W).values(
                url=url,
                events=json.dumps(list(events)),
                path_prefix=path_prefix,
                key_nonce=key_nonce,
                allow_link_local=allow_link_local,
                created_by=created_by,
                created_at=now,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def webhooks(self, *, with_counts: bool = False) -> list[WebhookRow]:
        """Every webhook by id (with pending/failed delivery counts when asked)."""
        counts: dict[int, dict[str, int]] = {}
        if with_counts:
            query = (
                sa.select(_O.c.webhook_id, _O.c.status, sa.func.count())
                .where(_O.c.status != "delivered")
                .group_by(_O.c.webhook_id, _O.c.status)
            )
            for wid, status, n in self.conn.execute(query):
                counts.setdefault(int(wid), {})[status] = int(n)
        return [_webhook(r, counts) for r in fetch_all(self.conn, _WEBHOOKS, {})]

    def last_failure(self, webhook_id: int) -> str | None:
        """The last error of the webhook's newest failed or retried delivery."""
        query = (
            sa.select(_O.c.last_error)
            .where(_O.c.webhook_id == webhook_id, _O.c.last_error.is_not(None))
            .order_by(_O.c.id.desc())
            .limit(1)
        )
        return self.conn.execute(query).scalar()

    def remove_webhook(self, webhook_id: int) -> bool:
        """Delete a webhook and its undelivered events; False when there was none."""
        gone = self.conn.execute(sa.delete(_W).where(_W.c.id == webhook_id)).rowcount
        self.conn.execute(
            sa.delete(_O).where(_O.c.webhook_id == webhook_id, _O.c.status == "pending")
        )
        return bool(gone)

    def enqueue(self, rows: list[dict[str, object]]) -> None:
        """Append outbox rows (webhook_id, event_id, event, body, created_at, next_attempt_at)."""
        if rows:
            self.conn.execute(
                sa.insert(_O), [{**r, "status": "pending", "attempts": 0} for r in rows]
            )

    def due(self, now: datetime, limit: int) -> list[OutboxRow]:
        """Pending deliveries whose next attempt is due, oldest first."""
        query = (
            sa.select(_O)
            .where(_O.c.status == "pending", _O.c.next_attempt_at <= now)
            .order_by(_O.c.next_attempt_at, _O.c.id)
            .limit(limit)
        )
        return [
            OutboxRow(
                r.id,
                r.webhook_id,
                r.event_id,
                r.event,
                r.body,
                r.status,
                r.attempts,
                r.created_at,
                r.next_attempt_at,
            )
            for r in self.conn.execute(query)
        ]

    def settle(
        self,
        outbox_id: int,
        status: str,
        attempts: int,
        next_attempt_at: datetime,
        delivered_at: datetime | None,
        error: str | None,
    ) -> None:
        """Record the outcome of one delivery attempt."""
        self.conn.execute(
            sa.update(_O)
            .where(_O.c.id == outbox_id)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                delivered_at=delivered_at,
                last_error=error[:200] if error else None,
            )
        )

    def prune(self, failed_before: datetime, limit: int) -> int:
        """Delete at most `limit` outbox rows, oldest first, that are delivered or failed for
        an event queued before `failed_before`; return how many (fewer than `limit`: done)."""
        old = sa.or_(
            _O.c.status == "delivered",
            sa.and_(_O.c.status == "failed", _O.c.created_at < failed_before),
        )
        ids = list(
            self.conn.execute(
                sa.select(_O.c.id).where(old).order_by(_O.c.id).limit(limit)
            ).scalars()
        )
        if ids:
            self.conn.execute(sa.delete(_O).where(_O.c.id.in_(ids)))
        return len(ids)

    def pending_count(self) -> int:
        """Deliveries still pending (the `strongroom_outbox_pending` gauge)."""
        query = sa.select(sa.func.count()).select_from(_O).where(_O.c.status == "pending")
        return int(self.conn.execute(query).scalar_one())

    def current_version(self, secret_id: int) -> int | None:
        """The current version of a secret (None when it is gone)."""
        query = sa.select(t.secrets.c.version).where(t.secrets.c.id == secret_id)
        return self.conn.execute(query).scalar()

    def expiring(self, until: datetime, limit: int) -> list[tuple[int, str, int, datetime]]:
        """(id, path, version, expires_at) of secrets expiring at or before `until`, soonest
        first."""
        s = t.secrets
        query = (
            sa.select(s.c.id, s.c.path, s.c.version, s.c.expires_at)
            .where(s.c.expires_at.is_not(None), s.c.expires_at <= until)
            .order_by(s.c.expires_at, s.c.id)
            .limit(limit)
        )
        return [(int(i), p, int(v), e) for i, p, v, e in self.conn.execute(query)]

    def reminded(self, secret_ids: list[int]) -> set[tuple[int, datetime, int]]:
        """The (secret id, expires_at, lead days) reminders already sent for these secrets."""
        if not secret_ids:
            return set()
        query = sa.select(_R.c.secret_id, _R.c.expires_at, _R.c.lead_days).where(
            _R.c.secret_id.in_(secret_ids)
        )
        return {(int(i), e, int(d)) for i, e, d in self.conn.execute(query)}

    def remember(self, rows: list[tuple[int, datetime, int]], now: datetime) -> None:
        """Record reminders as sent."""
        if rows:
            self.conn.execute(
                sa.insert(_R),
                [
                    {"secret_id": i, "expires_at": e, "lead_days": d, "sent_at": now}
                    for i, e, d in rows
                ],
            )
