"""The `/v1` (Vault-compatible) part of `/openapi.json`, generated from `api_kv2.ROUTES`.

KV endpoints are documented at `secret/`; every other mount serves the same ones at
`/v1/<mount>/...` (KV v1: `/v1/<mount>/<key>`), through the catch-all (docs/mounts.md).

Every `/v1` route but the catch-all is documented from the route itself (path and methods), so
a route cannot exist without its entry; request bodies and query parameters come from `_BODIES`
and `_QUERIES` below, by route name. `LIST` (Vault's verb, not an HTTP method OpenAPI knows) is
documented as its equivalent, `GET ...?list=true`. Errors are Vault's `{"errors": [...]}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

__all__ = ["v1_paths"]

_ERRORS_SCHEMA = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
}
_ERRORS = {
    "400": "invalid input, or a check-and-set mismatch",
    "403": "missing or invalid token, or no policy allows it",
    "404": "no such secret or version (a deleted version: the envelope with its metadata)",
    "405": "method not allowed (see Allow)",
    "412": "check-and-set required",
    "413": "body too large",
    "415": "PATCH needs application/merge-patch+json",
    "429": "too many attempts (see Retry-After)",
    "503": "vault is sealed (locked), or storage unavailable",
}
_INT = {"type": "integer", "minimum": 0}
_VERSIONS = {"type": "object", "properties": {"versions": {"type": "array", "items": _INT}}}
_SETTINGS = {
    "max_versions": _INT,
    "cas_required": {"type": "boolean"},
    "delete_version_after": {"type": "string", "example": "768h"},
}
#: Route name -> the JSON body its writes take.
_BODIES: dict[str, dict[str, Any]] = {
    "kv2_data": {
        "type": "object",
        "properties": {
            "data": {"type": "object"},
            "options": {"type": "object", "properties": {"cas": _INT}},
        },
    },
    "kv2_metadata": {
        "type": "object",
        "properties": {**_SETTINGS, "custom_metadata": {"type": "object"}},
    },
    "kv2_config": {"type": "object", "properties": _SETTINGS},
    "kv2_delete": _VERSIONS,
    "kv2_undelete": _VERSIONS,
    "kv2_destroy": _VERSIONS,
    "v1_unseal": {"type": "object", "properties": {"key": {"type": "string"}}},
    # sys/mounts/<path> (enable) and sys/mounts/<path>/tune (flat TTLs, description, options).
    "v1_mount": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["kv", "kv-v2"]},
            "description": {"type": "string"},
            "options": {"type": "object", "properties": {"version": {"type": "string"}}},
            "config": {
                "type": "object",
                "properties": {
                    "default_lease_ttl": {"type": "string", "example": "1h"},
                    "max_lease_ttl": {"type": "string", "example": "24h"},
                    "listing_visibility": {"type": "string", "enum": ["", "hidden", "unauth"]},
                },
            },
            "default_lease_ttl": {"type": "string"},
            "max_lease_ttl": {"type": "string"},
        },
    },
    "v1_remount": {
        "type": "object",
        "required": ["from", "to"],
        "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
    },
}
#: Route name -> its query parameters (all optional).
_QUERIES: dict[str, dict[str, dict[str, Any]]] = {
    "kv2_data": {"version": _INT},
    "kv2_subkeys": {"version": _INT, "depth": _INT},
    "kv2_metadata": {"list": {"type": "boolean"}},
    "kv2_metadata_root": {"list": {"type": "boolean"}},
}
_SKIP = {"kv2_no_route"}
#: `sys/` and `auth/` routes that need a token (the others are unauthenticated, as in Vault).
_TOKEN_SYS = {
    "v1_lookup_self",
    "v1_mounts",
    "v1_mount",
    "v1_remount",
    "v1_remount_status",
    "v1_ui_mounts",
    "v1_ui_mounts_list",
}
_DOCUMENTED = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _operation(route: Route, method: str) -> dict[str, Any]:
    name = route.name
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in re.findall(r"{(\w+)(?::\w+)?}", route.path)
    ]
    params += [
        {"name": q, "in": "query", "required": False, "schema": schema}
        for q, schema in _QUERIES.get(name, {}).items()
        if method == "GET"
    ]
    responses: dict[str, Any] = {
        "200": {"description": "success (Vault's envelope)", "content": {"application/json": {}}},
        "204": {"description": "success, no body"},
    }
    for status, text in _ERRORS.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": _ERRORS_SCHEMA}},
        }
    entry: dict[str, Any] = {
        "summary": f"{method} {route.path} (Vault KV v2 compatible)",
        "operationId": f"{name}_{method.lower()}",
        "parameters": params,
        "responses": responses,
        "tags": ["v1"],
    }
    if not name.startswith("v1_") or name in _TOKEN_SYS:
        entry["security"] = [{"vault_token": []}, {"bearer": []}]
    body = _BODIES.get(name)
    if body is not None and method in ("POST", "PUT", "PATCH"):
        media = "application/merge-patch+json" if method == "PATCH" else "application/json"
        entry["requestBody"] = {"required": False, "content": {media: {"schema": body}}}
    return entry


def v1_paths(routes: Sequence[BaseRoute]) -> dict[str, dict[str, Any]]:
    """OpenAPI `paths` entries of the `/v1` routes among `routes`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or route.name in _SKIP:
            continue
        template = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        for method in sorted(route.methods or ()):
            if method in _DOCUMENTED:
                paths.setdefault(template, {})[method.lower()] = _operation(route, method)
    return paths
