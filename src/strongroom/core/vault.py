"""`Vault`: the public facade of one vault — thin, delegating to the services it is composed of.

It keeps the library contract's methods (DESIGN §6-§8, the README's example) with their
documented keyword form (`user_id=`, `ip=`, `request_id=`) and also accepts `actor=`; a call
naming nobody is attributed to `models.DEFAULT_ACTOR`. Everything else is reached through the
services, each holding the shared `VaultState`::

    vault.secrets     Secrets      the design document's secret operations
    vault.kv          KVEngine     KV data at any mount (`mount=`); kv.metadata: metadata, listing
    vault.mounts      Mounts       secrets engine mounts: list, enable, disable, tune, move
    vault.rotation    Rotation     master-key and single-secret rotation, resume
    vault.access      Access       built-in users, policies, refusal records
    vault.authorizer  Authorizer   roles and path policies, audited refusals
    vault.audit       AuditLog     audit queries, chain verification, export
    vault.events      Events       webhooks, the event outbox, expiry reminders
    vault.backup      Backup       verified snapshots (restore: `core.backup.restore`)
    vault.tokens      Tokens       recorded, revocable tokens (cached, epoch-invalidated)
    vault.approle     AppRoles     AppRole machine logins (role_id + hashed secret ids)
    vault.state       VaultState   lock state, barrier, writer, audited read/write

This module must never log or put into an error a master key or a secret value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from strongroom.api import Progress, RotationResult
from strongroom.core.access import Access
from strongroom.core.approle import AppRoles
from strongroom.core.audit_log import AuditLog, ExportRow
from strongroom.core.authorizer import Authorizer
from strongroom.core.backup import Backup
from strongroom.core.events import Events
from strongroom.core.kv import KVEngine
from strongroom.core.mounts import Mounts
from strongroom.core.options import VaultConfig
from strongroom.core.rotation import Rotation
from strongroom.core.secrets import Secrets
from strongroom.core.state import VaultState
from strongroom.core.token_records import Tokens
from strongroom.core.totp import TOTP
from strongroom.errors import InvalidInput
from strongroom.models import (
    DEFAULT_ACTOR,
    SYSTEM_ACTOR,
    Actor,
    AuditAnchor,
    AuditEntry,
    AuditVerification,
    SecretInfo,
    VaultHealth,
    VaultStatus,
    VersionInfo,
)
from strongroom.storage import Storage

__all__ = ["Vault"]

_USER = DEFAULT_ACTOR.user_id
_IP = DEFAULT_ACTOR.ip


def _who(user_id: int, ip: str, request_id: str | None, actor: Actor | None) -> Actor:
    """The acting `Actor`: `actor` when given, else one built from the keyword form."""
    if actor is not None:
        return actor
    if user_id == _USER and ip == _IP and request_id is None:
        return DEFAULT_ACTOR
    return Actor(user_id, ip, request_id)


class Vault:
    """A vault on one database. Thread-safe; share one instance per process."""

    def __init__(self, storage: Storage, config: VaultConfig | None = None) -> None:
        self.state = VaultState(storage, config)
        self.secrets = Secrets(self.state)
        self.kv = KVEngine(self.state)
        self.mounts = Mounts(self.state)
        self.rotation = Rotation(self.state)
        self.tokens = Tokens(self.state)
        self.totp = TOTP(self.state, self.state.config.totp_key)
        self.access = Access(self.state, forget_tokens=self.tokens.forget_user, totp=self.totp)
        self.authorizer = Authorizer(self.access, mount_paths=self.mounts.paths)
        self.audit = AuditLog(self.state)
        self.backup = Backup(self.state)
        self.approle = AppRoles(self.state, self.tokens, default_ttl=timedelta(hours=1))
        self.events = Events(self.state)

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def is_locked(self) -> bool:
        """True when the vault holds no keys (auto-lock applied first)."""
        self.state.check_idle()
        return not self.state.is_unlocked

    @property
    def storage_label(self) -> str:
        """The database this vault uses, password redacted."""
        return self.state.storage.label

    def storage_errors(self) -> dict[str, int]:
        """Failed database transactions since the vault was opened, by cause (the labels of
        `storage.health.CAUSES`, and `audit` for a write that could not be committed)."""
        return self.state.storage.health.counts()

    def unlock(
        self,
        master_key: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Unlock with the master key; the first unlock of an empty database initialises it.

        Raises:
            InvalidInput: the key is empty or not a string; or, initialising, it is shorter than
                16 characters or of low estimated strength (`core.keyrules`).
            InvalidMasterKey: the key does not open this vault (audited; nothing changes).
            TooManyAttempts: too many recent failures; retry after `retry_after` seconds.
        """
        self.state.unlock(master_key, _who(user_id, ip, request_id, actor))

    def auto_unlock(self, master_key: str, *, actor: Actor) -> None:
        """Unlock again after an auto-lock, for a server started with `--auto-unlock`: as
        `unlock`, audited as `auto_unlock`. Does nothing when the vault is unlocked.

        Raises:
            InvalidMasterKey, TooManyAttempts, InvalidInput: as `unlock`.
        """
        if self.state.is_unlocked:
            return
        self.state.unlock(master_key, actor, action="auto_unlock")

    def unlock_from_env(self, environ: Mapping[str, str] | None = None) -> None:
        """Unlock with `VAULT_MASTER_KEY` from the environment.

        Raises:
            InvalidInput: the variable is not set.
            InvalidMasterKey: it does not open this vault.
        """
        env = os.environ if environ is None else environ
        key = env.get("VAULT_MASTER_KEY", "")
        if not key:
            raise InvalidInput("VAULT_MASTER_KEY is not set")
        self.state.unlock(key, DEFAULT_ACTOR)

    def lock(
        self,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Drop every key from memory (the entry is written first, while it can be chained)."""
        self.state.lock(_who(user_id, ip, request_id, actor))

    def status(self) -> VaultStatus:
        """Lock state and keyring summary. Not activity: it never delays auto-lock."""
        state = self.state
        state.check_idle()
        with state.storage.read() as tx:
            keys = tx.keys.get_keys()
        unlocked = state.is_unlocked
        terms = state.barrier.terms if unlocked else []
        return VaultStatus(
            not unlocked,
            keys is not None,
            keys.vault_id if keys else None,
            len(terms),
            max(terms) if terms else None,
        )

    def health(self) -> VaultHealth:
        """The design document's health body. Not activity."""
        state = self.state
        state.check_idle()
        return VaultHealth(not state.is_unlocked, state.last_access, state.config.auto_lock, True)

    def close(self) -> None:
        """Finish queued writes, drop keys and close connections. Idempotent."""
        self.state.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- secrets ----------------------------------------------------------------------------
    def create_secret(
        self,
        path: str,
        value: str,
        *,
        description: str | None = None,
        user_id: int = _USER,
        expires_in: timedelta | None = None,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> SecretInfo:
        """Create a secret at `path` with version 1 (see `Secrets.create`).

        Raises:
            InvalidInput / PayloadTooLarge: bad path, value, description or `expires_in`.
            SecretExists: a live secret is at `path`.
            VaultLocked: the vault is locked.
        """
        who = _who(user_id, ip, request_id, actor)
        return self.secrets.create(
            path, value, description=description, expires_in=expires_in, actor=who
        )

    def get_secret(
        self,
        path: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> str:
        """The current value of the secret at `path` (see `Secrets.get`).

        Raises:
            InvalidInput: bad path.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to read.
            IntegrityError: the stored value was tampered with (audited).
            VaultLocked: the vault is locked.
        """
        return self.secrets.get(path, actor=_who(user_id, ip, request_id, actor))

    def get_secret_version(
        self,
        path: str,
        version: int,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> str:
        """The value of one version (see `Secrets.get_version`).

        Raises:
            InvalidInput: bad path or version number.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to read.
            IntegrityError: the stored value was tampered with.
            VaultLocked: the vault is locked.
        """
        return self.secrets.get_version(path, version, actor=_who(user_id, ip, request_id, actor))

    def update_secret(
        self,
        path: str,
        value: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> int:
        """Store `value` as a new version; return its number (see `Secrets.update`).

        Raises:
            InvalidInput / PayloadTooLarge: bad path or value.
            SecretNotFound / SecretExpired: no live secret at `path`.
            VaultLocked: the vault is locked.
        """
        return self.secrets.update(path, value, actor=_who(user_id, ip, request_id, actor))

    def delete_secret(
        self,
        path: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Delete the secret and every version; its audit history stays (`Secrets.delete`).

        Raises:
            InvalidInput: bad path.
            SecretNotFound: nothing at `path`.
            VaultLocked: the vault is locked.
        """
        self.secrets.delete(path, actor=_who(user_id, ip, request_id, actor))

    def list_secrets(
        self,
        prefix: str = "",
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> list[SecretInfo]:
        """Secrets whose path starts with `prefix`, by path (see `Secrets.list`).

        Raises:
            InvalidInput: bad prefix.
            VaultLocked: the vault is locked.
        """
        return self.secrets.list(prefix, actor=_who(user_id, ip, request_id, actor))

    def list_versions(
        self,
        path: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> list[VersionInfo]:
        """Every stored version of a secret, newest first (see `Secrets.versions`).

        Raises:
            InvalidInput: bad path.
            SecretNotFound: nothing at `path`.
            VaultLocked: the vault is locked.
        """
        return self.secrets.versions(path, actor=_who(user_id, ip, request_id, actor))

    def rollback_secret(
        self,
        path: str,
        version: int,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> int:
        """Store a new version whose value is `version`'s (see `Secrets.rollback`).

        Raises:
            InvalidInput: bad path or version.
            SecretNotFound / SecretExpired / VersionNotFound: nothing to roll back to.
            IntegrityError: the old version was tampered with.
            VaultLocked: the vault is locked.
        """
        return self.secrets.rollback(path, version, actor=_who(user_id, ip, request_id, actor))

    def cleanup_expired(
        self,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        progress: Progress | None = None,
        actor: Actor | None = None,
    ) -> int:
        """Delete every secret expired now; return how many (see `Secrets.cleanup_expired`).

        Raises:
            VaultLocked: the vault is locked.
        """
        who = _who(user_id, ip, request_id, actor)
        return self.secrets.cleanup_expired(actor=who, progress=progress)

    def generate_token(
        self,
        length: int = 32,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> str:
        """A URL-safe random string from `length` random bytes (1..1024). Not stored.

        Raises:
            InvalidInput: length out of range.
            VaultLocked: the vault is locked.
        """
        return self.secrets.generate_token(length, actor=_who(user_id, ip, request_id, actor))

    # -- audit ------------------------------------------------------------------------------
    def audit_logs(
        self,
        *,
        path: str | None = None,
        user_id: int | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Audit entries matching every given filter, newest first (see `AuditLog.query`).

        Raises:
            InvalidInput: `limit` outside 1..10000, or `since` without a timezone.
            VaultLocked: the vault is locked.
        """
        return self.audit.query(path=path, user_id=user_id, action=action, since=since, limit=limit)

    def verify_audit(self, anchor: AuditAnchor | None = None) -> AuditVerification:
        """Verify the audit hash chain from the first entry to the last (and against an
        exported `anchor`: see `AuditLog.verify`).

        Raises:
            VaultLocked: the vault is locked (the chain key derives from the root key).
        """
        result = self.audit.verify(anchor)
        if not result.ok:
            self.events.publish(
                "audit.verify_failed", None, None, SYSTEM_ACTOR, first_bad_id=result.first_bad_id
            )
        return result

    def export_audit(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        actor: Actor | None = None,
    ) -> Iterator[ExportRow]:
        """Entries in [`since`, `until`), oldest first, as JSON-ready rows (see
        `AuditLog.export`).

        Raises:
            InvalidInput: `since` or `until` is not a timezone-aware datetime.
            VaultLocked: the vault is locked.
        """
        return self.audit.export(since, until, actor=_who(user_id, ip, request_id, actor))

    # -- rotation ---------------------------------------------------------------------------
    def rotate_all(
        self,
        new_master_key: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        progress: Progress | None = None,
        actor: Actor | None = None,
    ) -> RotationResult:
        """Rotate the master key and re-encrypt every version (see `Rotation.rotate_all`).

        Raises:
            InvalidInput: the key is too short, or equals the current one with nothing to
                resume.
            VaultLocked: the vault is locked.
            IntegrityError: some versions fail their integrity check (rotation unfinished).
            Conflict: the master key changed meanwhile, or the rotation could not finish.
            StorageUnavailable: a transaction could not be committed (resume later).
        """
        who = _who(user_id, ip, request_id, actor)
        return self.rotation.rotate_all(new_master_key, actor=who, progress=progress)

    def rotate_secret(
        self,
        path: str,
        *,
        user_id: int = _USER,
        ip: str = _IP,
        request_id: str | None = None,
        new_master_key: str | None = None,
        actor: Actor | None = None,
    ) -> RotationResult:
        """Re-encrypt one secret's versions under the newest term (`Rotation.rotate_secret`).

        Raises:
            InvalidInput: bad path, or `new_master_key` given (rotation is vault-wide).
            SecretNotFound / SecretExpired: no live secret at `path`.
            IntegrityError: a stored version fails its integrity check (nothing changes).
            VaultLocked: the vault is locked.
        """
        who = _who(user_id, ip, request_id, actor)
        return self.rotation.rotate_secret(path, actor=who, new_master_key=new_master_key)
