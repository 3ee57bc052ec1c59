"""Storage queries of the key row and the data-key terms (`KeyQueries`, `tx.keys`)."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import KeysRow, TermRow
from strongroom.storage.txbase import Queries

__all__ = ["KeyQueries"]

_RESERVE = (
    sa.update(t.key_terms)
    .where(t.key_terms.c.term == sa.bindparam("t"))
    .values(encryptions=t.key_terms.c.encryptions + sa.bindparam("n"))
)
_COUNT = sa.select(t.key_terms.c.encryptions).where(t.key_terms.c.term == sa.bindparam("t"))
_MAX_TERM = sa.select(sa.func.max(t.key_terms.c.term))


class KeyQueries(Queries):
    """The `vault_keys` row and the `vault_key_terms` rows (implements `core.state.KeyStore`)."""

    def get_keys(self) -> KeysRow | None:
        """The vault's key row, or None for an uninitialised database."""
        row = self.conn.execute(sa.select(t.keys).where(t.keys.c.id == 1)).first()
        if row is None:
            return None
        return KeysRow(
            row.vault_id,
            bytes(row.salt),
            json.loads(row.kdf_params),
            row.wrapped_root,
            json.loads(row.rotation) if row.rotation else None,
        )

    def put_keys(self, keys: KeysRow, now: datetime) -> None:
        """Insert or replace the key row (one statement: the atomic step of a re-wrap)."""
        values = {
            "vault_id": keys.vault_id,
            "salt": keys.salt,
            "kdf_params": json.dumps(keys.kdf_params),
            "wrapped_root": keys.wrapped_root,
            "rotation": json.dumps(keys.rotation) if keys.rotation else None,
            "updated_at": now,
        }
        done = self.conn.execute(sa.update(t.keys).where(t.keys.c.id == 1).values(**values))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(t.keys).values(id=1, created_at=now, **values))

    def terms(self) -> list[TermRow]:
        """Every data-key term, oldest first."""
        rows = self.conn.execute(sa.select(t.key_terms).order_by(t.key_terms.c.term))
        return [TermRow(r.term, r.wrapped_key, r.created_at, r.encryptions) for r in rows]

    def add_term(self, term: TermRow) -> None:
        """Store a new wrapped data key."""
        self.conn.execute(
            sa.insert(t.key_terms).values(
                term=term.term,
                wrapped_key=term.wrapped_key,
                created_at=term.created_at,
                encryptions=term.encryptions,
            )
        )

    def delete_term(self, term: int) -> None:
        """Remove a data key no row uses any more."""
        self.conn.execute(sa.delete(t.key_terms).where(t.key_terms.c.term == term))

    def reserve_encryptions(self, term: int, count: int) -> int:
        """Add `count` to the term's shared counter; return the new total."""
        self.conn.execute(_RESERVE, {"t": term, "n": count})
        return int(self.conn.execute(_COUNT, {"t": term}).scalar_one())

    def max_term(self) -> int:
        """The newest data-key term stored (0 when none)."""
        return int(self.conn.execute(_MAX_TERM).scalar() or 0)
