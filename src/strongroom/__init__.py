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

from strongroom import errors
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
