"""The console's sign-in (built-in user through `/api/auth/login`'s own code path, or a pasted
token), sign-out, and the locked vault's unlock (administrators only, by the core's Authorizer).

Must never: echo or keep the master key, put a token in a URL, or log either.
"""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from strongroom import errors
from strongroom.http import deps
from strongroom.http.api_vault import log_in
from strongroom.http.state import state_of
from strongroom.http.ui.sessions import COOKIE, PRE_COOKIE, UI_KIND
from strongroom.http.ui.web import HEADERS, Page, Web, form_of, is_tls
from strongroom.models import Actor

__all__ = ["login_endpoint", "logout", "unlock"]

#: The throttle's name for sign-ins by pasted token (they share the API login's limiter).
TOKEN_LOGIN = "(token)"  # noqa: S105 - a label, not a credential


def login_endpoint(web: Web) -> object:
    """GET: the sign-in form. POST: sign in, set the session cookie, go to the dashboard."""

    async def endpoint(request: Request) -> Response:
        try:
            page = await web.page(request)
        except errors.StrongroomError:  # e.g. the database is unreachable: sign in afresh
            page = Page(request, state_of(request), web, None, None)
        pre = web.pre_token(request)
        if request.method == "GET":
            if page.caller is not None:
                return page.redirect("/ui/")
            response = page.render("login.html", pre=pre, error=None, username="")
            _pre_cookie(response, request, pre)
            return response
        form = await form_of(request)
        given = form.get("csrf", "")
        if not request.cookies.get(PRE_COOKIE) or not hmac.compare_digest(
            pre.encode(), given.encode()
        ):
            return page.render(
                "error.html", 403, error=errors.PermissionDenied("invalid CSRF token")
            )
        try:
            token, expires = await _sign_in(request, form)
        except (errors.AuthenticationFailed, errors.TooManyAttempts, errors.InvalidInput) as exc:
            response = page.render(
                "login.html", exc.http_status, pre=pre, error=exc, username=form.get("username", "")
            )
            _pre_cookie(response, request, pre)
            return response
        response = RedirectResponse("/ui/", 303, headers=HEADERS)
        web.sign_in_cookie(response, request, token, expires - time.time())
        response.delete_cookie(PRE_COOKIE, path="/ui")
        return response

    return endpoint


async def _sign_in(request: Request, form: dict[str, str]) -> tuple[str, float]:
    """(token, expiry as epoch seconds) from a username and password, or a pasted token."""
    st = state_of(request)
    pasted = form.get("token", "").strip()
    if not pasted:
        username, password = form.get("username", ""), form.get("password", "")
        if not username or not password:
            raise errors.InvalidInput("enter a username and password, or paste a token")
        totp = form.get("totp", "").strip() or None
        issued = await log_in(request, st, username, password, kind=UI_KIND, totp=totp)
        return issued.token, issued.info.expires_at.timestamp()
    ip = st.client_ip(request)
    actor = Actor(0, ip, deps.request_id(request.scope))
    throttle = f"{TOKEN_LOGIN} {ip}"  # per client: one address cannot lock everyone out
    try:
        st.limiter.check(throttle, ip)
    except errors.TooManyAttempts as exc:
        await st.run(st.vault.access.record_failure, "login", None, actor, exc)
        raise
    try:
        who = (await st.caller(request, token=pasted)).principal
    except errors.AuthenticationFailed as exc:
        st.limiter.failed(throttle, ip)
        await st.run(st.vault.access.record_failure, "login", None, actor, exc)
        raise
    return pasted, who.expires_at


def _pre_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        value,
        max_age=3600,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=is_tls(request, state_of(request)),
    )


async def logout(page: Page) -> Response:
    """End the session: revoke a console-issued token (a pasted one is only forgotten), clear
    the cookie."""
    caller = page.who()
    tokens = page.st.vault.tokens
    accessor = caller.principal.accessor
    if accessor:
        try:
            info = await page.st.run(tokens.lookup, accessor)
            if info.kind == UI_KIND:
                await page.st.run(tokens.revoke, accessor, actor=caller.actor)
        except errors.NotFound:
            pass  # already revoked or expired
    response = page.redirect("/ui/login")
    response.delete_cookie(COOKIE, path="/ui")
    return response


async def unlock(page: Page) -> Response:
    """GET: the unlock form (administrators) or "ask an administrator". POST: unlock."""
    caller = page.who()
    if page.request.method == "GET":
        return page.render("locked.html", 200 if page.st.vault.state.is_unlocked else 423)
    await page.st.require_admin(caller, "unlock")
    form = getattr(page.request.state, "form", None) or await form_of(page.request)
    key = form.get("master_key", "")
    if not key:
        raise errors.InvalidInput("enter the master key")
    try:
        await page.st.unlock(caller, key)
    except (errors.InvalidMasterKey, errors.TooManyAttempts) as exc:
        return page.render("locked.html", exc.http_status, error=exc)
    return page.redirect("/ui/")
