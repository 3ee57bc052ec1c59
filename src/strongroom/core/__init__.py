"""The core: business rules of the vault (no HTTP, no CLI, no SQL, no crypto primitives).

`Vault` (`core.vault`) is the facade over composed services that share one `VaultState`
(`core.state`); docs/decisions.md draws the shape.
"""

from __future__ import annotations

from strongroom.core.options import DEFAULT_DSN, VaultConfig
from strongroom.core.vault import Vault
from strongroom.storage import open_storage

__all__ = ["Vault", "VaultConfig", "open_vault"]


def open_vault(dsn: str = DEFAULT_DSN, config: VaultConfig | None = None) -> Vault:
    """Open the vault stored at `dsn` (created on first use), locked.

    Raises:
        InvalidInput: malformed or unsupported DSN.
        StorageUnavailable: the database cannot be reached.
    """
    return Vault(open_storage(dsn), config)
