"""Storage queries of built-in users (`UserQueries`, `tx.users`) and path policies
(`PolicyQueries`, `tx.policies`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from strongroom import errors
from strongroom.storage import tables as t
from strongroom.storage.base import PolicyRow, UserRow
from strongroom.storage.convert import user_row
from strongroom.storage.txbase import Queries

__all__ = ["PolicyQueries", "UserQueries"]


class UserQueries(Queries):
    """Built-in users (implements `core.access.UserStore`)."""

    def insert_user(
        self, username: str, password_hash: str, role: str, policies: list[str], now: datetime
    ) -> int:
        """Create a built-in user; return its id.

        Raises:
            Conflict: the username is taken.
        """
        try:
            with self.savepoint():
                result = self.conn.execute(
                    sa.insert(t.users).values(
                        username=username,
                        password_hash=password_hash,
                        role=role,
                        policies=json.dumps(policies),
                        disabled=False,
                        created_at=now,
                    )
                )
        except sa_exc.IntegrityError as exc:
            raise errors.Conflict("user already exists") from exc
        key = result.inserted_primary_key
        if key is None:
            raise errors.StorageUnavailable("the new user's id was not returned")
        return int(key[0])

    def user_by_name(self, username: str) -> UserRow | None:
        """The built-in user called `username`."""
        row = self.conn.execute(sa.select(t.users).where(t.users.c.username == username)).first()
        return user_row(row) if row else None

    def user_by_id(self, user_id: int) -> UserRow | None:
        """The built-in user with id `user_id`."""
        row = self.conn.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
        return user_row(row) if row else None

    def list_users(self) -> list[UserRow]:
        """Every built-in user, by id."""
        return [user_row(r) for r in self.conn.execute(sa.select(t.users).order_by(t.users.c.id))]

    def update_user(self, user_id: int, **values: Any) -> None:
        """Change columns of a user (`policies` is given as a list)."""
        if "policies" in values:
            values["policies"] = json.dumps(values["policies"])
        self.conn.execute(sa.update(t.users).where(t.users.c.id == user_id).values(**values))

    def claim_totp_step(self, user_id: int, step: int) -> bool:
        """Record `step` as the user's last accepted TOTP step, only if it is later than the
        recorded one (one conditional UPDATE: two workers cannot both claim it); False when
        it is not (a replayed code)."""
        u = t.users
        done = self.conn.execute(
            sa.update(u)
            .where(u.c.id == user_id)
            .where(sa.or_(u.c.totp_last_step.is_(None), u.c.totp_last_step < step))
            .values(totp_last_step=step)
        )
        return bool(done.rowcount)

    def delete_user(self, user_id: int) -> bool:
        """Remove a user (its audit rows keep the id: ids are never reused); False if none."""
        done = self.conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))
        return bool(done.rowcount)


class PolicyQueries(Queries):
    """Path policies (implements `core.access.PolicyStore`)."""

    def put_policy(self, name: str, rules: str, now: datetime) -> None:
        """Create or replace a policy."""
        p = t.policies
        done = self.conn.execute(
            sa.update(p).where(p.c.name == name).values(rules=rules, updated_at=now)
        )
        if done.rowcount == 0:
            self.conn.execute(
                sa.insert(p).values(name=name, rules=rules, created_at=now, updated_at=now)
            )

    def get_policies(self, names: list[str]) -> list[PolicyRow]:
        """The policies among `names` that exist, by name."""
        p = t.policies
        rows = self.conn.execute(sa.select(p).where(p.c.name.in_(names)).order_by(p.c.name))
        return [PolicyRow(r.name, r.rules, r.created_at, r.updated_at) for r in rows]

    def list_policies(self) -> list[PolicyRow]:
        """Every policy, by name."""
        p = t.policies
        rows = self.conn.execute(sa.select(p).order_by(p.c.name))
        return [PolicyRow(r.name, r.rules, r.created_at, r.updated_at) for r in rows]

    def delete_policy(self, name: str) -> bool:
        """Remove a policy; False when there was none."""
        done = self.conn.execute(sa.delete(t.policies).where(t.policies.c.name == name))
        return bool(done.rowcount)
