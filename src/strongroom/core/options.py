"""VaultConfig: the typed options of a vault, passed in (never read from the environment).

The library builds it directly (`open_vault(dsn, VaultConfig())`); the CLI and the server build
it from the one `strongroom.config.Settings`, whose core fields default to the values here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from strongroom import errors
from strongroom.clock import Clock, SystemClock
from strongroom.crypto import KDFParams

__all__ = ["DEFAULT_DSN", "VaultConfig"]

MIB = 1024 * 1024
#: The embedded default database: a SQLite file `vault.db` in the current working directory.
DEFAULT_DSN = "sqlite:///vault.db"
#: Argon2id defaults are the crypto layer's (RFC 9106), written once in `crypto.kdf`.
_KDF = KDFParams()


#: Days before expiry at which `secret.expiring` reminders go out (`core.events`).
DEFAULT_LEAD_DAYS = (30, 7, 1)


@dataclass(frozen=True)
class VaultConfig:
    """Options of one vault instance.

    Attributes:
        auto_lock: lock after `auto_lock_timeout` without a secret operation.
        auto_lock_timeout: inactivity before auto-lock (status and health are not activity).
        argon2_time_cost / argon2_memory_kib / argon2_parallelism: Argon2id parameters used when
            the vault is initialised or its master key rotated (unlock uses the stored ones).
        max_value_bytes: the largest accepted secret value, UTF-8 encoded.
        term_max_encryptions: start a new data-key term before this many encryptions.
        term_max_age: start a new data-key term when the current one is this old.
        rotation_batch: versions re-encrypted per transaction during rotation.
        unlock_backoff_after: failed unlocks tolerated before exponential back-off starts.
        clock: time source (tests inject a ManualClock).
        audit_devices: where every audit entry is streamed as it is committed, as device specs
            (`file:PATH`, `syslog`, `socket:HOST:PORT`, each optionally `,optional`; see
            `core.audit_devices`).
        totp_key: the server's TOTP key (`VAULT_TOTP_KEY_FILE`'s content) that seals users'
            TOTP seeds; None: TOTP cannot be enabled, and a user with TOTP cannot log in.
    """

    auto_lock: bool = True
    auto_lock_timeout: timedelta = timedelta(minutes=15)
    argon2_time_cost: int = _KDF.time_cost
    argon2_memory_kib: int = _KDF.memory_kib
    argon2_parallelism: int = _KDF.parallelism
    max_value_bytes: int = MIB
    term_max_encryptions: int = 2**30
    term_max_age: timedelta = timedelta(days=365)
    rotation_batch: int = 500
    unlock_backoff_after: int = 5
    clock: Clock = field(default_factory=SystemClock)
    audit_devices: tuple[str, ...] = ()
    totp_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.audit_devices:
            from strongroom.core.audit_devices import parse_device  # storage: only when used

            for spec in self.audit_devices:
                parse_device(spec)
        if self.auto_lock_timeout <= timedelta(0):
            raise errors.InvalidInput("auto_lock_timeout must be positive")
        if self.max_value_bytes < 1 or self.rotation_batch < 1 or self.term_max_encryptions < 2:
            raise errors.InvalidInput(
                "max_value_bytes, rotation_batch and term_max_encryptions must be positive"
            )
