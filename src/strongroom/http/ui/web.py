"""The web console's plumbing: templates, security headers, cookies, CSRF, forms, and the wrapper
that turns every error into a page (never a 500 with a traceback).

Every console response carries a strict Content-Security-Policy (scripts and styles from this
origin only: no inline script, no `unsafe-eval`), `frame-ancestors 'none'`, `no-referrer`,
`nosniff` and `Cache-Control: no-store`. Must never: put a secret value, token or session id in
a URL or a log line.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from strongroom import errors
from strongroom.core.tokens import Principal
from strongroom.http.errors import json_response
from strongroom.http.state import Caller, ServerState, state_of
from strongroom.http.ui.sessions import COOKIE, PRE_COOKIE, Session, csrf_key

__all__ = [
    "HEADERS",
    "Page",
    "Web",
    "form_of",
    "is_tls",
    "url_path",
]

log = logging.getLogger("strongroom.http")
HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}
FORM_LIMIT = 256 * 1024


def url_path(path: str) -> str:
    """A secret path as it goes into a console URL (segments are already URL-safe)."""
    return quote(path, safe="/")


def is_tls(request: Request, st: ServerState) -> bool:
    """Whether the browser reached us over TLS: directly, or as a trusted proxy says
    (`X-Forwarded-Proto: https` from a peer in `--trusted-proxy`)."""
    if request.url.scheme == "https":
        return True
    client = request.scope.get("client")
    try:
        peer = ipaddress.ip_address(client[0]) if client else None
    except ValueError:
        return False
    if peer is None or not any(peer in net for net in st.settings.proxy_networks):
        return False
    proto = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return proto == "https"


async def form_of(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body as a dict (first value of each field).

    Raises:
        PayloadTooLarge: the body exceeds FORM_LIMIT.
        UnsupportedMediaType: another content type.
    """
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise errors.PayloadTooLarge(f"form exceeds {FORM_LIMIT} bytes")
    if not body:
        return {}
    if ctype != "application/x-www-form-urlencoded":
        raise errors.UnsupportedMediaType("a form must be application/x-www-form-urlencoded")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


@dataclass(slots=True)
class Page:
    """One request's view of the console: who is signed in, and the tools handlers need."""

    request: Request
    st: ServerState
    web: Web
    session: Session | None
    caller: Caller | None
    #: The request carried a session cookie whose token is no longer valid.
    stale: bool = False

    def who(self) -> Caller:
        """The signed-in caller.

        Raises:
            AuthenticationFailed: nobody is signed in.
        """
        if self.caller is None:
            raise errors.AuthenticationFailed("sign in first")
        return self.caller

    @property
    def principal(self) -> Principal:
        """The signed-in principal.

        Raises:
            AuthenticationFailed: nobody is signed in.
        """
        return self.who().principal

    @property
    def is_admin(self) -> bool:
        """Whether the signed-in user is an Admin or SuperAdmin."""
        return self.caller is not None and self.st.vault.authorizer.is_admin(self.principal)

    def render(self, template: str, code: int = 200, **values: Any) -> Response:
        """A template rendered with the common values (user, CSRF token, lock state)."""
        return self.web.render(self, template, code, **values)

    def redirect(self, to: str) -> Response:
        """A 303 to another console page (clearing a stale session cookie)."""
        response = RedirectResponse(to, 303, headers=HEADERS)
        if self.stale:
            response.delete_cookie(COOKIE, path="/ui")
        return response

    async def form(self) -> dict[str, str]:
        """The POSTed form (already read by the CSRF check, or read now)."""
        form: dict[str, str] | None = getattr(self.request.state, "form", None)
        return form if form is not None else await form_of(self.request)

    async def allows(self, capability: str, path: str) -> bool:
        """Whether the Authorizer grants `capability` on `path` (no audit entry)."""
        authorizer = self.st.vault.authorizer
        if authorizer.allows_cached(self.principal, capability, path):
            return True
        return await self.st.run(authorizer.allows, self.principal, capability, path)


Handler = Callable[[Page], Awaitable[Response]]


class Web:
    """Templates, sessions and the wrapper every console route goes through."""

    def __init__(self) -> None:
        self._csrf_key: bytes | None = None
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["url_path"] = url_path
        self.env.filters["when"] = _when
        #: The last audit-chain verification (time, result) shown on the dashboard.
        self.last_verify: tuple[float, Any] | None = None

    def render(self, page: Page, template: str, code: int, **values: Any) -> Response:
        """Render `template` with the values every page uses."""
        st = page.st
        common = {
            "user": page.caller.principal if page.caller else None,
            "is_admin": page.is_admin,
            "csrf": page.session.csrf if page.session else "",
            "locked": not st.vault.state.is_unlocked,
        }
        html = self.env.get_template(template).render(**common, **values)
        return HTMLResponse(html, code, headers=HEADERS)

    async def page(self, request: Request) -> Page:
        """The request's Page: its session and, when signed in, its caller (the cookie's token
        verified like an API request's, so every worker and instance agrees)."""
        st = state_of(request)
        token = request.cookies.get(COOKIE)
        if not token:
            return Page(request, st, self, None, None)
        try:
            caller = await st.caller(request, token=token)
        except errors.AuthenticationFailed:
            return Page(request, st, self, None, None, stale=True)
        caller = Caller(caller.principal, replace(caller.actor, auth_method="ui"))
        return Page(request, st, self, self.session(st, token), caller)

    def session(self, st: ServerState, token: str) -> Session:
        """The session of `token` (its CSRF token keyed by the server's shared secret)."""
        if self._csrf_key is None:
            secret = st.settings.jwt_secret
            self._csrf_key = csrf_key(secret.reveal() if secret is not None else None)
        return Session(token, self._csrf_key)

    def wrap(self, handler: Handler, *, signed_in: bool = True) -> Callable[..., Any]:
        """A Starlette endpoint: builds the Page, checks sign-in and CSRF, maps errors."""

        async def endpoint(request: Request) -> Response:
            try:
                page = await self.page(request)
            except errors.StrongroomError as exc:  # e.g. the database is unreachable
                return self._error(Page(request, state_of(request), self, None, None), exc)
            if signed_in and page.caller is None:
                if request.method == "POST":
                    return self._error(page, errors.AuthenticationFailed("sign in first"))
                return page.redirect("/ui/login")
            if request.method == "POST" and signed_in:
                given = request.headers.get("x-csrf-token")
                if given is None:
                    form = await form_of(request)
                    request.state.form = form
                    given = form.get("csrf")
                if page.session is None or not page.session.csrf_ok(given):
                    return self._error(page, errors.PermissionDenied("invalid CSRF token"))
            try:
                return await handler(page)
            except errors.StrongroomError as exc:
                return self._error(page, exc)

        return endpoint

    def _error(self, page: Page, exc: errors.StrongroomError) -> Response:
        if exc.http_status >= 500 and not isinstance(exc, errors.VaultLocked):
            rid = page.request.scope.get("strongroom.request_id")
            log.error("console request %s failed: %s", rid, exc.code)
        if page.request.headers.get("accept", "").startswith("application/json"):
            return json_response({"error": exc.message, "code": exc.code}, exc.http_status)
        if isinstance(exc, errors.VaultLocked):
            return page.render("locked.html", exc.http_status)
        return page.render("error.html", exc.http_status, error=exc)

    def sign_in_cookie(self, response: Response, request: Request, token: str, ttl: float) -> None:
        """Set the session cookie (the token): HttpOnly, SameSite=Strict, Secure over TLS."""
        response.set_cookie(
            COOKIE,
            token,
            max_age=max(1, int(ttl)),
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=is_tls(request, state_of(request)),
        )

    @staticmethod
    def pre_token(request: Request) -> str:
        """The sign-in form's CSRF token (double-submit: cookie and hidden field)."""
        return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)


def _when(value: Any) -> str:
    """A datetime (or epoch seconds) as `YYYY-MM-DD HH:MM UTC`; '' for None."""
    if value is None:
        return ""
    if isinstance(value, float | int):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    return str(value.strftime("%Y-%m-%d %H:%M UTC"))
