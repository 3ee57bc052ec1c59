"""create_app(settings): the ASGI application of `vaultctl server`.

Starlette with plain routes: `/api/vault` built from `api_vault.OPERATIONS`, `/v1` from
`api_kv2.ROUTES` (measured faster than FastAPI's dependency-injected routes on this stack, and
FastAPI is not a dependency: docs/decisions.md, "The HTTP server").
A thin pure-ASGI front layer gives every request an id, refuses bodies over the limit before
they are read, records metrics, and treats a client hanging up mid-body as the normal event it
is (a debug line and a count, recorded with status 499, no traceback). The lifespan opens the
vault (unlocking it when a master key is configured) and closes it after in-flight requests
have finished. One exception handler (`http.errors`) maps every error, in the dialect of the
API that raised it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import strongroom
from strongroom import errors
from strongroom.config import Settings
from strongroom.core import Vault, open_vault
from strongroom.core.webhook_sender import Sender
from strongroom.http import (
    api_admin,
    api_admin_approle,
    api_approle_v1,
    api_auth_v1,
    api_kv2,
    api_vault,
    deps,
)
from strongroom.http.control import LocalLink, PeerLink
from strongroom.http.deps import SERVER_ACTOR
from strongroom.http.direct import DirectRoutes
from strongroom.http.errors import error_response, handle_exception, json_response
from strongroom.http.jobs import server_scheduler
from strongroom.http.metrics import CONTENT_TYPE, ExpiryCounts, Metrics
from strongroom.http.openapi import docs_html, openapi_document
from strongroom.http.routing import build_routes, refuse_head
from strongroom.http.state import ServerState, state_of
from strongroom.http.ui import routes as ui_routes

__all__ = ["LinkFactory", "create_app"]

#: Every `/api/vault` endpoint: the design document's, then administration (issue 15).
OPERATIONS = (*api_vault.OPERATIONS, *api_admin.OPERATIONS, *api_admin_approle.OPERATIONS)

#: Builds the worker's link to its siblings once the vault is open.
LinkFactory = Callable[[Vault], PeerLink]
#: The status recorded for a request whose client hung up (nginx's "client closed request").
CLIENT_CLOSED = 499
log = logging.getLogger("strongroom.http")
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "LIST"})


class Front:
    """Request id, early 413, metrics: a pure ASGI layer (no per-request task or body copy).

    Used twice. Inside Starlette's error middleware (`direct` None) it serves every request
    the router answers. Outside Starlette, as the app the server runs (`direct` given), it
    serves the busiest routes itself (`http.direct`) and passes everything else on untouched:
    Starlette's own layers cost about a tenth of a read (docs/decisions.md, "Speed, round
    three")."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        metrics: Callable[[], Metrics | None],
        direct: DirectRoutes | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = None
        if self.direct is not None:
            if not self._declared_too_large(scope):
                route = self.direct.match(scope)
            if route is None:
                await self.app(scope, receive, send)  # Starlette, the other Front inside
                return
        started = time.perf_counter()
        rid = deps.request_id(scope)
        if self._declared_too_large(scope):
            response = error_response(
                errors.PayloadTooLarge(f"request body exceeds {self.limit} bytes"),
                scope["path"],
                rid,
            )
            response.headers["connection"] = "close"
            response.raw_headers.append((b"x-request-id", rid.encode("ascii")))
            await response(scope, receive, send)
            status = response.status_code
        else:
            try:
                if route is not None:
                    status = await self._serve_direct(route, scope, rid, receive, send)
                else:
                    status = await self._serve_app(scope, rid, receive, send)
            except ClientDisconnect:
                # A client that hangs up mid-body is a normal event, not a fault: no response
                # (nobody is listening), no traceback, one debug line and a count.
                status = CLIENT_CLOSED
                log.debug("request %s: client disconnected before sending its body", rid)
                if (metrics := self.metrics()) is not None:
                    metrics.count_disconnect()
        self._observe(scope, status, started)

    async def _serve_direct(
        self, route: Route, scope: Scope, rid: str, receive: Receive, send: Send
    ) -> int:
        """Call the route's endpoint without Starlette's middleware and router (they cost
        about a tenth of a read: docs/decisions.md, "Speed, round two" and "round three");
        every error answered by the one handler, as through them. Returns the status sent."""
        scope["app"] = self.app  # `request.app` (the server's state), as Starlette sets it
        request = Request(scope, self._limited(receive), send)
        try:
            response = await route.endpoint(request)
        except ClientDisconnect:
            raise
        except Exception as exc:  # ours answered in the API's dialect; anything else a 500
            response = await handle_exception(request, exc)  # (which logs the unexpected)
        response.raw_headers.append((b"x-request-id", rid.encode("ascii")))
        await response(scope, receive, send)
        status: int = response.status_code
        return status

    async def _serve_app(self, scope: Scope, rid: str, receive: Receive, send: Send) -> int:
        """Through Starlette, with the request id on the response; returns the status sent.
        An unexpected error is answered here, as on the direct routes (a 500 with the request
        id, counted, logged once by the handler); one raised after the response started
        propagates (Starlette's error middleware and uvicorn close the connection)."""
        rid_header = (b"x-request-id", rid.encode("ascii"))
        status, started = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            await self.app(scope, self._limited(receive), send_with_id)
        except ClientDisconnect:
            raise
        except Exception as exc:
            if started:
                raise
            response = await handle_exception(Request(scope, receive, send), exc)
            response.raw_headers.append(rid_header)
            await response(scope, receive, send)
            status = response.status_code
        return status

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        metrics = self.metrics()
        if metrics is None:
            return
        label = (
            scope.get("strongroom.route")
            or getattr(scope.get("route"), "path", None)
            or "unmatched"
        )
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        metrics.observe(label, method, status, time.perf_counter() - started)
        if (mount := _mount_label(scope, label)) is not None:
            metrics.observe_mount(mount, method, status)

    def _declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return not value.isdigit() or int(value) > self.limit
        return False

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.PayloadTooLarge(f"request body exceeds {self.limit} bytes")
            return message

        return limited


def _mount_label(scope: Scope, route: str) -> str | None:
    """The KV mount that served a request, for `strongroom_kv_requests{mount}`: `secret/` for
    the default mount (its own routes and `/api/vault/secrets`), and the accessor of any other
    mount the `/v1` dispatcher resolved. `/metrics` answers without a token, so an
    administrator's mount names stay out of it (`sys/mounts` maps accessors to paths)."""
    ref = scope.get("strongroom.mount")
    if ref is not None:
        return "secret/" if ref.path == "secret/" else str(ref.accessor)
    if route.startswith(("/v1/secret/", "/api/vault/secrets")):
        return "secret/"
    return None


def _handlers() -> dict[Any, Any]:
    """One handler for everything: our errors, HTTP errors, the rest."""
    return {
        errors.StrongroomError: handle_exception,
        HTTPException: handle_exception,
        Exception: handle_exception,
    }


def _extra_routes() -> list[BaseRoute]:
    document: dict[str, Any] = {}

    async def openapi(request: Request) -> Response:
        if not document:
            document.update(
                openapi_document(
                    OPERATIONS,
                    strongroom.__version__,
                    [*api_auth_v1.ROUTES, *api_approle_v1.ROUTES, *api_kv2.ROUTES],
                )
            )
        return json_response(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_html())

    async def metrics(request: Request) -> Response:
        st = state_of(request)
        return Response(await st.run(st.metrics.render), media_type=CONTENT_TYPE)

    return [
        Route("/openapi.json", openapi, include_in_schema=False),
        Route("/docs", docs, include_in_schema=False),
        Route("/metrics", metrics, include_in_schema=False),
    ]


def create_app(
    settings: Settings,
    *,
    vault: Vault | None = None,
    link_factory: LinkFactory | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    lead_jobs: bool = True,
) -> Front:
    """The ASGI app. `vault` is an already opened vault to serve (else the lifespan opens and
    unlocks one); `link_factory` connects a worker to its siblings (None: single process);
    `extra_routes` adds other route sets (e.g. the `/v1` KV API) behind the same error handler;
    `lead_jobs` lets this process compete for the background jobs' leadership (`http.jobs`).

    Raises:
        InvalidInput: invalid settings (no JWT secret).
    """
    holder: dict[str, ServerState] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # With siblings, the supervisor owns auto-lock (control.py); alone, the core does.
        config = settings.vault_config(auto_lock=None if link_factory is None else False)
        opened = vault if vault is not None else open_vault(settings.db_dsn, config)
        try:
            if vault is None and settings.master_key is not None:
                opened.unlock(settings.master_key.reveal(), actor=SERVER_ACTOR)
            link = link_factory(opened) if link_factory is not None else LocalLink()
        except BaseException:
            opened.close()
            raise
        metrics = Metrics()
        counts = ExpiryCounts(settings.expiry_warning)
        metrics.watch_vault(lambda: opened.is_locked, counts, auto_unlock=settings.auto_unlock)
        metrics.watch_storage(opened.storage_errors)
        state = ServerState(settings, opened, link, metrics)
        app.state.strongroom = holder["state"] = state
        sender = Sender(
            opened.state,
            settings.send_options(),
            on_result=metrics.watch_webhooks(opened.events.pending),
        )
        jobs = server_scheduler(
            settings, opened, counts, may_lead=lead_jobs, unlocker=state.unlocker, sender=sender
        )
        jobs.start()
        try:
            yield
        finally:
            # Off the loop: closing waits for queued audit writes (a worker's siblings may
            # still be answering on theirs).
            await asyncio.to_thread(jobs.close)
            sender.close()
            await asyncio.to_thread(state.close)

    # Starlette tries routes in order: the KV v2 routes of `secret/` carry most traffic, so
    # they come first (last, they cost ~90 failed matches per request: docs/decisions.md).
    routes = [
        *api_kv2.KV2_ROUTES,
        *build_routes(OPERATIONS, state_of),
        *_extra_routes(),
        *ui_routes(enabled=settings.ui),
        *extra_routes,
        *api_auth_v1.ROUTES,
        *api_approle_v1.ROUTES,
        *api_kv2.OTHER_ROUTES,
    ]
    refuse_head(routes, "/v1/", keep={"/v1/sys/health"})
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=_handlers())

    def current_metrics() -> Metrics | None:
        state = holder.get("state")
        return state.metrics if state is not None else None

    app.add_middleware(Front, limit=settings.body_limit, metrics=current_metrics)
    direct = DirectRoutes(api_kv2.KV2_ROUTES, api_kv2.MOUNTS_ROUTE, app.routes)
    return Front(app, settings.body_limit, current_metrics, direct)
