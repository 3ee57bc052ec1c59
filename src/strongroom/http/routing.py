"""The route table type and the dispatcher for secret paths (which contain slashes).

`Operation` describes one documented endpoint; `build_routes()` turns a table of them into
Starlette routes. Endpoints under `/api/vault/secrets/{path}` share one Starlette route and are
chosen here by their suffix (`/versions`, `/versions/{n}`, `/rotate`, `/rollback`, `/audit`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from strongroom.http.state import ServerState

__all__ = [
    "SECRET_PREFIX",
    "Operation",
    "Target",
    "build_routes",
    "refuse_head",
    "split_secret_url",
]

SECRET_PREFIX = "/api/vault/secrets/{path}"  # noqa: S105 - a URL template
_VERSION = re.compile(r"(.+)/versions/(\d{1,9})")
_GET_SUFFIXES = ("versions", "audit")
_POST_SUFFIXES = ("rotate", "rollback")
_SECRET_METHODS = ("GET", "PUT", "DELETE", "POST")


@dataclass(frozen=True, slots=True)
class Target:
    """What a secret URL names: the secret path and, for `/versions/{n}`, the version."""

    path: str = ""
    version: int | None = None


Handler = Callable[[Request, "ServerState", Target], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One documented endpoint: the source of both its route and its OpenAPI entry.

    `access` is `none`, `token` (any valid token), `admin`, `superadmin`, or the capability a
    policy must grant on the path (`read`, `list`, `create`, `update`, `delete`, `audit`).
    """

    method: str
    path: str
    handler: Handler
    summary: str
    access: str
    body: dict[str, Any] | None = None
    status: int = 200
    query: tuple[str, ...] = ()


def split_secret_url(method: str, rest: str) -> tuple[str, Target]:
    """Map the part after `/secrets/` to (documented template, target)."""
    if method == "GET":
        m = _VERSION.fullmatch(rest)
        if m:
            return SECRET_PREFIX + "/versions/{version}", Target(m.group(1), int(m.group(2)))
    head, _, last = rest.rpartition("/")
    suffixes = _GET_SUFFIXES if method == "GET" else _POST_SUFFIXES if method == "POST" else ()
    if head and last in suffixes:
        return f"{SECRET_PREFIX}/{last}", Target(head)
    return SECRET_PREFIX, Target(rest)


def build_routes(
    operations: Sequence[Operation],
    state: Callable[[Request], ServerState],
) -> list[BaseRoute]:
    """Starlette routes for `operations`; `state` finds the ServerState of a request."""
    table = {(op.method, op.path): op.handler for op in operations}

    async def secrets(request: Request) -> Response:
        template, target = split_secret_url(request.method, request.path_params["path"])
        request.scope["strongroom.route"] = template
        handler = table.get((request.method, template))
        if handler is None:
            raise HTTPException(405, headers={"Allow": _allowed(request.path_params["path"])})
        return await handler(request, state(request), target)

    def _allowed(rest: str) -> str:
        """The methods some operation answers on this secret URL (the 405's `Allow`)."""
        methods = [m for m in _SECRET_METHODS if (m, split_secret_url(m, rest)[0]) in table]
        return ", ".join(methods)

    # The secret route comes first: it carries most traffic, and Starlette tries routes in order.
    routes: list[BaseRoute] = [
        Route(
            "/api/vault/secrets/{path:path}",
            secrets,
            methods=list(_SECRET_METHODS),
            name="secret",
        )
    ]
    by_path: dict[str, list[Operation]] = {}
    for op in operations:
        if not op.path.startswith(SECRET_PREFIX):
            by_path.setdefault(op.path, []).append(op)
    for path, ops in by_path.items():
        handlers = {op.method: op.handler for op in ops}
        routes.append(Route(path, _fixed(handlers, state), methods=list(handlers)))
    return routes


def _fixed(
    handlers: dict[str, Handler],
    state: Callable[[Request], ServerState],
) -> Callable[[Request], Awaitable[Response]]:
    target = Target()
    if len(handlers) == 1:
        (only,) = handlers.values()

        async def endpoint(request: Request) -> Response:
            return await only(request, state(request), target)
    else:

        async def endpoint(request: Request) -> Response:
            # HEAD: Starlette admits it wherever GET is; answered as GET (without the body).
            handler = handlers.get(request.method) or handlers["GET"]
            return await handler(request, state(request), target)

    return endpoint


def refuse_head(routes: Iterable[BaseRoute], prefix: str, keep: Container[str] = ()) -> None:
    """Take HEAD off the routes under `prefix` (but those in `keep`): Starlette adds it to
    every route that serves GET, and a handler that serves GET and writes would run its write
    branch for it. The router then answers HEAD with 405 and `Allow`, as Vault does on `/v1`
    everywhere but `sys/health`."""
    for route in routes:
        if (
            isinstance(route, Route)
            and route.path.startswith(prefix)
            and route.path not in keep
            and route.methods
        ):
            route.methods.discard("HEAD")
