"""Strongroom: a self-hosted secrets vault (encrypted, versioned, audited).

```python
from strongroom import open_vault, VaultConfig
vault = open_vault("sqlite:///vault.db", VaultConfig())
vault.unlock_from_env()
vault.create_secret("database/postgres/password", "s3cret", user_id=1)
```

Who asks travels as one frozen `Actor` (`actor=Actor(user_id, ip, request_id)` is accepted
wherever `user_id=` is); a call naming nobody is attributed to `strongroom.models.DEFAULT_ACTOR`.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING

from strongroom import errors

if _TYPE_CHECKING:
    from strongroom.api import RotationResult, VaultAPI
    from strongroom.core import Vault, VaultConfig, open_vault
    from strongroom.models import (
        Actor,
        AuditEntry,
        AuditVerification,
        SecretInfo,
        VaultHealth,
        VaultStatus,
        VersionInfo,
    )

#: Where each public name lives. They are imported on first use (PEP 562), so that
#: `vaultctl --addr ...` and `import strongroom.errors` don't load the storage layer.
_LAZY = {
    "RotationResult": "strongroom.api",
    "VaultAPI": "strongroom.api",
    "Vault": "strongroom.core",
    "VaultConfig": "strongroom.core",
    "open_vault": "strongroom.core",
    **dict.fromkeys(
        [
            "Actor",
            "AuditEntry",
            "AuditVerification",
            "SecretInfo",
            "VaultHealth",
            "VaultStatus",
            "VersionInfo",
        ],
        "strongroom.models",
    ),
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'strongroom' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Actor",
    "AuditEntry",
    "AuditVerification",
    "RotationResult",
    "SecretInfo",
    "Vault",
    "VaultAPI",
    "VaultConfig",
    "VaultHealth",
    "VaultStatus",
    "VersionInfo",
    "errors",
    "open_vault",
]
__version__ = "0.1.0"
