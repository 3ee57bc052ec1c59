"""The values and storage protocols of recorded tokens (`core.token_records`): the token
shape, the record shown to holders and administrators, and the storage the service needs.
Nothing here touches storage or keeps state; nothing here ever holds a token after `create`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from strongroom import errors
from strongroom.core.tokens import Principal
from strongroom.models import iso, iso_or_none
from strongroom.storage import TokenRow, Tx

__all__ = [
    "LAST_USED_EVERY",
    "MAX_TTL",
    "PREFIX",
    "TOKEN_ROLE",
    "USER_KINDS",
    "EpochStore",
    "IssuedToken",
    "TokenInfo",
    "TokenStore",
    "check_ttl",
    "cutoff_time",
    "epoch_store",
    "is_recorded",
    "token_hash",
    "token_info",
    "token_store",
]

PREFIX = "sr."
#: The role of tokens made by `auth/token/create`: what their policies grant, nothing more.
TOKEN_ROLE = "token"  # noqa: S105 - a role name
#: Kinds whose subject is a built-in user (the server also re-checks the user record).
USER_KINDS = frozenset({"login", "userpass", "ui"})
LAST_USED_EVERY = timedelta(minutes=1)
MAX_TTL = timedelta(days=3650)


def is_recorded(token: str) -> bool:
    """True when `token` has the shape of a recorded token (not a JWT)."""
    return token.startswith(PREFIX)


def cutoff_time(text: str) -> datetime:
    """`now`, or an ISO-8601 time with a zone (`...Z`).

    Raises:
        InvalidInput: anything else.
    """
    if text == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise errors.InvalidInput("jwt_issued_before must be 'now' or an ISO-8601 time") from exc
    if when.tzinfo is None:
        raise errors.InvalidInput("jwt_issued_before needs a timezone, e.g. ...Z")
    return when


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenStore(Protocol):
    """Recorded token rows (`tx.tokens`)."""

    def insert_token(self, row: TokenRow) -> None: ...

    def token_by_hash(self, token_hash: str) -> TokenRow | None: ...

    def token_by_accessor(self, accessor: str) -> TokenRow | None: ...

    def list_tokens(self, user_id: int | None = None) -> list[TokenRow]: ...

    def set_expiry(self, accessor: str, expires_at: datetime) -> None: ...

    def touch_tokens(self, accessors: list[str], when: datetime) -> None: ...

    def delete_tokens(
        self,
        *,
        accessor: str | None = None,
        user_id: int | None = None,
        expired_at: datetime | None = None,
    ) -> list[str]: ...


class EpochStore(Protocol):
    """The revocation epoch and the JWT cut-offs it also announces (`tx.tokens`)."""

    def token_epoch(self) -> int: ...

    def bump_token_epoch(self) -> int: ...

    def jwt_cutoffs(self) -> dict[int, datetime]: ...

    def put_jwt_cutoff(self, user_id: int, issued_before: datetime) -> None: ...


def token_store(tx: Tx) -> TokenStore:
    """The token rows of a transaction."""
    return tx.tokens


def epoch_store(tx: Tx) -> EpochStore:
    """The revocation epoch of a transaction."""
    return tx.tokens


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A recorded token as shown to its holder and administrators (never the token)."""

    accessor: str
    user_id: int
    role: str
    policies: tuple[str, ...]
    kind: str
    issuer: int
    created_at: datetime
    expires_at: datetime
    max_expires_at: datetime
    ttl: timedelta
    last_used_at: datetime | None
    #: The accessor of the token that created this one (revoked with it); None: an orphan.
    parent: str | None = None

    @property
    def is_renewable(self) -> bool:
        """True while a renewal could still extend it."""
        return self.expires_at < self.max_expires_at

    def as_dict(self) -> dict[str, object]:
        """The record as JSON-ready values (never the token)."""
        return {
            "accessor": self.accessor,
            "user_id": self.user_id,
            "role": self.role,
            "policies": list(self.policies),
            "kind": self.kind,
            "issuer": self.issuer,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "max_expires_at": iso(self.max_expires_at),
            "ttl": int(self.ttl.total_seconds()),
            "last_used_at": iso_or_none(self.last_used_at),
            "renewable": self.is_renewable,
            "parent": self.parent,
        }

    def principal(self) -> Principal:
        """Who requests bearing this token speak for."""
        return Principal(
            self.user_id,
            self.role,
            self.policies,
            self.expires_at.timestamp(),
            self.kind in USER_KINDS,
            self.accessor,
        )


def token_info(row: TokenRow) -> TokenInfo:
    """The record of a stored row."""
    return TokenInfo(
        row.accessor,
        row.user_id,
        row.role,
        tuple(row.policies),
        row.kind,
        row.issuer,
        row.created_at,
        row.expires_at,
        row.max_expires_at,
        timedelta(seconds=row.ttl),
        row.last_used_at,
        row.parent,
    )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token (shown once) and its record."""

    token: str
    info: TokenInfo


def check_ttl(ttl: timedelta, what: str) -> timedelta:
    """`ttl` in whole seconds if within 1 s-3650 d.

    Raises:
        InvalidInput: outside that range.
    """
    if not isinstance(ttl, timedelta) or not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise errors.InvalidInput(f"{what} must be between 1s and 3650d")
    return timedelta(seconds=int(ttl.total_seconds()))
