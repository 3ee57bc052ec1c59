"""Which commands may create a vault, and what the others say when there is none.

`vaultctl unlock`, `create` and `import-vault` initialise an empty database (the design's "first
use"); every other command on a missing or empty database creates nothing (no SQLite file is left
behind) and fails with `no vault at <DSN>` and the fix. Each initialisation prints one line on
stderr, `Initialized a new vault (Storage: <DSN>)`, the password redacted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from strongroom.core.keyrules import check_new_master_key

if TYPE_CHECKING:
    from strongroom.storage import DatabaseState

__all__ = [
    "NoVault",
    "announce_initialised",
    "check_new_master_key",
    "is_initialised",
    "require_vault",
]


class NoVault(click.ClickException):
    """The database holds no vault and this command may not create one (exit 1)."""

    exit_code = 1

    def __init__(self, dsn: str) -> None:
        from strongroom.storage import redact_dsn

        super().__init__(
            f"no vault at {redact_dsn(dsn)}: 'vaultctl unlock' creates one there, "
            "or point --db-dsn (DATABASE_URL) at an existing vault"
        )


def is_initialised(dsn: str) -> bool:
    """True when `dsn` holds an initialised vault (nothing is created to find out).

    Raises:
        InvalidInput / StorageUnavailable: bad DSN, unreadable database.
    """
    from strongroom.storage import DatabaseState

    return _state(dsn) is DatabaseState.INITIALISED


def require_vault(dsn: str, *, need_keys: bool = True) -> None:
    """Refuse a database without a vault (or, with `need_keys` False, without our tables).

    Raises:
        NoVault: nothing there (exit 1).
        InvalidInput / StorageUnavailable: bad DSN, unreadable database.
    """
    from strongroom.storage import DatabaseState

    state = _state(dsn)
    if state is DatabaseState.MISSING or (need_keys and state is DatabaseState.EMPTY):
        raise NoVault(dsn)


def announce_initialised(where: str) -> None:
    """The one stderr line every initialisation prints; `where` is `Storage: <DSN>`."""
    click.echo(f"Initialized a new vault ({where})", err=True)


def _state(dsn: str) -> DatabaseState:
    # The storage layer (SQLAlchemy) loads only for a command that works on a database.
    from strongroom.storage import database_state

    return database_state(dsn)
