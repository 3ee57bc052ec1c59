"""The shared SQLAlchemy Core implementation of storage, for SQLite and PostgreSQL.

`Storage.read()` yields a `Tx` on a plain transaction; `Storage.write()` yields one on a write
transaction that holds the vault's single writer lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL
transaction-scoped advisory lock), so writes and the audit chain are serialised across processes.
Foreign database exceptions are translated here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from strongroom import errors
from strongroom.storage import tables as t
from strongroom.storage.base import (
    AuditRow,
    KeysRow,
    KVConfigRow,
    NewAudit,
    PolicyRow,
    SecretRow,
    TermRow,
    UserRow,
    VersionRow,
)

__all__ = ["Storage", "Tx"]


def _secret(row: Any) -> SecretRow:
    # Positional unpacking of `vault_secrets`' columns (in table order): several times cheaper
    # than attribute access on a Row, which matters when listing thousands of secrets.
    (
        sid,
        path,
        description,
        created_by,
        created_at,
        updated_at,
        version,
        expires_at,
        meta,
        max_versions,
        cas_required,
        delete_after,
    ) = row[:12]
    return SecretRow(
        sid,
        path,
        description,
        created_by,
        created_at,
        updated_at,
        version,
        expires_at,
        json.loads(meta) if meta and meta != "{}" else {},
        max_versions,
        bool(cas_required),
        delete_after,
    )


def _version(row: Any) -> VersionRow:
    return VersionRow(
        row.secret_id,
        row.version,
        row.value,
        row.key_term,
        row.updated_by,
        row.updated_at,
        row.deleted_at,
        bool(row.destroyed),
    )


def _user(row: Any) -> UserRow:
    return UserRow(
        row.id,
        row.username,
        row.password_hash,
        row.role,
        list(json.loads(row.policies or "[]")),
        bool(row.disabled),
        row.created_at,
    )


def _audit(row: Any) -> AuditRow:
    return AuditRow(
        row.id,
        row.timestamp,
        row.secret_id,
        row.path,
        row.user_id,
        row.action,
        row.ip_address,
        bool(row.success),
        row.error,
        row.request_id,
        row.mac,
    )


# Statements on the hot path are built once: constructing a SQLAlchemy statement costs several
# times more than executing it (measured: 530 us rebuilt vs 130 us prebuilt per lookup).
_S, _V, _A = t.secrets, t.secret_versions, t.audit_logs
_SECRET_BY_PATH = sa.select(_S).where(_S.c.path == sa.bindparam("path"))


def _secret_join(version: Any) -> sa.Select[Any]:
    return (
        sa.select(
            _S,
            _V.c.version.label("v_version"),
            _V.c.value,
            _V.c.key_term,
            _V.c.updated_by,
            _V.c.updated_at.label("v_updated_at"),
            _V.c.deleted_at,
            _V.c.destroyed,
        )
        .select_from(_S.outerjoin(_V, sa.and_(_V.c.secret_id == _S.c.id, _V.c.version == version)))
        .where(_S.c.path == sa.bindparam("path"))
    )


_SECRET_WITH_CURRENT = _secret_join(_S.c.version)
_SECRET_WITH_VERSION = _secret_join(sa.bindparam("version"))
_GET_VERSION = sa.select(_V).where(
    _V.c.secret_id == sa.bindparam("sid"), _V.c.version == sa.bindparam("version")
)
_INSERT_VERSION = sa.insert(_V)
_INSERT_SECRET = sa.insert(_S)
_SET_CURRENT = (
    sa.update(_S)
    .where(_S.c.id == sa.bindparam("sid"))
    .values(version=sa.bindparam("version"), updated_at=sa.bindparam("at"))
)
_LAST_MAC = sa.select(_A.c.mac).order_by(_A.c.id.desc()).limit(1)
_MAX_TERM = sa.select(sa.func.max(t.key_terms.c.term))
_BATCH_HEAD = sa.select(_MAX_TERM.scalar_subquery(), _LAST_MAC.scalar_subquery())
_INSERT_AUDIT = sa.insert(_A)
_RESERVE = (
    sa.update(t.key_terms)
    .where(t.key_terms.c.term == sa.bindparam("t"))
    .values(encryptions=t.key_terms.c.encryptions + sa.bindparam("n"))
)
_COUNT = sa.select(t.key_terms.c.encryptions).where(t.key_terms.c.term == sa.bindparam("t"))


class Tx:
    """Queries and changes inside one transaction. Methods return rows, never ORM objects."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run a block whose changes are undone alone if it raises.

        A value the database refuses (out of range, too long) fails only this block, as
        InvalidInput, so one bad request cannot fail the other jobs of a group commit.
        """
        nested = self.conn.begin_nested()
        try:
            yield
        except sa_exc.DataError as exc:
            nested.rollback()
            raise errors.InvalidInput("a value is out of range for storage") from exc
        except BaseException:
            nested.rollback()
            raise
        nested.commit()

    # -- keys -----------------------------------------------------------------------------
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

    # -- secrets --------------------------------------------------------------------------
    def secret_by_path(self, path: str) -> SecretRow | None:
        """The secret at exactly `path`."""
        row = self.conn.execute(_SECRET_BY_PATH, {"path": path}).first()
        return _secret(row) if row else None

    def insert_secret(
        self,
        path: str,
        description: str | None,
        created_by: int,
        now: datetime,
        expires_at: datetime | None,
        metadata: dict[str, str] | None = None,
        version: int = 1,
    ) -> int:
        """Create the secret row at `version` (its first version is inserted next); return its id.

        No savepoint of its own (writes are serialised, callers check the path first): on a
        duplicate the transaction is unusable on PostgreSQL until the caller's savepoint (every
        core job has one) rolls back.

        Raises:
            SecretExists: the path is taken.
        """
        try:
            result = self.conn.execute(
                _INSERT_SECRET,
                {
                    "path": path,
                    "description": description,
                    "created_by": created_by,
                    "created_at": now,
                    "updated_at": now,
                    "version": version,
                    "expires_at": expires_at,
                    "metadata": json.dumps(metadata or {}),
                    "max_versions": 0,
                    "cas_required": False,
                    "delete_version_after": 0,
                },
            )
        except sa_exc.IntegrityError as exc:
            raise errors.SecretExists() from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def set_current_version(self, secret_id: int, version: int, at: datetime) -> None:
        """Make `version` the secret's current version, updated at `at`."""
        self.conn.execute(_SET_CURRENT, {"sid": secret_id, "version": version, "at": at})

    def update_secret(self, secret_id: int, **values: Any) -> None:
        """Change columns of a secret row (`metadata` is given as a dict)."""
        if "metadata" in values:
            values["metadata"] = json.dumps(values["metadata"])
        self.conn.execute(sa.update(t.secrets).where(t.secrets.c.id == secret_id).values(**values))

    def delete_secret(self, secret_id: int) -> None:
        """Delete a secret and its versions (audit rows are not linked and stay)."""
        self.conn.execute(
            sa.delete(t.secret_versions).where(t.secret_versions.c.secret_id == secret_id)
        )
        self.conn.execute(sa.delete(t.secrets).where(t.secrets.c.id == secret_id))

    def list_secrets(self, prefix: str = "") -> list[SecretRow]:
        """Secrets whose path starts with `prefix`, compared literally and case-sensitively."""
        query = sa.select(t.secrets).order_by(t.secrets.c.path)
        if prefix:
            # substr equality, not LIKE: no wildcards, and identical semantics on both backends.
            query = query.where(sa.func.substr(t.secrets.c.path, 1, len(prefix)) == prefix)
        return [_secret(r) for r in self.conn.execute(query).all()]

    def expired_secrets(self, now: datetime) -> list[SecretRow]:
        """Secrets whose `expires_at` is at or before `now`."""
        query = sa.select(t.secrets).where(t.secrets.c.expires_at <= now)
        return [_secret(r) for r in self.conn.execute(query.order_by(t.secrets.c.path))]

    # -- versions -------------------------------------------------------------------------
    def insert_version(self, row: VersionRow) -> None:
        """Store a new version (no savepoint of its own, as `insert_secret`).

        Raises:
            VersionConflict: that version number exists already.
        """
        try:
            self.conn.execute(
                _INSERT_VERSION,
                {
                    "secret_id": row.secret_id,
                    "version": row.version,
                    "value": row.value,
                    "key_term": row.key_term,
                    "updated_by": row.updated_by,
                    "updated_at": row.updated_at,
                    "deleted_at": row.deleted_at,
                    "destroyed": row.destroyed,
                },
            )
        except sa_exc.IntegrityError as exc:
            raise errors.VersionConflict("version already exists") from exc

    def secret_with_version(
        self,
        path: str,
        version: int | None = None,
    ) -> tuple[SecretRow, VersionRow | None] | None:
        """The secret at `path` and one of its versions (default: the current one), in one query."""
        if version is None:
            row = self.conn.execute(_SECRET_WITH_CURRENT, {"path": path}).first()
        else:
            params = {"path": path, "version": version}
            row = self.conn.execute(_SECRET_WITH_VERSION, params).first()
        if row is None:
            return None
        secret = _secret(row)
        if row.v_version is None:
            return secret, None
        return secret, VersionRow(
            row.id,
            row.v_version,
            row.value,
            row.key_term,
            row.updated_by,
            row.v_updated_at,
            row.deleted_at,
            bool(row.destroyed),
        )

    def get_version(self, secret_id: int, version: int) -> VersionRow | None:
        """One version of a secret."""
        row = self.conn.execute(_GET_VERSION, {"sid": secret_id, "version": version}).first()
        return _version(row) if row else None

    def versions(self, secret_id: int) -> list[VersionRow]:
        """Every version of a secret, newest first."""
        v = t.secret_versions
        rows = self.conn.execute(
            sa.select(v).where(v.c.secret_id == secret_id).order_by(v.c.version.desc())
        )
        return [_version(r) for r in rows]

    def update_version(self, secret_id: int, version: int, **values: Any) -> None:
        """Change columns of one version (re-encryption, soft delete, destroy)."""
        v = t.secret_versions
        self.conn.execute(
            sa.update(v).where(v.c.secret_id == secret_id, v.c.version == version).values(**values)
        )

    def delete_versions(self, secret_id: int, versions: list[int]) -> None:
        """Remove versions outright (pruning beyond max_versions)."""
        v = t.secret_versions
        self.conn.execute(sa.delete(v).where(v.c.secret_id == secret_id, v.c.version.in_(versions)))

    # -- kv v2 ----------------------------------------------------------------------------
    def kv_config(self) -> KVConfigRow:
        """The mount-wide KV v2 settings (all zeros when never written)."""
        row = self.conn.execute(sa.select(t.kv_config).where(t.kv_config.c.id == 1)).first()
        if row is None:
            return KVConfigRow()
        return KVConfigRow(row.max_versions, bool(row.cas_required), row.delete_version_after)

    def put_kv_config(self, config: KVConfigRow, now: datetime) -> None:
        """Insert or replace the mount-wide KV v2 settings."""
        values = {
            "max_versions": config.max_versions,
            "cas_required": config.cas_required,
            "delete_version_after": config.delete_version_after,
            "updated_at": now,
        }
        c = t.kv_config
        done = self.conn.execute(sa.update(c).where(c.c.id == 1).values(**values))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(c).values(id=1, **values))

    def kv_paths(self, prefix: str, now: datetime) -> list[str]:
        """Paths (only) starting with `prefix`, sorted, leaving out secrets expired at `now`."""
        s = t.secrets
        query = sa.select(s.c.path).where(sa.or_(s.c.expires_at.is_(None), s.c.expires_at > now))
        if prefix:
            query = query.where(sa.func.substr(s.c.path, 1, len(prefix)) == prefix)
        return [r[0] for r in self.conn.execute(query.order_by(s.c.path))]

    def prune_versions(self, secret_id: int, below: int) -> None:
        """Remove every version numbered below `below` (max_versions pruning)."""
        v = t.secret_versions
        self.conn.execute(sa.delete(v).where(v.c.secret_id == secret_id, v.c.version < below))

    def versions_below_term(self, term: int, limit: int) -> list[tuple[VersionRow, str]]:
        """Up to `limit` live versions encrypted under a term older than `term`, with their path."""
        v, s = t.secret_versions, t.secrets
        query = (
            sa.select(v, s.c.path)
            .join(s, s.c.id == v.c.secret_id)
            .where(v.c.key_term < term, v.c.value.is_not(None))
            .order_by(v.c.id)
            .limit(limit)
        )
        return [(_version(r), r.path) for r in self.conn.execute(query)]

    def count_versions_below_term(self, term: int) -> int:
        """How many live versions still use a term older than `term`."""
        v = t.secret_versions
        query = (
            sa.select(sa.func.count())
            .select_from(v)
            .where(v.c.key_term < term, v.c.value.is_not(None))
        )
        return int(self.conn.execute(query).scalar_one())

    def terms_in_use(self) -> set[int]:
        """Terms referenced by at least one stored version."""
        v = t.secret_versions
        rows = self.conn.execute(sa.select(v.c.key_term).where(v.c.value.is_not(None)).distinct())
        return {int(r[0]) for r in rows if r[0] is not None}

    # -- rotation -------------------------------------------------------------------------
    def versions_below_term_after(
        self,
        term: int,
        after_id: int,
        limit: int,
    ) -> list[tuple[int, VersionRow, str]]:
        """Up to `limit` live versions under a term older than `term` whose row id is above
        `after_id`, oldest row first, as (row id, version, path): a cursor that can step past
        a version it could not re-encrypt."""
        v, s = t.secret_versions, t.secrets
        query = (
            sa.select(v, s.c.path)
            .join(s, s.c.id == v.c.secret_id)
            .where(v.c.key_term < term, v.c.value.is_not(None), v.c.id > after_id)
            .order_by(v.c.id)
            .limit(limit)
        )
        return [(int(r.id), _version(r), r.path) for r in self.conn.execute(query)]

    def rewrite_versions(self, rows: list[tuple[int, str, int]]) -> None:
        """Store re-encrypted envelopes as (row id, envelope, term), in one executemany."""
        if not rows:
            return
        v = t.secret_versions
        stmt = (
            sa.update(v)
            .where(v.c.id == sa.bindparam("row_id"))
            .values(value=sa.bindparam("envelope"), key_term=sa.bindparam("term"))
        )
        self.conn.execute(stmt, [{"row_id": r, "envelope": e, "term": k} for r, e, k in rows])

    def count_secrets_below_term(self, term: int) -> int:
        """How many secrets have at least one live version under a term older than `term`."""
        v = t.secret_versions
        query = sa.select(sa.func.count(sa.distinct(v.c.secret_id))).where(
            v.c.key_term < term, v.c.value.is_not(None)
        )
        return int(self.conn.execute(query).scalar_one())

    def set_rotation(self, rotation: dict[str, Any] | None, now: datetime) -> None:
        """Set or clear the rotation marker of the key row, leaving the keys as they are."""
        self.conn.execute(
            sa.update(t.keys)
            .where(t.keys.c.id == 1)
            .values(rotation=json.dumps(rotation) if rotation else None, updated_at=now)
        )

    def scan_audit_since(self, after_id: int, since: datetime | None, limit: int) -> list[AuditRow]:
        """Entries with id > `after_id` and timestamp >= `since`, oldest first (export)."""
        a = t.audit_logs
        query = sa.select(a).where(a.c.id > after_id)
        if since is not None:
            query = query.where(a.c.timestamp >= since)
        return [_audit(r) for r in self.conn.execute(query.order_by(a.c.id).limit(limit))]

    # -- audit ----------------------------------------------------------------------------
    def last_audit_mac(self) -> str | None:
        """The MAC of the newest entry (the chain head), or None for an empty chain."""
        return self.conn.execute(_LAST_MAC).scalar()

    def insert_audit(self, entry: NewAudit, mac: str | None) -> int:
        """Append an entry with its chain MAC; return its id."""
        result = self.conn.execute(
            _INSERT_AUDIT,
            {
                "timestamp": entry.timestamp,
                "secret_id": entry.secret_id,
                "path": entry.path,
                "user_id": entry.user_id,
                "action": entry.action,
                "ip_address": entry.ip_address,
                "success": entry.success,
                "error": entry.error,
                "request_id": entry.request_id,
                "mac": mac,
            },
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def batch_head(self) -> tuple[int, str | None]:
        """(newest data-key term, audit chain head) in one round trip, at a batch's start."""
        row = self.conn.execute(_BATCH_HEAD).one()
        return int(row[0] or 0), row[1]

    def max_term(self) -> int:
        """The newest data-key term stored (0 when none)."""
        return int(self.conn.execute(_MAX_TERM).scalar() or 0)

    def query_audit(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditRow]:
        """Entries matching every given filter, newest first."""
        a = t.audit_logs
        query = sa.select(a)
        if path is not None:
            query = query.where(a.c.path == path)
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        if action is not None:
            query = query.where(a.c.action == action)
        if since is not None:
            query = query.where(a.c.timestamp >= since)
        return [_audit(r) for r in self.conn.execute(query.order_by(a.c.id.desc()).limit(limit))]

    def scan_audit(self, after_id: int, limit: int) -> list[AuditRow]:
        """Entries with id > `after_id`, oldest first (for verification and export)."""
        a = t.audit_logs
        query = sa.select(a).where(a.c.id > after_id).order_by(a.c.id).limit(limit)
        return [_audit(r) for r in self.conn.execute(query)]

    # -- users and policies (access) ------------------------------------------------------
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
        return _user(row) if row else None

    def user_by_id(self, user_id: int) -> UserRow | None:
        """The built-in user with id `user_id`."""
        row = self.conn.execute(sa.select(t.users).where(t.users.c.id == user_id)).first()
        return _user(row) if row else None

    def list_users(self) -> list[UserRow]:
        """Every built-in user, by id."""
        return [_user(r) for r in self.conn.execute(sa.select(t.users).order_by(t.users.c.id))]

    def update_user(self, user_id: int, **values: Any) -> None:
        """Change columns of a user (`policies` is given as a list)."""
        if "policies" in values:
            values["policies"] = json.dumps(values["policies"])
        self.conn.execute(sa.update(t.users).where(t.users.c.id == user_id).values(**values))

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

    def count_expiring(self, now: datetime, until: datetime) -> int:
        """Secrets not yet expired whose `expires_at` falls before `until`."""
        s = t.secrets
        query = (
            sa.select(sa.func.count())
            .select_from(s)
            .where(s.c.expires_at > now, s.c.expires_at <= until)
        )
        return int(self.conn.execute(query).scalar_one())


class Storage:
    """An engine plus the dialect's way to open a serialised write transaction."""

    def __init__(self, engine: Engine, dsn_label: str) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.label = dsn_label
        self._lock_key: int | None = None

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read transaction (snapshot on SQLite WAL, read committed on PostgreSQL).

        Raises:
            StorageUnavailable: the database cannot be reached.
        """
        with self._translate(), self.engine.connect() as conn, conn.begin():
            yield Tx(conn)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction holding the vault-wide writer lock; commits on success.

        Raises:
            StorageUnavailable: the database cannot be reached or the commit failed.
        """
        with self._translate():
            opts = {"sqlite_immediate": True} if self.dialect == "sqlite" else {}
            with self.engine.connect().execution_options(**opts) as conn, conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._advisory_key(conn)}
                    )
                yield Tx(conn)

    def _advisory_key(self, conn: Connection) -> int:
        if self._lock_key is None:
            # One lock per schema, so isolated test schemas do not serialise each other.
            self._lock_key = int(
                conn.execute(
                    sa.text(
                        "SELECT ('x' || substr(md5('strongroom:' || current_schema()), 1, 15))"
                        "::bit(60)::bigint"
                    )
                ).scalar_one()
            )
        return self._lock_key

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DatabaseError) as exc:
            if isinstance(exc, sa_exc.IntegrityError):
                raise errors.Conflict("the write conflicted with stored data") from exc
            raise errors.StorageUnavailable(
                f"storage unavailable ({type(exc.orig).__name__ if exc.orig else 'error'})"
            ) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
