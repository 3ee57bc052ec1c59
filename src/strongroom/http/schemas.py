"""JSON Schemas of the `/api/vault` request bodies, for the OpenAPI document.

Handlers validate bodies themselves (faster than a model layer, and with our error shape); these
schemas describe the same fields for `/openapi.json` and `/docs`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CREATE", "GENERATE", "LOGIN", "ROLLBACK", "ROTATE", "ROTATE_ALL", "UNLOCK", "UPDATE"]


def _object(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_STR = {"type": "string"}
UNLOCK = _object(["master_key"], master_key=_STR)
CREATE = _object(
    ["path", "value"],
    path={**_STR, "example": "database/postgres/password"},
    value=_STR,
    description=_STR,
    expires_in={**_STR, "example": "90d", "description": "e.g. 24h, 7d, 90d"},
)
UPDATE = _object(["value"], value=_STR)
ROLLBACK = _object(["version"], version={"type": "integer", "minimum": 1})
ROTATE = _object([])
ROTATE_ALL = _object(["new_master_key"], new_master_key=_STR)
GENERATE = _object([], length={"type": "integer", "minimum": 1, "maximum": 1024, "default": 32})
LOGIN = _object(
    ["username", "password"],
    username=_STR,
    password=_STR,
    totp={**_STR, "example": "123456", "description": "TOTP code, for users with TOTP enabled"},
)
