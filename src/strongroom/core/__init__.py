"""The core: business rules of the vault (no HTTP, no CLI, no SQL, no crypto primitives).

`Vault` (`core.vault`) is the facade over composed services that share one `VaultState`
(`core.state`); docs/decisions.md draws the shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.options import DEFAULT_DSN, VaultConfig

if TYPE_CHECKING:
    from strongroom.core.vault import Vault

__all__ = ["Vault", "VaultConfig", "open_vault"]


def open_vault(dsn: str = DEFAULT_DSN, config: VaultConfig | None = None) -> Vault:
    """Open the vault stored at `dsn` (created on first use), locked.

    Raises:
        InvalidInput: malformed or unsupported DSN.
        StorageUnavailable: the database cannot be reached.
    """
    from strongroom.core.vault import Vault
    from strongroom.storage import open_storage

    return Vault(open_storage(dsn), config)


def __getattr__(name: str) -> object:
    # `Vault` (and with it the storage layer) loads on first use, not with `core.options`.
    if name == "Vault":
        from strongroom.core.vault import Vault

        return Vault
    raise AttributeError(f"module 'strongroom.core' has no attribute {name!r}")
