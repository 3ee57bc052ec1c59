"""Storage queries of AppRole (`AppRoleQueries`, `tx.approles`): roles and their hashed secret
ids. Never sees a secret id."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from strongroom.storage import tables as t
from strongroom.storage.base import AppRoleRow, AppSecretRow
from strongroom.storage.txbase import Queries

__all__ = ["AppRoleQueries"]


def _role(r: Any) -> AppRoleRow:
    return AppRoleRow(
        int(r.id), r.name, r.role_id, list(json.loads(r.policies)), int(r.token_ttl),
        int(r.token_max_ttl), int(r.secret_id_ttl), int(r.secret_id_num_uses),
        list(json.loads(r.bound_cidrs)), r.created_at,
    )  # fmt: skip


def _secret(r: Any) -> AppSecretRow:
    return AppSecretRow(
        r.accessor, r.role_name, r.secret_hash, r.created_at, r.expires_at, int(r.uses_left),
        list(json.loads(r.bound_cidrs)),
    )  # fmt: skip


class AppRoleQueries(Queries):
    """AppRole roles and secret ids (implements `core.approle.AppRoleStore`)."""

    def put_role(self, row: AppRoleRow) -> None:
        """Create the role `row.name`, or update its settings (its id and role_id stay)."""
        values = {
            "policies": json.dumps(row.policies),
            "token_ttl": row.token_ttl,
            "token_max_ttl": row.token_max_ttl,
            "secret_id_ttl": row.secret_id_ttl,
            "secret_id_num_uses": row.secret_id_num_uses,
            "bound_cidrs": json.dumps(row.bound_cidrs),
        }
        a = t.approles
        done = self.conn.execute(sa.update(a).where(a.c.name == row.name).values(**values))
        if done.rowcount == 0:
            self.conn.execute(
                sa.insert(a).values(
                    name=row.name, role_id=row.role_id, created_at=row.created_at, **values
                )
            )

    def role(self, *, name: str | None = None, role_id: str | None = None) -> AppRoleRow | None:
        """The role named `name`, or with `role_id`."""
        a = t.approles
        where = a.c.name == name if name is not None else a.c.role_id == role_id
        row = self.conn.execute(sa.select(a).where(where)).first()
        return _role(row) if row else None

    def list_roles(self) -> list[str]:
        """Every role name, sorted."""
        a = t.approles
        return [r.name for r in self.conn.execute(sa.select(a.c.name).order_by(a.c.name))]

    def delete_role(self, name: str) -> bool:
        """Remove a role and its secret ids; False when there was none."""
        s = t.approle_secrets
        self.conn.execute(sa.delete(s).where(s.c.role_name == name))
        done = self.conn.execute(sa.delete(t.approles).where(t.approles.c.name == name))
        return bool(done.rowcount)

    def insert_secret(self, row: AppSecretRow) -> None:
        """Record a new secret id (its hash)."""
        self.conn.execute(
            sa.insert(t.approle_secrets).values(
                accessor=row.accessor, role_name=row.role_name, secret_hash=row.secret_hash,
                created_at=row.created_at, expires_at=row.expires_at, uses_left=row.uses_left,
                bound_cidrs=json.dumps(row.bound_cidrs),
            )
        )  # fmt: skip

    def secret(self, secret_hash: str) -> AppSecretRow | None:
        """The secret id whose SHA-256 is `secret_hash`."""
        s = t.approle_secrets
        row = self.conn.execute(sa.select(s).where(s.c.secret_hash == secret_hash)).first()
        return _secret(row) if row else None

    def list_secrets(self, role_name: str) -> list[AppSecretRow]:
        """A role's secret ids, oldest first."""
        s = t.approle_secrets
        q = sa.select(s).where(s.c.role_name == role_name).order_by(s.c.created_at, s.c.accessor)
        return [_secret(r) for r in self.conn.execute(q)]

    def use_secret(self, accessor: str, uses_left: int | None) -> None:
        """Count one use: set `uses_left`, or delete the secret id when None (used up)."""
        s = t.approle_secrets
        where = s.c.accessor == accessor
        if uses_left is None:
            self.conn.execute(sa.delete(s).where(where))
        else:
            self.conn.execute(sa.update(s).where(where).values(uses_left=uses_left))

    def delete_secret(self, role_name: str, accessor: str) -> bool:
        """Destroy a role's secret id; False when there was none."""
        s = t.approle_secrets
        where = (s.c.accessor == accessor) & (s.c.role_name == role_name)
        return bool(self.conn.execute(sa.delete(s).where(where)).rowcount)
