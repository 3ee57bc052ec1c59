"""Settings: typed configuration built once by adapters and passed down; sole reader of os.environ.

Environment variables (every one optional):

=================================  ==========================================================
`DATABASE_URL`                     database DSN; default `sqlite:///vault.db`, a file in the
                                   current working directory
`VAULT_MASTER_KEY`                 the master key (prefer it, or a key file, to a flag)
`VAULT_MASTER_KEY_FILE`            a file whose content (one trailing newline stripped) is the key
`VAULT_ADDR` / `VAULT_TOKEN`       remote mode: a `vaultctl server` URL and a bearer token
`VAULT_JWT_SECRET`                 HS256 secret of the server's JWT auth
`STRONGROOM_ARGON2_TIME_COST`,     Argon2id parameters for new vaults and master-key rotation
`STRONGROOM_ARGON2_MEMORY_KIB`,    (tests make unlock cheap with them)
`STRONGROOM_ARGON2_PARALLELISM`
`STRONGROOM_AUTO_LOCK`             `true`/`false` (default true)
`STRONGROOM_AUTO_LOCK_TIMEOUT`     a duration such as `15m` (default 15m)
=================================  ==========================================================

Secret settings are wrapped in `Secret`, whose repr is masked, so a logged Settings leaks nothing.
Nothing reads configuration at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from strongroom import errors
from strongroom.clock import parse_duration
from strongroom.core import VaultConfig

__all__ = ["DEFAULT_DSN", "Secret", "Settings", "child_environment"]

#: The embedded default: a SQLite file `vault.db` in the current working directory.
DEFAULT_DSN = "sqlite:///vault.db"

#: Variables never handed to a child process started by `vaultctl run`.
_PRIVATE_VARIABLES = ("VAULT_MASTER_KEY",)


class Secret:
    """A string that does not show itself in repr/str (Starlette's `Secret`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The wrapped value; call only where it is used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        import hmac

        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode("utf-8"), other._value.encode("utf-8")
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    # Pickled only to hand settings to the server's worker processes (never to disk).
    def __getstate__(self) -> str:
        return self._value

    def __setstate__(self, state: str) -> None:
        self._value = state


def _int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidInput(f"{name} must be an integer") from None


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise errors.InvalidInput(f"{name} must be true or false")


def _secret(environ: Mapping[str, str], name: str) -> Secret | None:
    value = environ.get(name, "")
    return Secret(value) if value else None


@dataclass(frozen=True)
class Settings:
    """Everything an adapter (CLI, server) needs to know, built from the environment and flags.

    Attributes:
        db_dsn: database DSN (`sqlite:///vault.db` in the current directory by default).
        master_key: the master key, if given by environment or flag.
        master_key_file: a file holding the master key.
        addr / token: remote mode (a `vaultctl server` URL and its bearer token).
        jwt_secret: HS256 secret of the server's JWT auth.
        argon2_time_cost / argon2_memory_kib / argon2_parallelism: KDF overrides (None: default).
        auto_lock / auto_lock_timeout: lock after this much inactivity.
    """

    db_dsn: str = DEFAULT_DSN
    master_key: Secret | None = None
    master_key_file: str | None = None
    addr: str | None = None
    token: Secret | None = None
    jwt_secret: Secret | None = None
    argon2_time_cost: int | None = None
    argon2_memory_kib: int | None = None
    argon2_parallelism: int | None = None
    auto_lock: bool = True
    auto_lock_timeout: timedelta = field(default=timedelta(minutes=15))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (the process environment when None).

        Raises:
            InvalidInput: a variable is malformed (not an integer, boolean or duration).
        """
        env = os.environ if environ is None else environ
        timeout = env.get("STRONGROOM_AUTO_LOCK_TIMEOUT", "").strip()
        try:
            auto_lock_timeout = parse_duration(timeout) if timeout else timedelta(minutes=15)
        except errors.InvalidInput as exc:
            raise errors.InvalidInput(f"STRONGROOM_AUTO_LOCK_TIMEOUT: {exc.message}") from None
        return cls(
            db_dsn=env.get("DATABASE_URL", "").strip() or DEFAULT_DSN,
            master_key=_secret(env, "VAULT_MASTER_KEY"),
            master_key_file=env.get("VAULT_MASTER_KEY_FILE", "").strip() or None,
            addr=env.get("VAULT_ADDR", "").strip() or None,
            token=_secret(env, "VAULT_TOKEN"),
            jwt_secret=_secret(env, "VAULT_JWT_SECRET"),
            argon2_time_cost=_int(env, "STRONGROOM_ARGON2_TIME_COST"),
            argon2_memory_kib=_int(env, "STRONGROOM_ARGON2_MEMORY_KIB"),
            argon2_parallelism=_int(env, "STRONGROOM_ARGON2_PARALLELISM"),
            auto_lock=_bool(env, "STRONGROOM_AUTO_LOCK", True),
            auto_lock_timeout=auto_lock_timeout,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced (None values are ignored: flag not given)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def is_remote(self) -> bool:
        """True when commands go to a server (`VAULT_ADDR` / `--addr`)."""
        return bool(self.addr)

    def vault_config(self) -> VaultConfig:
        """The core options these settings describe.

        Raises:
            InvalidInput: an out-of-range option.
        """
        default = VaultConfig(auto_lock=self.auto_lock, auto_lock_timeout=self.auto_lock_timeout)
        return replace(
            default,
            argon2_time_cost=self.argon2_time_cost or default.argon2_time_cost,
            argon2_memory_kib=self.argon2_memory_kib or default.argon2_memory_kib,
            argon2_parallelism=self.argon2_parallelism or default.argon2_parallelism,
        )


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, minus the master key, for a child process."""
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_VARIABLES}
    env.update(extra)
    return env
