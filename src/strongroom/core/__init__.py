"""The core: business rules of the vault (no HTTP, no CLI, no SQL, no crypto primitives)."""

from __future__ import annotations

from strongroom.core.options import VaultConfig
from strongroom.core.service import Vault
from strongroom.storage import open_storage

__all__ = ["Vault", "VaultConfig", "open_vault"]


def open_vault(dsn: str = "sqlite:///vault.db", config: VaultConfig | None = None) -> Vault:
    """Open the vault stored at `dsn` (created on first use), locked.

    Raises:
        InvalidInput: malformed or unsupported DSN.
        StorageUnavailable: the database cannot be reached.
    """
    return Vault(open_storage(dsn), config)
