"""`/openapi.json` and `/docs`, generated from the route tables (`api_vault.OPERATIONS`, and
`api_kv2.ROUTES` for `/v1` through `openapi_v1`).

The document is built once per app from the same `Operation` entries that build the routes, so a
route cannot exist without its documentation. `/docs` is Swagger UI pointed at `/openapi.json`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute

from strongroom.http.openapi_v1 import v1_paths
from strongroom.http.routing import Operation

__all__ = ["docs_html", "openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
    },
}
_ACCESS = {
    "none": "No token needed.",
    "token": "Any valid token.",
    "admin": "Role SuperAdmin or Admin.",
    "superadmin": "Role SuperAdmin only.",
}
_ERRORS = {
    "400": "invalid input",
    "401": "missing or invalid token",
    "403": "role or policy does not allow it",
    "404": "no such secret or version",
    "409": "conflict",
    "413": "body too large",
    "415": "body is not JSON",
    "423": "vault is locked",
    "429": "too many attempts (see Retry-After)",
}


def _operation(op: Operation) -> dict[str, Any]:
    access = _ACCESS.get(op.access) or (
        f"SuperAdmin/Admin, or a policy granting `{op.access}` on the path."
    )
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer" if name == "version" or conv == ":int" else "string"},
        }
        for name, conv in re.findall(r"{(\w+)(:\w+)?}", op.path)
    ]
    params += [
        {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
        for q in op.query
    ]
    responses: dict[str, Any] = {
        str(op.status): {
            "description": "success",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    for status, text in _ERRORS.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": _ERROR}},
        }
    entry: dict[str, Any] = {
        "summary": op.summary,
        "description": access,
        "operationId": f"{op.handler.__name__}_{op.method.lower()}",
        "parameters": params,
        "responses": responses,
        "tags": ["auth" if op.path.startswith("/api/auth") else "vault"],
    }
    if op.access != "none":
        entry["security"] = [{"bearer": []}]
    if op.body is not None:
        entry["requestBody"] = {
            "required": bool(op.body.get("required")),
            "content": {"application/json": {"schema": op.body}},
        }
    return entry


def openapi_document(
    operations: Sequence[Operation], version: str, v1_routes: Sequence[BaseRoute] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`, and of the Vault-compatible `v1_routes`."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        # Starlette's converters (`{id:int}`) are not OpenAPI: the parameter's schema says it.
        path = re.sub(r"{(\w+):\w+}", r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op)
    paths.update(v1_paths(v1_routes))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Strongroom",
            "version": version,
            "description": "The design document's vault API. Secret paths may contain "
            "slashes; a path's last segment may not be versions, rotate, "
            "rollback or audit.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "vault_token": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
            }
        },
    }


#: Swagger UI, vendored (http/ui/static/swagger: version and licence in VERSION.txt), so that
#: `/docs` renders without internet access; started by docs-init.js (no inline script).
_SWAGGER_UI = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{static}/swagger-ui.css">
<title>{title}</title>
</head>
<body data-openapi-url="{openapi_url}">
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/docs-init.js"></script>
</body>
</html>
"""
SWAGGER_STATIC = "/docs/static"


def docs_html(openapi_url: str = "/openapi.json", title: str = "Strongroom API") -> str:
    """Swagger UI pointed at `openapi_url`, its assets served by this server (`/docs/static`)."""
    return _SWAGGER_UI.format(static=SWAGGER_STATIC, title=title, openapi_url=openapi_url)
