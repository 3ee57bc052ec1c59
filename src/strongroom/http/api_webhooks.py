"""`/api/vault/webhooks`: Admins configure webhooks (add, list, remove, test).

Thin: each handler checks the caller is an Admin, calls one `vault.events` method and renders
the result. The signing secret is in the answer to `POST` only (it is stored nowhere).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors
from strongroom.http.errors import json_response
from strongroom.http.routing import Operation, Target
from strongroom.http.state import ServerState
from strongroom.models import iso
from strongroom.storage import WebhookRow

__all__ = ["OPERATIONS", "webhook_json"]

W = "/api/vault/webhooks"


def webhook_json(hook: WebhookRow) -> dict[str, object]:
    """The JSON shape of one webhook (no secret: it is never stored)."""
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "path_prefix": hook.path_prefix,
        "allow_link_local": hook.allow_link_local,
        "created_by": hook.created_by,
        "created_at": iso(hook.created_at),
        "pending": hook.pending,
        "failed": hook.failed,
        "last_error": hook.last_error,
    }


def _webhook_id(request: Request) -> int:
    return int(request.path_params["webhook_id"])


async def add(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "webhook_add")
    body = await st.read_json(request)
    allow = body.get("allow_link_local", False)
    if not isinstance(allow, bool):
        raise errors.InvalidInput("field 'allow_link_local' must be a boolean")
    added = await st.run(
        st.vault.events.add,
        body.get("url"),
        events=body.get("events"),
        path_prefix=body.get("path_prefix") or "",
        allow_link_local=allow,
        actor=caller.actor,
    )
    return json_response({**webhook_json(added.webhook), "secret": added.secret}, status=201)


async def list_webhooks(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "webhook_list")
    hooks = await st.run(st.vault.events.list)
    return json_response({"webhooks": [webhook_json(h) for h in hooks]})


async def remove(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "webhook_remove")
    await st.run(st.vault.events.remove, _webhook_id(request), actor=caller.actor)
    return json_response({"message": "Webhook removed"})


async def test(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "webhook_test")
    event_id = await st.run(st.vault.events.test, _webhook_id(request), actor=caller.actor)
    return json_response({"message": "Test event queued", "id": event_id}, status=202)


_ADD = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "example": "https://hooks.example.com/strongroom"},
        "events": {"type": "array", "items": {"type": "string"}},
        "path_prefix": {"type": "string"},
        "allow_link_local": {"type": "boolean", "default": False},
    },
}

OPERATIONS = (
    Operation("GET", W, list_webhooks, "List webhooks and their delivery state", "admin"),
    Operation(
        "POST", W, add, "Add a webhook (the answer holds its signing secret)", "admin", _ADD, 201
    ),
    Operation("DELETE", W + "/{webhook_id:int}", remove, "Remove a webhook", "admin"),
    Operation("POST", W + "/{webhook_id:int}/test", test, "Queue a test event", "admin", None, 202),
)
