"""Storage queries of recorded tokens (`TokenQueries`, `tx.tokens`): rows keyed by accessor and
by the token's hash, and the revocation epoch every server process polls. Never sees a token."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import TokenRow
from strongroom.storage.txbase import Queries

__all__ = ["TokenQueries"]

_CHUNK = 500  # accessors per IN (...) list


def _row(r: Any) -> TokenRow:
    return TokenRow(
        r.accessor,
        r.token_hash,
        int(r.user_id),
        r.role,
        list(json.loads(r.policies or "[]")),
        r.kind,
        int(r.issuer),
        r.created_at,
        r.expires_at,
        r.max_expires_at,
        int(r.ttl),
        r.last_used_at,
        r.parent,
    )


class TokenQueries(Queries):
    """Recorded tokens (implements `core.recorded.TokenStore`)."""

    def insert_token(self, row: TokenRow) -> None:
        """Record a new token."""
        self.conn.execute(
            sa.insert(t.tokens).values(
                accessor=row.accessor,
                token_hash=row.token_hash,
                user_id=row.user_id,
                role=row.role,
                policies=json.dumps(row.policies),
                kind=row.kind,
                issuer=row.issuer,
                created_at=row.created_at,
                expires_at=row.expires_at,
                max_expires_at=row.max_expires_at,
                ttl=row.ttl,
                last_used_at=row.last_used_at,
                parent=row.parent,
            )
        )

    def token_by_hash(self, token_hash: str) -> TokenRow | None:
        """The token whose SHA-256 is `token_hash`."""
        q = sa.select(t.tokens).where(t.tokens.c.token_hash == token_hash)
        row = self.conn.execute(q).first()
        return _row(row) if row else None

    def token_by_accessor(self, accessor: str) -> TokenRow | None:
        """The token with this accessor."""
        q = sa.select(t.tokens).where(t.tokens.c.accessor == accessor)
        row = self.conn.execute(q).first()
        return _row(row) if row else None

    def list_tokens(self, user_id: int | None = None) -> list[TokenRow]:
        """Every token (of one subject when `user_id` is given), oldest first."""
        q = sa.select(t.tokens).order_by(t.tokens.c.created_at, t.tokens.c.accessor)
        if user_id is not None:
            q = q.where(t.tokens.c.user_id == user_id)
        return [_row(r) for r in self.conn.execute(q)]

    def set_expiry(self, accessor: str, expires_at: datetime) -> None:
        """Move a token's expiry (a renewal)."""
        q = sa.update(t.tokens).where(t.tokens.c.accessor == accessor)
        self.conn.execute(q.values(expires_at=expires_at))

    def touch_tokens(self, accessors: list[str], when: datetime) -> None:
        """Record a coarse last use of these tokens."""
        if accessors:
            q = sa.update(t.tokens).where(t.tokens.c.accessor.in_(accessors))
            self.conn.execute(q.values(last_used_at=when))

    def delete_tokens(
        self,
        *,
        accessor: str | None = None,
        user_id: int | None = None,
        expired_at: datetime | None = None,
    ) -> list[str]:
        """Remove the token with `accessor`, every token of `user_id`, or every token expired
        at `expired_at`, and every token they created, transitively (Vault's token tree);
        return the accessors removed."""
        c = t.tokens.c
        where = (
            c.accessor == accessor
            if accessor is not None
            else c.user_id == user_id
            if user_id is not None
            else c.expires_at <= expired_at
        )
        gone = [r.accessor for r in self.conn.execute(sa.select(c.accessor).where(where))]
        seen, frontier = set(gone), gone
        while frontier:
            found: list[str] = []
            for i in range(0, len(frontier), _CHUNK):
                q = sa.select(c.accessor).where(c.parent.in_(frontier[i : i + _CHUNK]))
                found += [r.accessor for r in self.conn.execute(q) if r.accessor not in seen]
            seen.update(found)
            gone += found
            frontier = found
        for i in range(0, len(gone), _CHUNK):
            self.conn.execute(sa.delete(t.tokens).where(c.accessor.in_(gone[i : i + _CHUNK])))
        return gone

    def jwt_cutoffs(self) -> dict[int, datetime]:
        """Per subject, the instant before which its JWTs are refused."""
        c = t.jwt_cutoffs
        return {int(r.user_id): r.issued_before for r in self.conn.execute(sa.select(c))}

    def put_jwt_cutoff(self, user_id: int, issued_before: datetime) -> None:
        """Refuse `user_id`'s JWTs issued before `issued_before` (replacing an earlier cut)."""
        c = t.jwt_cutoffs
        where = c.c.user_id == user_id
        done = self.conn.execute(sa.update(c).where(where).values(issued_before=issued_before))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(c).values(user_id=user_id, issued_before=issued_before))

    def token_epoch(self) -> int:
        """The revocation epoch (0 before the first revocation)."""
        q = sa.select(t.token_epoch.c.epoch).where(t.token_epoch.c.id == 1)
        value = self.conn.execute(q).scalar()
        return int(value) if value is not None else 0

    def bump_token_epoch(self) -> int:
        """Add one to the revocation epoch; return the new value."""
        e = t.token_epoch
        done = self.conn.execute(sa.update(e).where(e.c.id == 1).values(epoch=e.c.epoch + 1))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(e).values(id=1, epoch=1))
        return self.token_epoch()
